// The customer panel: profile, identities per channel, attitude, RFM segment, orders, previous conversations, and
// suggestions found in the messages (phone, address…) to accept into the profile; an order drafted from them.
// Reads GET /api/contacts/{id} and /orders when the server has them; otherwise the conversation's own summary.

import { ApiError, optional, post } from "../api.js";
import { h, replace } from "../dom.js";
import { ago, conversationChannel, customerName, label, previewText, t } from "../i18n.js";
import { on, state } from "../state.js";
import { channelBadge, intentBadge, sentimentBadge } from "./inbox.js";

const ORDER_FIELDS = ["order_code", "phone", "address", "size", "color", "price"];
const money = (value) => (value == null ? "" : Number(value).toLocaleString("vi-VN") + " ₫");

function section(titleKey, ...children) {
  return h("section", { class: "side-section" }, h("h3", {}, t(titleKey)), ...children);
}

function entitiesOf(messages) {
  const seen = new Map();
  for (const msg of messages) {
    if (msg.direction !== "in") continue;
    for (const entity of msg.entities || []) {
      const value = entity.normalized || entity.value;
      if (value) seen.set(entity.type + ":" + value, { type: entity.type, value: String(value) });
    }
  }
  return [...seen.values()];
}

function kv(key, value) {
  if (value === null || value === undefined || value === "") return null;
  return h("div", { class: "kv" }, h("span", { class: "muted" }, key), h("span", {}, String(value)));
}

/** The NLP helper's attitudinal summary (contacts/attitude.py): counts, trend, top intents, last complaint. */
function attitudeView(attitude) {
  if (!attitude || typeof attitude !== "object") return null;
  const counts = attitude.sentiment || {};
  return h(
    "div",
    { class: "attitude small", "data-testid": "attitude" },
    h(
      "div",
      { class: "conv-badges" },
      ["negative", "neutral", "positive"].map((s) =>
        counts[s] ? h("span", { class: ["badge", "sent-" + s] }, label("sentiment", s) + " " + counts[s]) : null,
      ),
    ),
    attitude.analysed_messages ? h("div", { class: "muted" }, t("panel.analysed", { n: attitude.analysed_messages })) : null,
    attitude.trend ? kv(t("panel.trend"), label("trend", attitude.trend)) : null,
    (attitude.top_intents || []).length
      ? h("div", { class: "conv-badges" }, attitude.top_intents.map((i) => h("span", { class: "badge intent" }, label("intent", i.intent) + " " + i.count)))
      : null,
    attitude.last_complaint
      ? h("div", {}, h("span", { class: "muted" }, t("panel.lastComplaint") + ": "), h("q", {}, attitude.last_complaint.text || ""))
      : null,
  );
}

