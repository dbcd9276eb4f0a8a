// Start-up and navigation: log in (or resume the cookie session), then the shell with the live connection and
// a hash router: #/inbox[/<id>], #/dashboard, #/admin/<section>.

import { get, onUnauthorized, optional, post, put, setCsrf } from "./api.js";
import { clear, h, replace } from "./dom.js";
import { lang, setLang, t } from "./i18n.js";
import { Live } from "./live.js";
import { loadMentions, markConversationRead } from "./mentions.js";
import { askPermission, alertMention, alertNewMessage } from "./notify.js";
import { applyEvent, emit, isSupervisor, on, reloadAll, setPref, state } from "./state.js";
import * as adminView from "./views/admin.js";
import * as dashboardView from "./views/dashboard.js";
import * as inboxView from "./views/inbox.js";
import { mentionsMenu } from "./views/mentions.js";
import { renderLogin } from "./views/login.js";

const root = document.getElementById("app");
let live = null;
let unmount = null;
let mounted = null; // the view module on screen: a hash change within it updates it instead of remounting
let shellOff = null;
let mentionsOff = null;

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  const view = parts[0] || "inbox";
  if (view === "dashboard" && isSupervisor()) return { view: dashboardView, args: parts.slice(1) };
  if (view === "admin" && isSupervisor()) return { view: adminView, args: parts.slice(1) };
  return { view: inboxView, args: view === "inbox" ? parts.slice(1) : [] };
}

export function navigate(hash) {
  if (location.hash === hash) render({ force: true });
  else location.hash = hash;
}

function connectionBadge() {
  const key = { online: "conn.online", connecting: "conn.connecting", reconnecting: "conn.reconnecting" }[
    state.connection
  ];
  return h(
    "span",
    { class: ["conn", "conn-" + state.connection], role: "status", "data-testid": "connection" },
    t(key || "conn.offline"),
  );
}

function toggle(name, labelKey, onEnable) {
  return h(
    "label",
    { class: "toggle" },
    h("input", {
      type: "checkbox",
      checked: state.prefs[name],
      "data-testid": "pref-" + name,
      onchange: async (event) => {
        let value = event.target.checked;
        if (value && onEnable) value = await onEnable();
        event.target.checked = value;
        setPref(name, value);
      },
    }),
    " ",
    t(labelKey),
  );
}

function shell() {
  const current = route();
  const navItem = (hash, key, active) =>
    h("a", { href: hash, class: ["nav-item", active && "active"], "data-testid": "nav-" + key.split(".")[1] }, t(key));
  const nav = h(
    "nav",
    { class: "nav" },
    navItem("#/inbox", "nav.inbox", current.view === inboxView),
    isSupervisor() && navItem("#/dashboard", "nav.dashboard", current.view === dashboardView),
    isSupervisor() && navItem("#/admin", "nav.admin", current.view === adminView),
  );
  if (mentionsOff) mentionsOff();
  const mentions = mentionsMenu(navigate);
  mentionsOff = mentions.off;
  nav.append(mentions.el);
  const connSlot = h("span", { class: "conn-slot" }, connectionBadge());
  if (shellOff) shellOff();
  shellOff = on("connection", () => replace(connSlot, connectionBadge()));
  const menu = h(
    "details",
    { class: "menu" },
    h("summary", { "data-testid": "user-menu" }, h("span", { class: "who" }, state.me.name || state.me.email), h("span", { class: "burger", "aria-hidden": "true" }, " ☰")),
    h(
      "div",
      { class: "menu-body" },
      h("div", { class: "muted" }, state.me.email, " · ", t("role." + state.me.role)),
      state.users.get(state.me.id) && state.users.get(state.me.id).presence !== undefined ? presenceChooser() : null,
      toggle("notify", "notify.toggle", askPermission),
      toggle("sound", "sound.toggle"),
      h("div", { class: "muted small" }, t("keys.help")),
      h("button", { class: "btn", "data-testid": "logout", onclick: logout }, t("logout")),
    ),
  );
  const langButton = h(
    "button",
    { class: "btn ghost", "data-testid": "lang-switch", title: t("lang.label"), onclick: switchLanguage },
    t("lang.switch"),
  );
  const header = h(
    "header",
    { class: "topbar" },
    h("a", { class: "brand", href: "#/inbox" }, h("img", { src: "/app/icon.svg", alt: "hopthu", width: 22, height: 22 }), h("span", {}, "hopthu")),
    nav,
    h("span", { class: "spacer" }),
    connSlot,
    langButton,
    menu,
  );
  const main = h("main", { class: "main", id: "main" });
  replace(root, header, main);
  root.className = "";
  return main;
}

