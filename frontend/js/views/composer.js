// The composer: reply or private note, `/shortcut` saved replies (rendered for this customer), comment replies
// (public or private), typing frames to colleagues, and the refusal reason when the platform will not take it.

import { optional, post, query } from "../api.js";
import { h, replace } from "../dom.js";
import { t } from "../i18n.js";
import { state, upsertMessage } from "../state.js";

/** A Page comment thread ("post:<id>"): its messages are comments, answered publicly or privately. */
export function isComment(conv) {
  return Boolean(conv && String(conv.thread_key || "").startsWith("post:"));
}

export function commentState(msg) {
  return (msg.extra && msg.extra.comment) || null;
}

export function makeComposer(convId, ctx, showError) {
  let note = false;
  let target = null; // a comment being answered (public or private reply)
  let privateReply = false;
  let saved = null;
  let picks = [];
  let pickIndex = 0;
  let typingSent = 0;

  const modeReply = h("button", { class: "tab active", "data-testid": "mode-reply", onclick: () => setNote(false) }, t("composer.reply"));
  const modeNote = h("button", { class: "tab", "data-testid": "mode-note", onclick: () => setNote(true) }, t("composer.note"));
  const context = h("div", { class: "composer-context muted small" });
  const popup = h("ul", { class: "saved-popup", role: "listbox", hidden: true, "data-testid": "saved-popup" });
  const failure = h("div", { class: "failure", role: "alert" });
  const textarea = h("textarea", {
    rows: 3,
    "data-testid": "composer",
    "aria-label": t("composer.reply"),
    placeholder: t("composer.placeholder"),
    oninput: () => {
      updatePopup();
      const now = Date.now();
      if (!note && now - typingSent > 3000 && ctx.live) {
        typingSent = now;
        ctx.live.send("typing", { conversation_id: convId, on: true });
      }
    },
    onkeydown: (event) => {
      if (!popup.hidden && picks.length) {
        if (event.key === "ArrowDown" || event.key === "ArrowUp") {
          event.preventDefault();
          pickIndex = (pickIndex + (event.key === "ArrowDown" ? 1 : picks.length - 1)) % picks.length;
          drawPopup();
          return;
        }
        if (event.key === "Enter" || event.key === "Tab") {
          event.preventDefault();
          choose(picks[pickIndex]);
          return;
        }
      }
      if (event.key === "Escape") popup.hidden = true;
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        send();
      }
    },
  });
  const sendButton = h("button", { class: "btn primary", "data-testid": "send", onclick: () => send() }, t("composer.send"));
  const attach = h("button", { class: "btn ghost", title: t("composer.attachUnavailable"), disabled: true }, "📎 " + t("composer.attach"));
  const el = h(
    "div",
    { class: "composer" },
    h("div", { class: "tabs small" }, modeReply, modeNote),
    context,
    popup,
    textarea,
    failure,
    h("div", { class: "composer-actions" }, attach, h("span", { class: "spacer" }), sendButton),
  );

  /** In a comment thread a plain reply answers the customer's latest comment, publicly. */
  function latestComment() {
    const c = state.conversations.get(convId);
    if (!isComment(c)) return null;
    const comments = state.messages.filter((m) => m.direction === "in" && commentState(m) && !m.removed_at);
    return comments.length ? comments[comments.length - 1] : null;
  }

  function setNote(value) {
    note = value;
    el.classList.toggle("note-mode", note);
    modeReply.classList.toggle("active", !note);
    modeNote.classList.toggle("active", note);
    textarea.placeholder = t(note ? "composer.notePlaceholder" : "composer.placeholder");
  }

  async function loadSaved() {
    if (saved) return saved;
    const c = state.conversations.get(convId);
    const data = await optional("/api/saved-replies" + query({ inbox_id: c ? c.inbox_id : "" })).catch(() => null);
    saved = data ? data.items : [];
    return saved;
  }

  async function updatePopup() {
    const value = textarea.value;
    const match = /^\/(\S*)$/.exec(value);
    if (!match) {
      popup.hidden = true;
      return;
    }
    const needle = match[1].toLowerCase();
    const all = await loadSaved();
    picks = all.filter((r) => r.shortcut.toLowerCase().startsWith(needle) || (r.title || "").toLowerCase().includes(needle)).slice(0, 8);
    pickIndex = 0;
    drawPopup();
  }

  function drawPopup() {
    popup.hidden = false;
    if (!picks.length) return replace(popup, h("li", { class: "muted" }, t("composer.noSaved")));
    replace(
      popup,
      picks.map((r, i) =>
        h(
          "li",
          { class: ["pick", i === pickIndex && "active"], role: "option", "data-testid": "saved-option", onmousedown: (e) => (e.preventDefault(), choose(r)) },
          h("strong", {}, "/" + r.shortcut),
          " ",
          h("span", { class: "muted" }, r.title || r.text),
        ),
      ),
    );
  }

  async function choose(reply) {
    popup.hidden = true;
    let text = reply.text;
    try {
      text = (await post(`/api/saved-replies/${reply.id}/render`, { conversation_id: convId })).text;
    } catch {
      // the raw text, placeholders and all, is still better than nothing
    }
    textarea.value = text;
    textarea.focus();
  }

  async function send() {
    const text = textarea.value.trim();
    if (!text) return;
    sendButton.disabled = true;
    failure.textContent = "";
    try {
      let msg;
      const comment = !note && (target || latestComment());
      if (comment) {
        const path = privateReply ? "private-reply" : "reply";
        msg = await post(`/api/messages/${comment.id}/comment/${path}`, { text });
      } else {
        msg = await post(`/api/conversations/${convId}/messages`, { text, private: note });
      }
      if (msg && msg.id) upsertMessage(msg);
      if (msg && msg.delivery_status === "failed") failure.textContent = t("composer.failed", { reason: msg.failure_reason || "" });
      textarea.value = "";
      start(note);
      if (ctx.live) ctx.live.send("typing", { conversation_id: convId, on: false });
    } catch (err) {
      failure.textContent = t("composer.failed", { reason: err.message });
      showError(null);
    } finally {
      sendButton.disabled = false;
    }
  }

  function start(asNote, comment = null, asPrivateReply = false, text = null) {
    setNote(Boolean(asNote));
    target = comment;
    privateReply = asPrivateReply;
    replace(context, comment ? (asPrivateReply ? t("comment.privateReply") : t("comment.publicReply")) + ": “" + (comment.text || "").slice(0, 80) + "”" : null);
    if (text !== null) textarea.value = text;
    textarea.focus();
  }

  return { el, start };
}
