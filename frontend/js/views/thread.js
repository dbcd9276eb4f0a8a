// The open conversation: header (assignee, status, snooze, labels), window warnings, messages with delivery
// status and comment actions between the lines of its activity (activity.js), the typing indicator, and the
// composer (composer.js).

import { ApiError, del, post } from "../api.js";
import { h, replace, safeUrl } from "../dom.js";
import { attachmentName, clock, conversationChannel, customerName, duration, label, t } from "../i18n.js";
import { isSupervisor, loadOlder, on, state, upsertConversation, upsertMessage, userName } from "../state.js";
import { withMentions } from "../mentions.js";
import { activityView, timeline } from "./activity.js";
import { commentState, isComment, makeComposer } from "./composer.js";
import { channelBadge, intentBadge, sentimentBadge } from "./inbox.js";

const HOUR = 3600 * 1000;
const STANDARD_WINDOW = 24 * HOUR;
const TAGGED_WINDOW = 7 * 24 * HOUR;
const WARN_BEFORE = 3 * HOUR;
const DELIVERY_ICON = { pending: "⏳", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "⚠" };

function errorText(err) {
  if (err instanceof ApiError && err.status === 403) return t("error.forbidden");
  return t("error.generic", { message: err.message || String(err) });
}


// Stored attachments say what they are in `kind` (image, location, contact, fallback…); `title` carries a place's
// name, a contact card's phone number or what an item the inbox cannot show was.
function attachmentView(att) {
  const kind = att.kind || att.type || "file";
  const raw = att.url || att.payload?.url;
  const url = raw ? safeUrl(raw) : null; // (an empty URL would resolve to this page)
  const named = [att.name, att.title].filter(Boolean).join(" · ");
  const what = named ? "📎 " + named : attachmentName(kind) || "📎 " + kind;
  if (kind === "location" && att.latitude != null && att.longitude != null) {
    return h("span", { class: "attachment" }, `📍 ${att.title ? att.title + " " : ""}(${att.latitude}, ${att.longitude})`);
  }
  if (!url) return h("span", { class: "attachment" }, what);
  if (kind.startsWith("image")) return h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, h("img", { class: "attachment-img", src: url, alt: att.name || "", loading: "lazy" }));
  // A voice note or a clip plays where it is; the link stays for saving it.
  if (kind === "audio" || kind === "video") {
    const player = h(kind, { class: "attachment-media", src: url, controls: true, preload: "none" });
    return h("span", { class: "attachment" }, player, h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, what));
  }
  return h("a", { class: "attachment", href: url, target: "_blank", rel: "noopener noreferrer" }, what);
}

