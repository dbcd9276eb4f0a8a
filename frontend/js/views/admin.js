// Admin: staff, inboxes (webhook URLs, widget snippet), bots/FAQ, saved replies, business hours, routing/SLA,
// dead letters, audit log. Which screens can write is read from the server's OpenAPI document, so a feature the
// server does not have yet shows a clear empty state instead of a broken form.

import { ApiError, api, del, get, optional, post } from "../api.js";
import { h, replace } from "../dom.js";
import { clock, label, t } from "../i18n.js";
import { state, userName } from "../state.js";

const SECTIONS = ["users", "inboxes", "bots", "saved", "hours", "routing", "dead", "audit"];
let openapi = null;

async function routesAvailable() {
  if (!openapi) openapi = await get("/api/openapi.json").catch(() => ({ paths: {} }));
  return openapi.paths || {};
}

function has(paths, method, path) {
  return Boolean(paths[path] && paths[path][method.toLowerCase()]);
}

function unavailable() {
  return h("p", { class: "empty", "data-testid": "unavailable" }, t("empty.unavailable"));
}

function table(headers, rows) {
  if (!rows.length) return h("p", { class: "muted" }, t("empty.nothing"));
  return h(
    "div",
    { class: "table-wrap" },
    h("table", {}, h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))), h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, c)))))),
  );
}

function feedback() {
  const el = h("span", { class: "small", role: "status" });
  el.show = (err) => {
    el.className = err ? "small failure" : "small ok";
    el.textContent = err ? (err instanceof ApiError && err.status === 403 ? t("error.forbidden") : t("error.generic", { message: err.message })) : t("admin.saved.ok");
  };
  return el;
}

function jsonEditor(getPath, putPath, method = "PUT") {
  const area = h("textarea", { rows: 12, class: "mono" });
  const status = feedback();
  const el = h("div", { class: "card" }, area, h("div", { class: "form-row" }, h("button", { class: "btn primary", onclick: save }, t("admin.save")), status));
  async function save() {
    try {
      const data = await api(method, putPath, JSON.parse(area.value));
      area.value = JSON.stringify(data, null, 2);
      status.show(null);
    } catch (err) {
      status.show(err);
    }
  }
  get(getPath).then((data) => (area.value = JSON.stringify(data, null, 2)), (err) => status.show(err));
  if (!putPath) area.readOnly = true;
  return el;
}

/** Part of an inbox's settings (GET/PUT /api/inboxes/{id}/routing) as JSON: only the keys this screen owns. */
function settingsEditor(inbox, keys, writable) {
  const area = h("textarea", { rows: 10, class: "mono", "data-testid": "settings-" + keys[0] });
  const status = feedback();
  const path = `/api/inboxes/${inbox.id}/routing`;
  const pickKeys = (data) => Object.fromEntries(keys.map((k) => [k, data[k] ?? null]));
  get(path).then((data) => (area.value = JSON.stringify(pickKeys(data), null, 2)), (err) => status.show(err));
  const save = async () => {
    try {
      const data = await api("PUT", path, JSON.parse(area.value));
      area.value = JSON.stringify(pickKeys(data), null, 2);
      status.show(null);
    } catch (err) {
      status.show(err);
    }
  };
  area.readOnly = !writable;
  return h(
    "div",
    { class: "card" },
    h("h2", {}, inbox.name),
    area,
    writable ? h("div", { class: "form-row" }, h("button", { class: "btn primary", onclick: save }, t("admin.save")), status) : status,
  );
}

/** Facebook inboxes: hide comments that contain a phone number automatically (inbox/autohide.py). */
function autoHide(inbox) {
  const status = feedback();
  const box = h("input", {
    type: "checkbox",
    checked: (inbox.settings || {}).comment_auto_hide !== false, // on by default
    onchange: async (event) => {
      try {
        await api("PUT", `/api/inboxes/${inbox.id}/comment-settings`, { auto_hide: event.target.checked });
        status.show(null);
      } catch (err) {
        event.target.checked = !event.target.checked;
        status.show(err);
      }
    },
  });
  return h("label", { class: "toggle" }, box, " ", t("admin.autoHide"), " ", status);
}

/** An inbox's links come from the server (HOPTHU_PUBLIC_URL, else this page's address), as in its set-up box:
 * behind a proxy or under another host name the browser's own address is not where the platforms post. */