function render({ force = false } = {}) {
  if (!state.me) return;
  const current = route();
  if (!force && mounted === current.view && current.view.update) {
    current.view.update(current.args);
    return;
  }
  if (unmount) unmount();
  unmount = null;
  const main = shell();
  mounted = current.view;
  unmount = current.view.mount(main, current.args, { navigate, live });
}

function switchLanguage() {
  setLang(lang() === "vi" ? "en" : "vi");
  if (state.me) render({ force: true });
  else renderLogin(root, loggedIn, switchLanguage);
}

async function logout() {
  try {
    await post("/api/auth/logout");
  } finally {
    signedOut();
  }
}

function signedOut() {
  if (live) live.stop();
  live = null;
  if (unmount) unmount();
  unmount = null;
  mounted = null;
  state.me = null;
  setCsrf(null);
  renderLogin(root, loggedIn, switchLanguage);
}

async function loadDirectory() {
  const [inboxes, agents, users] = await Promise.all([
    get("/api/inboxes"),
    optional("/api/agents").catch(() => null), // names, presence and load, for agents too
    isSupervisor() ? get("/api/users") : null,
  ]);
  state.inboxes = new Map(inboxes.items.map((i) => [i.id, i]));
  const people = new Map();
  for (const agent of (agents && agents.items) || []) {
    people.set(agent.id, agent);
    state.presence.set(agent.id, agent.presence);
  }
  for (const user of (users && users.items) || []) people.set(user.id, { ...(people.get(user.id) || {}), ...user });
  state.users = people;
  emit("presence");
}

function presenceChooser() {
  const mine = state.presence.get(state.me.id);
  return h(
    "label",
    { class: "toggle" },
    t("presence.label") + " ",
    h(
      "select",
      {
        "data-testid": "presence",
        onchange: (event) => put("/api/me/presence", { status: event.target.value }).catch(() => {}),
      },
      ["online", "busy", "offline"].map((value) => h("option", { value, selected: mine === value }, t("presence." + value))),
    ),
  );
}

async function loggedIn(me) {
  state.me = me;
  setCsrf(me.csrf_token);
  await loadDirectory();
  live = new Live({
    onEvent: (frame) => {
      applyEvent(frame);
      if (frame.type === "message.created") alertNewMessage(frame.data, (id) => navigate("#/inbox/" + id));
      if (frame.type === "mention.created") mentioned(frame.data);
      if (frame.type === "mention.read") loadMentions().catch(() => {});
    },
    onReload: async () => {
      await loadDirectory();
      await Promise.all([reloadAll(), loadMentions()]);
      // A conversation opened before the mentions were known (a link, a reload): what mentioned me in it is read.
      if (state.currentId !== null && location.hash.startsWith("#/inbox/")) markConversationRead(state.currentId).catch(() => {});
    },
    onState: (value) => {
      state.connection = value;
      emit("connection");
      // A socket that keeps failing may mean the session ended: /api/me answers 401 then, and we log out.
      if (value === "offline" && live && live.attempt >= 2) get("/api/me").catch(() => {});
    },
  });
  render();
  live.start();
}

/** A colleague mentioned me in a note: the list and badge again, an alert, and read at once if I am looking at it. */
async function mentioned(mention) {
  alertMention(mention, (id) => navigate("#/inbox/" + id));
  await loadMentions().catch(() => {});
  const watching = document.visibilityState === "visible" && state.currentId === mention.conversation_id;
  if (watching) markConversationRead(mention.conversation_id).catch(() => {});
}

onUnauthorized(() => {
  if (state.me) signedOut();
});
window.addEventListener("hashchange", () => render());

async function boot() {
  try {
    const me = await get("/api/me");
    await loggedIn(me);
  } catch {
    signedOut();
  }
}

clear(root);
boot();
