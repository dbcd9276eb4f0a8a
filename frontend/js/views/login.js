// The login form. The server sets the session as an HttpOnly, SameSite=Strict cookie; the page keeps only the
// CSRF token (in memory) for writes.

import { ApiError, get, post, setCsrf } from "../api.js";
import { h, replace } from "../dom.js";
import { t } from "../i18n.js";

export function renderLogin(root, onDone, onSwitchLanguage) {
  const error = h("p", { class: "form-error", role: "alert", "data-testid": "login-error" });
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const button = h("button", { class: "btn primary", type: "submit", "data-testid": "login-submit" }, t("login.submit"));
  const form = h(
    "form",
    {
      class: "login-card",
      onsubmit: async (event) => {
        event.preventDefault();
        button.disabled = true;
        error.textContent = "";
        try {
          const result = await post("/api/auth/login", { email: email.value, password: password.value });
          setCsrf(result.csrf_token);
          await onDone(await get("/api/me"));
        } catch (err) {
          error.textContent =
            err instanceof ApiError && err.status === 401 ? t("login.failed") : t("error.generic", { message: err.message });
        } finally {
          button.disabled = false;
        }
      },
    },
    h("div", { class: "login-brand" }, h("img", { src: "/app/icon.svg", alt: "", width: 40, height: 40 }), h("span", {}, "hopthu")),
    h("h1", {}, t("login.title")),
    h("p", { class: "muted" }, t("login.subtitle")),
    h("label", {}, t("login.email"), email),
    h("label", {}, t("login.password"), password),
    error,
    button,
    h("button", { type: "button", class: "btn ghost", "data-testid": "lang-switch", onclick: onSwitchLanguage }, t("lang.switch")),
  );
  replace(root, h("div", { class: "login-page" }, form));
  root.className = "";
  email.focus();
}