function inboxCard(inbox, paths) {
  return h(
    "div",
    { class: "card", "data-testid": "inbox-card" },
    h("h2", {}, inbox.name, " ", h("span", { class: "badge" }, label("channel", inbox.channel))),
    h("div", { class: "muted small" }, "ID ", String(inbox.id), inbox.external_id ? " · " + inbox.external_id : ""),
    inbox.webhook_url ? [h("h3", {}, t("admin.webhook")), h("pre", { "data-testid": "webhook-url" }, inbox.webhook_url)] : null,
    inbox.snippet ? [h("h3", {}, t("admin.snippet")), h("pre", { "data-testid": "widget-snippet" }, inbox.snippet)] : null,
    inbox.credentials_set && inbox.credentials_set.length ? h("div", { class: "small" }, t("admin.credentials"), ": ", inbox.credentials_set.join(", ")) : null,
    inbox.channel === "facebook" && has(paths, "PUT", "/api/inboxes/{id}/comment-settings") ? autoHide(inbox) : null,
  );
}

// Each channel's fields in POST /api/inboxes (inbox/inboxes.py); secrets are typed into password inputs.
const CHANNEL_FIELDS = {
  facebook: [["page_id"], ["page_token", "password"], ["app_secret", "password"], ["verify_token"]],
  zalo: [["oa_id"], ["app_id"], ["oa_secret", "password"], ["access_token", "password"], ["refresh_token", "password"], ["app_secret", "password"]],
  telegram: [["bot_token", "password"], ["secret_token", "password"]],
  webchat: [["allowed_origins"], ["prechat", "checkbox"]],
};

function fieldInput(name, type) {
  if (type === "checkbox") return h("input", { type: "checkbox", name });
  const attrs = { name, type: type || "text", autocomplete: type === "password" ? "new-password" : "off" };
  if (name === "allowed_origins") attrs.placeholder = "https://shop.example";
  return h("input", attrs);
}

function fieldValue(input) {
  if (input.type === "checkbox") return input.checked;
  if (input.name === "allowed_origins") return input.value.split(/[\s,]+/).filter(Boolean);
  return input.value.trim() || undefined; // empty: absent (a Telegram secret token is then generated)
}

/** What the admin does next: the webhook URL and verify token to paste at the platform, or the widget snippet. */
function setupBox(inbox) {
  const setup = inbox.setup || {};
  const copied = h("span", { class: "small ok", role: "status" });
  const copy = (text) => async () => {
    try {
      await navigator.clipboard.writeText(text);
      copied.textContent = t("admin.copied");
    } catch {
      copied.textContent = t("admin.copyFailed");
    }
  };
  const line = (key, value, testid) => [h("h3", {}, t(key)), h("pre", { "data-testid": testid }, value)];
  return h(
    "div",
    { class: "card", "data-testid": "inbox-setup" },
    h("h2", {}, t("admin.setupTitle", { name: inbox.name })),
    setup.webhook_url ? line("admin.webhook", setup.webhook_url, "setup-webhook-url") : null,
    setup.verify_token ? line("admin.verifyToken", setup.verify_token, "setup-verify-token") : null,
    setup.username ? h("p", {}, t("admin.telegramReady", { username: "@" + setup.username })) : null,
    setup.snippet
      ? [
          ...line("admin.snippet", setup.snippet, "setup-snippet"),
          h("div", { class: "form-row" }, h("button", { class: "btn", "data-testid": "copy-snippet", onclick: copy(setup.snippet) }, t("admin.copy")), copied),
          ...line("admin.identitySecret", setup.identity_secret, "setup-identity-secret"),
          h("p", { class: "muted small" }, t("admin.identitySecretOnce")),
        ]
      : null,
  );
}

function inboxError(err) {
  if (!(err instanceof ApiError)) return t("error.generic", { message: err.message });
  if (err.status === 403) return t("error.forbidden");
  const key = "admin.inboxError." + err.code;
  const known = t(key);
  // Telegram's own reason and the missing fields' names stay in the server's words after the translation.
  return known === key ? t("error.generic", { message: err.message }) : known + " (" + err.message + ")";
}

