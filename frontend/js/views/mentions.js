// The top bar's "Nhắc đến" / "Mentions": the unread count as a badge, and a list of the latest mentions, each of
// which opens its conversation (opening it marks it read, inbox.js), with "Mark all read" and "Load more".

import { h, replace } from "../dom.js";
import { ago, t } from "../i18n.js";
import { loadMoreMentions, markAllMentionsRead } from "../mentions.js";
import { emit, on, state } from "../state.js";

function item(mention, menu, navigate) {
  const open = () => {
    menu.open = false;
    navigate("#/inbox/" + mention.conversation_id);
  };
  return h(
    "li",
    {
      class: ["mention-item", !mention.read_at && "unread"],
      "data-testid": "mention-item",
      "data-conversation": mention.conversation_id,
      tabindex: 0,
      onclick: open,
      onkeydown: (e) => e.key === "Enter" && open(),
    },
    h(
      "div",
      { class: "mention-top" },
      h("strong", {}, t("mentions.by", { by: (mention.by && mention.by.name) || "—", name: mention.contact_name || "—" })),
      h("time", { class: "muted small", datetime: mention.created_at }, ago(mention.created_at)),
    ),
    h("div", { class: "mention-excerpt muted" }, mention.excerpt || ""),
  );
}

/** The menu, and the function that stops it following the mentions. */
export function mentionsMenu(navigate) {
  const badge = h("span", { class: "mention-badge", "data-testid": "mentions-badge", hidden: true });
  const list = h("ul", { class: "mention-list", "data-testid": "mentions-list" });
  const readAll = h(
    "button",
    { type: "button", class: "btn tiny", "data-testid": "mentions-read-all", hidden: true, onclick: () => markAllMentionsRead().catch((err) => emit("error", err)) },
    t("mentions.readAll"),
  );
  const more = h(
    "button",
    { type: "button", class: "btn tiny mentions-more", "data-testid": "mentions-more", hidden: true, onclick: () => loadMoreMentions().catch((err) => emit("error", err)) },
    t("mentions.more"),
  );
  const menu = h(
    "details",
    { class: "mentions-menu" },
    h("summary", { class: "nav-item", "data-testid": "nav-mentions" }, t("nav.mentions"), " ", badge),
    h("div", { class: "mentions-body" }, h("div", { class: "mentions-head" }, h("span", { class: "muted small mentions-title" }, t("mentions.title")), readAll), list, more),
  );
  const draw = () => {
    const unread = state.mentions.unread;
    badge.hidden = !unread;
    badge.textContent = unread > 99 ? "99+" : String(unread);
    badge.title = t("mentions.unread", { n: unread });
    readAll.hidden = !unread;
    more.hidden = !state.mentions.next;
    const items = state.mentions.items;
    replace(list, items.length ? items.map((m) => item(m, menu, navigate)) : h("li", { class: "muted" }, t("mentions.empty")));
  };
  draw();
  return { el: menu, off: on("mentions", draw) };
}
