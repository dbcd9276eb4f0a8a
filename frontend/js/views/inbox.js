// The agent inbox: conversation list | thread | customer panel. On a phone one pane shows at a time.

import { optional } from "../api.js";
import { h, initials, replace } from "../dom.js";
import { ago, conversationChannel, customerName, label, previewText, t } from "../i18n.js";
import { markConversationRead } from "../mentions.js";
import { loadList, loadMore, on, openConversation, setFilters, state } from "../state.js";
import { mountCustomer } from "./customer.js";
import { mountThread } from "./thread.js";

const SENTIMENTS = ["negative", "neutral", "positive"];
const STATUSES = ["open", "pending", "snoozed", "resolved"];
const CHANNELS = ["facebook", "facebook_comment", "zalo", "telegram", "webchat"];
// nlp/__init__.py INTENTS
const INTENTS = [
  "greeting", "thanks_bye", "ask_price", "ask_availability", "ask_product_info", "order", "order_status",
  "shipping", "payment", "promotion", "return_refund", "complaint", "store_info", "human_handoff", "other",
];

/** Negative and positive stand out; neutral is the normal case and shows nothing (unless asked). */
export function sentimentBadge(value, { neutral = false } = {}) {
  if (!value || (value === "neutral" && !neutral)) return null;
  return h("span", { class: ["badge", "sent-" + value], title: t("filter.sentiment") }, label("sentiment", value));
}

export function intentBadge(value) {
  if (!value || value === "other") return null;
  return h("span", { class: "badge intent", title: t("filter.intent"), "data-intent": value }, label("intent", value));
}

export function channelBadge(value) {
  return h("span", { class: ["badge", "ch", "ch-" + value] }, label("channel", value));
}

function select(name, values, labeller, current, onChange) {
  return h(
    "select",
    { name, "aria-label": t("filter." + name), "data-testid": "filter-" + name, onchange: (e) => onChange(e.target.value) },
    h("option", { value: "" }, t("filter." + name) + ": " + t("filter.any")),
    values.map(([value, text]) => h("option", { value, selected: String(current) === String(value) }, labeller(text))),
  );
}

function listItem(conv, ctx) {
  const contact = conv.contact || {};
  const negative = conv.sentiment === "negative";
  return h(
    "li",
    {
      class: ["conv", negative && "negative", conv.id === state.currentId && "active", conv.unread_count && "unread"],
      "data-testid": "conv-item",
      "data-id": conv.id,
      tabindex: 0,
      onclick: () => ctx.navigate("#/inbox/" + conv.id),
      onkeydown: (e) => e.key === "Enter" && ctx.navigate("#/inbox/" + conv.id),
    },
    h("span", { class: "avatar", "aria-hidden": "true" }, initials(contact.name)),
    h(
      "div",
      { class: "conv-body" },
      h(
        "div",
        { class: "conv-top" },
        h("span", { class: "conv-name", "data-testid": "conv-name" }, customerName(contact, conversationChannel(conv))),
        h("time", { class: "muted small", datetime: conv.last_activity_at }, ago(conv.last_message_at || conv.last_activity_at)),
      ),
      h("div", { class: "conv-preview", "data-testid": "conv-preview" }, previewText(conv.last_message_preview)),
      h(
        "div",
        { class: "conv-badges" },
        channelBadge(conversationChannel(conv)),
        sentimentBadge(conv.sentiment),
        intentBadge(conv.intent),
        (conv.labels || []).map((l) => h("span", { class: "badge label" }, l)),
        conv.unread_count
          ? h("span", { class: "unread-count", title: t("list.unread", { n: conv.unread_count }) }, conv.unread_count)
          : null,
      ),
    ),
  );
}

function renderFilters(el) {
  const f = state.filters;
  const tabs = h(
    "div",
    { class: "tabs", role: "tablist" },
    ["mine", "unassigned", "all"].map((tab) =>
      h(
        "button",
        {
          class: ["tab", f.tab === tab && "active"],
          role: "tab",
          "aria-selected": f.tab === tab ? "true" : "false",
          "data-testid": "tab-" + tab,
          onclick: () => setFilters({ tab }),
        },
        t("tab." + tab),
      ),
    ),
  );
  let timer = null;
  const search = h("input", {
    type: "search",
    class: "search",
    id: "search",
    placeholder: t("search.placeholder"),
    value: f.q,
    "data-testid": "search",
    oninput: (e) => {
      clearTimeout(timer);
      timer = setTimeout(() => setFilters({ q: e.target.value.trim() }), 250);
    },
  });
  const inboxes = [...state.inboxes.values()].map((i) => [i.id, i.name]);
  const labels = new Set();
  for (const conv of state.conversations.values()) (conv.labels || []).forEach((l) => labels.add(l));
  if (f.label) labels.add(f.label);
  const filters = h(
    "details",
    { class: "filters", open: Boolean(f.inbox_id || f.channel || f.label || f.sentiment || f.intent || f.segment) },
    h("summary", {}, t("filter.more")),
    h(
      "div",
      { class: "filter-grid" },
      select("status", STATUSES.map((s) => [s, s]), (s) => label("status", s), f.status, (v) => setFilters({ status: v })),
      inboxes.length > 1 ? select("inbox", inboxes, (n) => n, f.inbox_id, (v) => setFilters({ inbox_id: v })) : null,
      select("channel", CHANNELS.map((c) => [c, c]), (c) => label("channel", c), f.channel, (v) => setFilters({ channel: v })),
      select("label", [...labels].sort().map((l) => [l, l]), (l) => l, f.label, (v) => setFilters({ label: v })),
      select("sentiment", SENTIMENTS.map((s) => [s, s]), (s) => label("sentiment", s), f.sentiment, (v) =>
        setFilters({ sentiment: v }),
      ),
      select("intent", INTENTS.map((i) => [i, i]), (i) => label("intent", i), f.intent, (v) => setFilters({ intent: v })),
      state.segments && state.segments.length
        ? select("segment", state.segments, (n) => n, f.segment, (v) => setFilters({ segment: v }))
        : null,
    ),
  );
  replace(el, tabs, search, filters);
}