function newInboxForm(onAdded) {
  const channel = h("select", { name: "channel", "data-testid": "new-inbox-channel" }, Object.keys(CHANNEL_FIELDS).map((c) => h("option", { value: c }, label("channel", c))));
  const name = h("input", { name: "name" });
  const fields = h("span", { class: "form-row" });
  const error = h("p", { class: "failure", role: "alert", "data-testid": "new-inbox-error" });
  const result = h("div");
  const showFields = () =>
    replace(
      fields,
      CHANNEL_FIELDS[channel.value].map(([field, type]) => h("label", { class: type === "checkbox" ? "toggle" : "" }, t(`admin.field.${field}`), fieldInput(field, type))),
    );
  channel.addEventListener("change", showFields);
  showFields();
  const submit = async () => {
    const body = { channel: channel.value, name: name.value };
    for (const input of fields.querySelectorAll("input")) body[input.name] = fieldValue(input);
    error.textContent = "";
    try {
      const inbox = await post("/api/inboxes", body);
      replace(result, setupBox(inbox));
      onAdded(inbox);
      name.value = "";
      showFields();
    } catch (err) {
      error.textContent = inboxError(err);
    }
  };
  return h(
    "div",
    { "data-testid": "new-inbox" },
    h("h2", {}, t("admin.newInbox")),
    h("div", { class: "form-row" }, h("label", {}, t("admin.channel"), channel), h("label", {}, t("admin.name"), name), fields, h("button", { class: "btn primary", "data-testid": "add-inbox", onclick: submit }, t("admin.add"))),
    error,
    result,
  );
}