export function mountThread(el, ctx) {
  const head = h("div", { class: "thread-head" });
  const banner = h("div", { class: "thread-banner" });
  const messagesEl = h("div", { class: "messages", "data-testid": "messages", "aria-live": "polite" });
  const typingEl = h("div", { class: "typing muted small", "data-testid": "typing" });
  const composerEl = h("div", { class: "composer-slot" });
  const errorEl = h("div", { class: "thread-error", role: "alert" });
  let composer = null;
  let composerFor = null;

  function showError(err) {
    errorEl.textContent = err ? errorText(err) : "";
    if (err) setTimeout(() => (errorEl.textContent = ""), 8000);
  }

  async function act(promise) {
    try {
      const conv = await promise;
      if (conv && conv.id) upsertConversation(conv, { keepInList: true });
      showError(null);
    } catch (err) {
      showError(err);
    }
  }

  const conv = () => state.conversations.get(state.currentId);
  const takeIt = () => conv() && act(post(`/api/conversations/${conv().id}/assign`, { agent_id: state.me.id }));
  const setStatus = (status, until) =>
    conv() && act(post(`/api/conversations/${conv().id}/status`, until ? { status, snoozed_until: until } : { status }));
  const resolve = () => conv() && setStatus(conv().status === "resolved" ? "open" : "resolved");
  const setLabels = (labels) => conv() && act(post(`/api/conversations/${conv().id}/labels`, { labels }));

  function assigneeControl(c) {
    const options = [h("option", { value: "" }, t("thread.nobody"))];
    const people = isSupervisor() ? [...state.users.values()].filter((u) => u.is_active !== false) : [state.me];
    if (c.assignee_id !== null && !people.some((u) => u.id === c.assignee_id)) people.push({ id: c.assignee_id });
    for (const user of people) {
      const name = user.id === state.me.id ? t("thread.me") + " (" + (state.me.name || state.me.email) + ")" : userName(user.id);
      options.push(h("option", { value: user.id, selected: c.assignee_id === user.id }, name));
    }
    return h(
      "label",
      { class: "inline" },
      t("thread.assignee") + " ",
      h(
        "select",
        {
          "data-testid": "assignee",
          onchange: (e) =>
            act(post(`/api/conversations/${c.id}/assign`, { agent_id: e.target.value ? Number(e.target.value) : null })),
        },
        options,
      ),
    );
  }

  function snoozeMenu() {
    const until = (hours) => new Date(Date.now() + hours * HOUR).toISOString();
    const tomorrow = () => {
      const d = new Date();
      d.setDate(d.getDate() + 1);
      d.setHours(8, 0, 0, 0);
      return d.toISOString();
    };
    const pick = (value) => (event) => {
      event.target.closest("details").open = false;
      setStatus("snoozed", value());
    };
    return h(
      "details",
      { class: "menu snooze" },
      h("summary", { class: "btn", "data-testid": "snooze" }, t("thread.snooze")),
      h(
        "div",
        { class: "menu-body" },
        h("button", { class: "btn ghost", onclick: pick(() => until(1)) }, t("snooze.1h")),
        h("button", { class: "btn ghost", onclick: pick(() => until(4)) }, t("snooze.4h")),
        h("button", { class: "btn ghost", onclick: pick(tomorrow) }, t("snooze.tomorrow")),
      ),
    );
  }

  function labelsControl(c) {
    const labels = c.labels || [];
    const known = new Set();
    for (const other of state.conversations.values()) (other.labels || []).forEach((l) => known.add(l));
    const input = h("input", {
      class: "label-input",
      list: "known-labels",
      placeholder: t("thread.addLabel"),
      "aria-label": t("thread.addLabel"),
      "data-testid": "label-input",
      onkeydown: (e) => {
        if (e.key !== "Enter") return;
        e.preventDefault();
        const value = e.target.value.trim();
        if (value && !labels.includes(value)) setLabels([...labels, value]);
        e.target.value = "";
      },
    });
    return h(
      "div",
      { class: "labels-row", "data-testid": "labels" },
      labels.map((l) =>
        h(
          "span",
          { class: "badge label" },
          l,
          h(
            "button",
            { class: "chip-x", title: t("thread.removeLabel", { label: l }), "aria-label": t("thread.removeLabel", { label: l }), onclick: () => setLabels(labels.filter((x) => x !== l)) },
            "×",
          ),
        ),
      ),
      input,
      h("datalist", { id: "known-labels" }, [...known].sort().map((l) => h("option", { value: l }))),
    );
  }

  function renderHead() {
    const c = conv();
    el.classList.toggle("empty-thread", !c);
    if (!c) {
      replace(head, h("p", { class: "empty" }, t("thread.pick")));
      replace(banner);
      return;
    }
    const contact = c.contact || {};
    const resolved = c.status === "resolved";
    replace(
      head,
      h(
        "div",
        { class: "thread-title" },
        h("button", { class: "btn ghost back", onclick: () => ctx.navigate("#/inbox") }, "← " + t("thread.back")),
        h("h2", { "data-testid": "thread-name" }, customerName(contact, conversationChannel(c))),
        channelBadge(conversationChannel(c)),
        sentimentBadge(c.sentiment),
        intentBadge(c.intent),
        h("span", { class: ["badge", "status-" + c.status], "data-testid": "thread-status" }, label("status", c.status)),
      ),
      h(
        "div",
        { class: "thread-actions" },
        assigneeControl(c),
        c.assignee_id !== state.me.id
          ? h("button", { class: "btn", "data-testid": "take", onclick: takeIt }, t("thread.take"))
          : null,
        h("button", { class: ["btn", !resolved && "primary"], "data-testid": "resolve", onclick: resolve }, t(resolved ? "thread.reopen" : "thread.resolve")),
        c.status !== "pending" ? h("button", { class: "btn ghost", onclick: () => setStatus("pending") }, t("thread.pending")) : null,
        snoozeMenu(),
      ),
      labelsControl(c),
      isComment(c) ? postContext(c) : null,
    );
    renderBanner();
  }

  function postContext(c) {
    const context = c.thread_context || {};
    const link = safeUrl(context.permalink || context.permalink_url || "");
    return h(
      "div",
      { class: "post-context small", "data-testid": "post-context" },
      h("strong", {}, t("comment.post") + ": "),
      context.text || context.message || "",
      link ? [" ", h("a", { href: link, target: "_blank", rel: "noopener noreferrer" }, "↗")] : null,
    );
  }

  function renderBanner() {
    const c = conv();
    // Messenger's rule for human replies (inbox/outbox.py): free within 24 h of the customer's last message,
    // then only with the HUMAN_AGENT tag up to 7 days, then not at all. Comment threads have no window.
    if (!c || c.channel !== "facebook" || isComment(c) || !c.last_incoming_at) return replace(banner);
    const age = Date.now() - Date.parse(c.last_incoming_at);
    const left = STANDARD_WINDOW - age;
    const tagLeft = TAGGED_WINDOW - age;
    if (tagLeft <= 0) return replace(banner, h("div", { class: "warn closed", "data-testid": "window-closed" }, t("thread.window.closed")));
    if (left <= 0) return replace(banner, h("div", { class: "warn", "data-testid": "window-tagged" }, t("thread.window.tagged", { time: duration(tagLeft / 1000) })));
    if (left < WARN_BEFORE)
      return replace(banner, h("div", { class: "warn", "data-testid": "window-closing" }, t("thread.window.closing", { time: duration(left / 1000) })));
    replace(banner);
  }

  function messageView(msg, c) {
    const out = msg.direction === "out";
    const who =
      msg.sender_type === "agent" ? userName(msg.sender_id) : msg.sender_type === "bot" ? t("msg.bot") : msg.sender_type === "system" ? t("msg.system") : null;
    const status = out && !msg.private && msg.delivery_status;
    return h(
      "div",
      {
        class: ["msg", out ? "out" : "in", msg.private && "private", "from-" + msg.sender_type, msg.sentiment === "negative" && "negative"],
        "data-testid": "message",
        "data-id": msg.id,
      },
      h(
        "div",
        { class: "bubble" },
        msg.private ? h("div", { class: "note-tag" }, t("msg.private")) : null,
        h("div", { class: "text", "data-testid": "message-text" }, msg.private ? withMentions(msg.text, h) : msg.text || ""),
        (msg.attachments || []).map(attachmentView),
      ),
      h(
        "div",
        { class: "meta" },
        who ? h("span", {}, who) : null,
        h("time", { datetime: msg.created_at }, clock(msg.created_at)),
        status
          ? h("span", { class: ["delivery", "d-" + status], "data-testid": "delivery", "data-status": status, title: label("delivery", status) }, DELIVERY_ICON[status] + " " + label("delivery", status))
          : null,
        !out ? sentimentBadge(msg.sentiment) : null,
        !out ? intentBadge(msg.intent) : null,
        msg.edited_at ? h("span", { title: (msg.edit_history || []).map((e) => e.text || "").join("\n") }, t("msg.edited")) : null,
        msg.removed_at ? h("span", { class: "badge" }, t("msg.removed")) : null,
        msg.extra && msg.extra.reaction && msg.extra.reaction.emoji
          ? h("span", { class: "reaction", "data-testid": "reaction", title: t("msg.reaction") }, msg.extra.reaction.emoji)
          : null,
        commentState(msg) && !msg.removed_at ? commentActions(msg) : null,
      ),
      msg.delivery_status === "failed" && msg.failure_reason
        ? h("div", { class: "failure", "data-testid": "failure" }, msg.failure_reason)
        : null,
    );
  }

  function commentActions(msg) {
    const hidden = Boolean(commentState(msg).hidden);
    const base = `/api/messages/${msg.id}/comment`;
    const done = (promise) => act(promise.then((m) => (m && m.id && upsertMessage(m), null)));
    return h(
      "span",
      { class: "comment-actions", "data-testid": "comment-actions" },
      h("button", { class: "btn tiny", onclick: () => composer && composer.start(false, msg) }, t("comment.publicReply")),
      msg.direction === "in"
        ? h("button", { class: "btn tiny", onclick: () => composer && composer.start(false, msg, true) }, t("comment.privateReply"))
        : null,
      h("button", { class: "btn tiny", "data-testid": "comment-hide", onclick: () => done(post(`${base}/hide`, { hidden: !hidden })) }, t(hidden ? "comment.unhide" : "comment.hide")),
      h("button", { class: "btn tiny", onclick: () => confirm(t("comment.deleteConfirm")) && done(del(base)) }, t("comment.delete")),
      hidden ? h("span", { class: "badge" }, t(commentState(msg).auto_hidden ? "comment.autoHidden" : "comment.hidden")) : null,
    );
  }

  function renderMessages(detail) {
    const c = conv();
    if (!c) return replace(messagesEl);
    const nearBottom = messagesEl.scrollHeight - messagesEl.scrollTop - messagesEl.clientHeight < 80;
    const fromBottom = messagesEl.scrollHeight - messagesEl.scrollTop;
    replace(
      messagesEl,
      state.nextBefore ? h("button", { class: "btn ghost older", onclick: () => loadOlder().catch(showError) }, t("thread.older")) : null,
      timeline(state.messages, state.activity, !state.nextBefore).map((line) => (line.message ? messageView(line.message, c) : activityView(line.activity))),
    );
    if (detail && detail.older) messagesEl.scrollTop = messagesEl.scrollHeight - fromBottom;
    else if (nearBottom || !detail || (detail.added && detail.added.direction === "out")) messagesEl.scrollTop = messagesEl.scrollHeight;
  }

  function renderTyping() {
    const typing = state.typing.get(state.currentId);
    if (!typing || typing.until < Date.now()) return replace(typingEl);
    const c = conv();
    const name = typing.sender_type === "agent" ? userName(typing.user_id) : (c && c.contact && c.contact.name) || "?";
    replace(typingEl, t("thread.typing", { name }));
  }

  function renderComposer() {
    if (composerFor === state.currentId) return;
    composerFor = state.currentId;
    composer = state.currentId === null ? null : makeComposer(state.currentId, ctx, showError);
    replace(composerEl, composer ? composer.el : null);
  }

  function renderAll() {
    renderHead();
    renderComposer();
    renderTyping();
  }

  replace(el, head, banner, errorEl, messagesEl, typingEl, composerEl);
  renderAll();
  renderMessages();
  const offs = [
    on("thread", renderAll),
    on("messages", renderMessages),
    on("typing", renderTyping),
    on("error", showError),
    on("reloaded", renderBanner),
  ];
  const ticker = setInterval(() => {
    renderTyping();
    renderBanner();
  }, 2000);
  return {
    unmount: () => {
      offs.forEach((off) => off());
      clearInterval(ticker);
    },
    focusComposer: (note) => composer && composer.start(note),
    takeIt,
    resolve,
    showError,
    insert: (text, note) => composer && composer.start(note, null, false, text),
  };
}