export function mountCustomer(el, ctx, thread) {
  let profile = null;
  let orders = null;
  let profileFor = null;
  let unavailable = false;

  async function loadProfile(contactId) {
    profileFor = contactId;
    profile = null;
    orders = null;
    unavailable = false;
    try {
      const [data, orderList] = await Promise.all([
        optional(`/api/contacts/${contactId}`),
        optional(`/api/contacts/${contactId}/orders`).catch(() => null),
      ]);
      if (profileFor !== contactId) return;
      profile = data;
      orders = orderList ? orderList.items : null;
      unavailable = data === null;
    } catch {
      unavailable = true;
    }
    render();
  }

  async function decide(suggestion, accept) {
    const c = state.conversations.get(state.currentId);
    if (!c || !c.contact) return;
    try {
      await post(`/api/contacts/${c.contact.id}/suggestions/${suggestion.id}`, { accept });
    } catch (err) {
      thread.showError(err);
    }
    loadProfile(c.contact.id);
  }

  async function draftOrder(entities) {
    const c = state.conversations.get(state.currentId);
    try {
      await post(`/api/conversations/${c.id}/orders/draft`);
      loadProfile(c.contact.id);
      return;
    } catch (err) {
      if (!(err instanceof ApiError && (err.status === 404 || err.status === 405))) return thread.showError(err);
    }
    // No orders on this server: the draft goes into a private note for a colleague to key in.
    const lines = [t("panel.orderDraft") + ":"];
    for (const type of ORDER_FIELDS) {
      const values = entities.filter((e) => e.type === type).map((e) => e.value);
      if (values.length) lines.push("- " + label("entity", type) + ": " + values.join(", "));
    }
    thread.insert(lines.join("\n"), true);
  }

  function suggestionsView(entities) {
    if (profile && Array.isArray(profile.suggestions)) {
      if (!profile.suggestions.length) return h("p", { class: "muted small" }, t("panel.none"));
      return h(
        "ul",
        { class: "plain", "data-testid": "suggestions" },
        profile.suggestions.map((s) =>
          h(
            "li",
            {},
            h("span", { class: "badge" }, label("entity", s.kind)),
            " ",
            s.normalized || s.value,
            " ",
            h("button", { class: "btn tiny", "data-testid": "accept-suggestion", onclick: () => decide(s, true) }, t("panel.accept")),
            h("button", { class: "btn tiny ghost", onclick: () => decide(s, false) }, "✕"),
          ),
        ),
      );
    }
    if (!entities.length) return h("p", { class: "muted small" }, t("panel.none"));
    return h(
      "ul",
      { class: "plain", "data-testid": "suggestions" },
      entities.map((e) => h("li", {}, h("span", { class: "badge" }, label("entity", e.type)), " ", e.value)),
    );
  }

  function render() {
    const c = state.conversations.get(state.currentId);
    if (!c) return replace(el);
    if (c.contact && profileFor !== c.contact.id) loadProfile(c.contact.id);
    const contact = { ...(c.contact || {}), ...(profile || {}) };
    const entities = entitiesOf(state.messages);
    const identities = (profile && profile.identities) || [];
    const previous = ((profile && profile.conversations) || []).filter((p) => p.id !== c.id);
    const rfm = profile && profile.rfm;
    const attitude = attitudeView(profile && profile.attitude);
    replace(
      el,
      section(
        "panel.profile",
        h("div", { class: "profile-name", "data-testid": "customer-name" }, customerName(contact, conversationChannel(c))),
        kv(t("panel.phone"), contact.phone),
        kv(t("panel.email"), contact.email),
        kv(t("entity.address"), (contact.addresses || [])[0] && ((contact.addresses[0].text ?? contact.addresses[0]) + "")),
        rfm && rfm.segment ? kv(t("panel.segment"), label("rfm", rfm.segment)) : null,
        profile && profile.value && profile.value.total_spent != null ? kv(t("panel.orders"), money(profile.value.total_spent)) : null,
        unavailable ? h("p", { class: "muted small" }, t("panel.unavailable")) : null,
      ),
      section(
        "panel.nlp",
        h("div", { class: "conv-badges" }, sentimentBadge(c.sentiment, { neutral: true }), intentBadge(c.intent)),
        attitude,
      ),
      identities.length
        ? section(
            "panel.identities",
            h("ul", { class: "plain" }, identities.map((i) => h("li", {}, channelBadge(i.channel), " ", i.name || i.external_id || ""))),
          )
        : null,
      section(
        "panel.suggestions",
        suggestionsView(entities),
        entities.length || (profile && profile.suggestions && profile.suggestions.length)
          ? h("button", { class: "btn", "data-testid": "draft-order", onclick: () => draftOrder(entities) }, t("panel.draftOrder"))
          : null,
      ),
      orders && orders.length
        ? section(
            "panel.orders",
            h(
              "ul",
              { class: "plain", "data-testid": "orders" },
              orders.map((o) => h("li", {}, "#" + o.id + " · " + label("order", o.status) + (o.total ? " · " + money(o.total) : ""))),
            ),
          )
        : null,
      previous.length
        ? section(
            "panel.previous",
            h(
              "ul",
              { class: "plain" },
              previous.map((p) =>
                h(
                  "li",
                  {},
                  h("a", { href: "#/inbox/" + p.id }, "#" + p.id + " " + label("status", p.status || "")),
                  " ",
                  h("span", { class: "muted small" }, previewText(p.last_message_preview), " · ", ago(p.last_activity_at)),
                ),
              ),
            ),
          )
        : null,
    );
  }

  render();
  let timer = null;
  const refreshSoon = () => {
    clearTimeout(timer);
    timer = setTimeout(() => profileFor !== null && loadProfile(profileFor), 1500);
  };
  const offs = [
    on("thread", render),
    on("messages", render),
    // New messages may carry new suggestions (a phone, an address); a colleague may edit the profile.
    on("message-event", (frame) => frame.data.conversation_id === state.currentId && frame.data.direction === "in" && refreshSoon()),
    on("event", (frame) => frame.type.startsWith("contact.") && frame.data && frame.data.id === profileFor && refreshSoon()),
    () => clearTimeout(timer),
  ];
  return { unmount: () => offs.forEach((off) => off()) };
}