function renderList(el, ctx) {
  const items = state.listIds.map((id) => state.conversations.get(id)).filter(Boolean);
  const list = h("ul", { class: "conv-list", "data-testid": "conv-list" }, items.map((conv) => listItem(conv, ctx)));
  const footer = state.nextCursor
    ? h("button", { class: "btn ghost more", onclick: () => loadMore().catch(() => {}) }, t("list.more"))
    : null;
  const empty = !items.length && !state.listLoading ? h("p", { class: "empty" }, t("list.empty")) : null;
  const loading = state.listLoading && !items.length ? h("p", { class: "empty" }, t("app.loading")) : null;
  replace(el, list, empty, loading, footer);
}

function keyboard(ctx, thread) {
  return (event) => {
    const target = event.target;
    const typing = target.closest("input, textarea, select, [contenteditable]");
    if (event.key === "Escape" && typing) {
      target.blur();
      return;
    }
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    const ids = state.listIds;
    const index = ids.indexOf(state.currentId);
    const go = (i) => ids[i] !== undefined && ctx.navigate("#/inbox/" + ids[i]);
    const actions = {
      j: () => go(index + 1),
      k: () => go(Math.max(0, index - 1)),
      "/": () => document.getElementById("search").focus(),
      r: () => thread.focusComposer(false),
      n: () => thread.focusComposer(true),
      a: () => thread.takeIt(),
      e: () => thread.resolve(),
      "?": () => alert(t("keys.title") + "\n\n" + t("keys.help")),
    };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  };
}

export function mount(main, args, ctx) {
  const filtersEl = h("div", { class: "list-head" });
  const listEl = h("div", { class: "list-scroll" });
  const listPane = h("section", { class: "pane list-pane", "aria-label": t("nav.inbox") }, filtersEl, listEl);
  const threadPane = h("section", { class: "pane thread-pane" });
  const sidePane = h("aside", { class: "pane side-pane", "aria-label": t("thread.customer") });
  const layout = h("div", { class: "inbox", "data-testid": "inbox" }, listPane, threadPane, sidePane);
  replace(main, layout);

  const thread = mountThread(threadPane, ctx);
  const customer = mountCustomer(sidePane, ctx, thread);
  renderFilters(filtersEl);
  renderList(listEl, ctx);
  if (state.segments === null) {
    optional("/api/segments")
      .then((data) => {
        state.segments = data
          ? [...data.items.map((seg) => [String(seg.id), seg.name]), ...(data.rfm_segments || []).map((n) => ["rfm:" + n, "RFM: " + n])]
          : [];
        renderFilters(filtersEl);
      })
      .catch(() => (state.segments = []));
  }
  const offs = [
    on("list", () => renderList(listEl, ctx)),
    on("filters", () => renderFilters(filtersEl)),
    on("reloaded", () => renderFilters(filtersEl)),
    // The open conversation is no longer ours to read: back to the list (the thread is already cleared).
    on("conversation-removed", (id) => location.hash === "#/inbox/" + id && ctx.navigate("#/inbox")),
    thread.unmount,
    customer.unmount,
  ];
  const keys = keyboard(ctx, thread);
  document.addEventListener("keydown", keys);
  offs.push(() => document.removeEventListener("keydown", keys));
  // Refresh the relative times ("5 phút") once a minute.
  const ticker = setInterval(() => renderList(listEl, ctx), 60_000);
  offs.push(() => clearInterval(ticker));

  const show = (id) => {
    layout.classList.toggle("has-thread", id !== null);
    if (id !== state.currentId) openConversation(id).catch((err) => thread.showError(err));
    if (id !== null) markConversationRead(id).catch(() => {}); // opening it reads what mentioned me in it
    renderList(listEl, ctx);
  };
  show(args[0] ? Number(args[0]) : null);
  if (state.connection === "online") loadList().catch(() => {});
  mount.update = (nextArgs) => show(nextArgs[0] ? Number(nextArgs[0]) : null);
  return () => offs.forEach((off) => off());
}

export function update(args) {
  if (mount.update) mount.update(args);
}