const screens = {
  async users(paths) {
    const users = (await get("/api/users")).items;
    const inboxes = [...state.inboxes.values()];
    const inboxName = (id) => (state.inboxes.get(id) || {}).name || "#" + id;
    // Admins change roles, the active flag and inboxes in place (PATCH /api/users/{id}); supervisors read.
    const editable = state.me.role === "admin" && has(paths, "PATCH", "/api/users/{id}");
    const change = (user, body, status) =>
      api("PATCH", `/api/users/${user.id}`, body).then(
        () => {
          status.show(null);
          render("users");
        },
        (err) => status.show(err),
      );
    const inboxPicker = (chosen, onChange) =>
      h(
        "span",
        { class: "checks", "data-testid": "inbox-picker" },
        inboxes.map((inbox) =>
          h("label", { class: "toggle" }, h("input", { type: "checkbox", value: String(inbox.id), checked: chosen.includes(inbox.id), onchange: onChange }), inbox.name),
        ),
      );
    const picked = (picker) => [...picker.querySelectorAll("input:checked")].map((box) => Number(box.value));
    const rows = users.map((u) => {
      const known = state.users.get(u.id) || {};
      const own = u.inbox_ids || known.inbox_ids || [];
      const presence = !u.is_active && u.is_active !== undefined ? t("admin.inactive") : known.presence ? label("presence", known.presence) : "";
      if (!editable || u.id === state.me.id) {
        return [u.name || "", u.email, t("role." + u.role), u.role === "agent" ? own.map(inboxName).join(", ") : t("admin.allInboxes"), presence];
      }
      const status = feedback();
      const role = h(
        "select",
        { "aria-label": t("admin.role"), "data-testid": "user-role", onchange: (e) => change(u, { role: e.target.value }, status) },
        ["agent", "supervisor", "admin"].map((r) => h("option", { value: r, selected: r === u.role }, t("role." + r))),
      );
      const picker = inboxPicker(own, () => change(u, { inbox_ids: picked(picker) }, status));
      const active = h(
        "label",
        { class: "toggle" },
        h("input", { type: "checkbox", "data-testid": "user-active", checked: u.is_active !== false, onchange: (e) => change(u, { is_active: e.target.checked }, status) }),
        t("admin.active"),
      );
      // A forgotten password: the admin sets a new one and tells them; their sessions end.
      const password = h("input", { type: "password", autocomplete: "new-password", placeholder: t("admin.newPassword"), "aria-label": t("admin.newPassword"), "data-testid": "user-password" });
      const reset = h("button", { class: "btn", "data-testid": "user-password-set", onclick: () => change(u, { password: password.value }, status) }, t("admin.setPassword"));
      return [u.name || "", u.email, role, u.role === "agent" ? picker : t("admin.allInboxes"), h("span", { class: "checks" }, active, presence, password, reset, status)];
    });
    const parts = [table([t("admin.name"), t("admin.email"), t("admin.role"), t("admin.inboxesOf"), t("presence.label")], rows)];
    if (state.me.role === "admin" && has(paths, "POST", "/api/users")) {
      const f = { email: h("input", { type: "email", name: "email" }), name: h("input", { name: "name" }), password: h("input", { type: "password", name: "new-password", autocomplete: "new-password" }), role: h("select", { name: "role" }, ["agent", "supervisor", "admin"].map((r) => h("option", { value: r }, t("role." + r)))) };
      const picker = inboxPicker([], () => {});
      const status = feedback();
      parts.push(
        h("h2", {}, t("admin.newStaff")),
        h(
          "div",
          { class: "form-row", "data-testid": "new-staff" },
          Object.entries(f).map(([k, input]) => h("label", {}, t(k === "password" ? "login.password" : "admin." + k), input)),
          h("label", {}, t("admin.inboxesOf"), picker),
          h("button", { class: "btn primary", "data-testid": "add-staff", onclick: async () => {
            try {
              await post("/api/users", { ...Object.fromEntries(Object.entries(f).map(([k, i]) => [k, i.value])), inbox_ids: picked(picker) });
              status.show(null);
              render("users");
            } catch (err) {
              status.show(err);
            }
          } }, t("admin.add")),
          status,
        ),
        h("p", { class: "muted small" }, t("admin.newStaffHint")),
      );
    }
    return parts;
  },

  async inboxes(paths) {
    const inboxes = (await get("/api/inboxes")).items;
    const list = h("div", { "data-testid": "inbox-list" }, inboxes.length ? inboxes.map((inbox) => inboxCard(inbox, paths)) : h("p", { class: "muted" }, t("empty.nothing")));
    if (state.me.role !== "admin" || !has(paths, "POST", "/api/inboxes")) return [list];
    const added = (inbox) => {
      if (!list.querySelector("[data-testid=inbox-card]")) replace(list);
      const { setup, ...plain } = inbox; // the identity secret is shown once, not kept with the inbox
      list.append(inboxCard(plain, paths));
      state.inboxes.set(plain.id, plain); // the staff screen's inbox pickers offer it at once
    };
    return [list, newInboxForm(added)];
  },

  async bots(paths) {
    if (!has(paths, "GET", "/api/inboxes/{id}/bot")) return [unavailable()];
    const out = [];
    for (const inbox of state.inboxes.values()) {
      const faq = await optional(`/api/inboxes/${inbox.id}/faq`).catch(() => null);
      const q = h("input", { placeholder: t("admin.question") });
      const a = h("input", { placeholder: t("admin.answer") });
      const status = feedback();
      out.push(
        h(
          "div",
          { class: "card" },
          h("h2", {}, inbox.name),
          h("h3", {}, t("admin.settings")),
          jsonEditor(`/api/inboxes/${inbox.id}/bot`, has(paths, "PUT", "/api/inboxes/{id}/bot") ? `/api/inboxes/${inbox.id}/bot` : null),
          h("h3", {}, "FAQ"),
          table([t("admin.question"), t("admin.answer"), ""], ((faq && faq.items) || []).map((e) => [(e.questions || []).join(" | "), e.answer, h("button", { class: "btn tiny", onclick: async () => { await del(`/api/faq/${e.id}`).catch(status.show); render("bots"); } }, t("admin.delete"))])),
          h("div", { class: "form-row" }, q, a, h("button", { class: "btn primary", onclick: async () => {
            try {
              await post(`/api/inboxes/${inbox.id}/faq`, { questions: [q.value], answer: a.value });
              render("bots");
            } catch (err) {
              status.show(err);
            }
          } }, t("admin.add")), status),
        ),
      );
    }
    return out;
  },

  async saved(paths) {
    const data = await optional("/api/saved-replies");
    if (!data) return [unavailable()];
    const status = feedback();
    const shortcut = h("input", { placeholder: "ship", "data-testid": "saved-shortcut" });
    const text = h("input", { placeholder: t("admin.content"), "data-testid": "saved-text" });
    return [
      table([t("admin.shortcut"), t("admin.content"), ""], data.items.map((r) => [h("code", {}, "/" + r.shortcut), r.text, h("button", { class: "btn tiny", onclick: async () => { await del(`/api/saved-replies/${r.id}`).catch(status.show); render("saved"); } }, t("admin.delete"))])),
      has(paths, "POST", "/api/saved-replies")
        ? h("div", { class: "form-row" }, h("label", {}, t("admin.shortcut"), shortcut), h("label", {}, t("admin.content"), text), h("button", { class: "btn primary", "data-testid": "saved-add", onclick: async () => {
            try {
              await post("/api/saved-replies", { shortcut: shortcut.value, text: text.value });
              render("saved");
            } catch (err) {
              status.show(err);
            }
          } }, t("admin.add")), status)
        : null,
    ];
  },

  async hours(paths) {
    if (!has(paths, "GET", "/api/inboxes/{id}/routing")) return [unavailable()];
    return [...state.inboxes.values()].map((inbox) => settingsEditor(inbox, ["business_hours"], has(paths, "PUT", "/api/inboxes/{id}/routing")));
  },

  async routing(paths) {
    if (!has(paths, "GET", "/api/inboxes/{id}/routing")) return [unavailable()];
    const parts = [...state.inboxes.values()].map((inbox) => settingsEditor(inbox, ["routing", "sla", "csat"], has(paths, "PUT", "/api/inboxes/{id}/routing")));
    const teams = await optional("/api/teams").catch(() => null);
    if (teams) {
      parts.push(h("h2", {}, t("admin.teams")), table([t("admin.name"), t("admin.members"), t("admin.settings")], teams.items.map((team) => [team.name, (team.members || []).map(userName).join(", "), JSON.stringify(team.settings || {})])));
    }
    const agents = await optional("/api/agents").catch(() => null);
    if (agents) {
      parts.push(
        h("h2", {}, t("admin.capacity")),
        table(
          [t("admin.name"), t("dash.load"), t("admin.capacity")],
          agents.items.map((a) => {
            const input = h("input", { type: "number", min: 1, value: a.capacity ?? "", class: "narrow" });
            const status = feedback();
            const save = async () => {
              try {
                await api("PUT", `/api/agents/${a.id}/capacity`, { capacity: input.value ? Number(input.value) : null });
                status.show(null);
              } catch (err) {
                status.show(err);
              }
            };
            return [a.name, String(a.load ?? 0), h("span", { class: "form-row" }, input, h("button", { class: "btn tiny", onclick: save }, t("admin.save")), status)];
          }),
        ),
      );
    }
    return parts;
  },

  async dead() {
    const items = (await get("/api/dead-letters")).items;
    return [table([t("admin.received"), t("admin.channel"), t("admin.reason"), t("admin.payload")], items.map((d) => [clock(d.received_at), d.channel, d.reason, h("pre", {}, JSON.stringify(d.payload, null, 2).slice(0, 2000))]))];
  },

  async audit() {
    const data = await optional("/api/audit");
    if (!data) return [unavailable()];
    return [table([t("admin.when"), t("admin.action"), t("admin.actor"), t("admin.target"), "IP"], data.items.map((e) => [clock(e.occurred_at), e.action, e.actor_id ? userName(e.actor_id) : "—", [e.target_type, e.target_id].filter(Boolean).join(" #"), e.ip || ""]))];
  },
};

let contentEl = null;
let navEl = null;

async function render(section) {
  replace(navEl, SECTIONS.map((s) => h("a", { href: "#/admin/" + s, class: s === section ? "active" : "", "data-testid": "admin-" + s }, t("admin." + s))));
  replace(contentEl, h("p", { class: "muted" }, t("app.loading")));
  try {
    const paths = await routesAvailable();
    const parts = await screens[section](paths);
    replace(contentEl, h("h1", {}, t("admin." + section)), parts);
  } catch (err) {
    replace(contentEl, h("h1", {}, t("admin." + section)), err.status === 403 ? h("p", { class: "empty" }, t("error.forbidden")) : h("p", { class: "failure" }, t("error.generic", { message: err.message })));
  }
}

export function mount(main, args) {
  navEl = h("nav", { class: "admin-nav" });
  contentEl = h("div", { class: "page", "data-testid": "admin" });
  replace(main, h("div", { class: "admin" }, navEl, contentEl));
  render(SECTIONS.includes(args[0]) ? args[0] : "users");
  return () => {};
}

export function update(args) {
  render(SECTIONS.includes(args[0]) ? args[0] : "users");
}
