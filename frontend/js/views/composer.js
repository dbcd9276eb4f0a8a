// The composer: reply or private note, `/shortcut` saved replies (rendered for this customer), `@Name` mentions of
// colleagues in a note, comment replies (public or private), typing frames to colleagues, and the refusal reason
// when the platform will not take it.

import { optional, post, query } from "../api.js";
import { h, replace } from "../dom.js";
import { label, t } from "../i18n.js";
import { fold } from "../mentions.js";
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
  let staff = null; // who may be mentioned here (the conversation's readers), loaded at the first `@`
  const chosen = new Map(); // mentioned in this note: user id → name (sent while its `@Name` is still in the text)
  let picks = [];
  let pickKind = "saved"; // what the popup offers: "saved" replies or "mention"s
  let pickIndex = 0;
  let mentionStart = -1; // where the `@` being completed is
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
    popup.hidden = true;
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

  async function loadStaff() {
    if (staff) return staff;
    const data = await optional(`/api/conversations/${convId}/mentionable`).catch(() => null);
    staff = data ? data.items.filter((u) => u.id !== state.me.id && u.name) : [];
    return staff;
  }

  /** In a note, `@` then the start of a name (any word of it, with or without diacritics) offers colleagues. */
  async function updateMentionPopup() {
    const before = textarea.value.slice(0, textarea.selectionStart);
    const match = /(^|\s)@([^\s@]*)$/.exec(before);
    if (!match) return false;
    mentionStart = before.length - match[2].length - 1;
    const needle = fold(match[2]);
    const all = await loadStaff();
    pickKind = "mention";
    picks = all.filter((u) => fold(u.name).split(/\s+/).some((word) => word.startsWith(needle)) || fold(u.name).startsWith(needle)).slice(0, 8);
    pickIndex = 0;
    drawPopup();
    return true;
  }

  async function updatePopup() {
    if (note && (await updateMentionPopup())) return;
    const value = textarea.value;
    const match = /^\/(\S*)$/.exec(value);
    if (!match) {
      popup.hidden = true;
      return;
    }
    const needle = match[1].toLowerCase();
    const all = await loadSaved();
    pickKind = "saved";
    picks = all.filter((r) => r.shortcut.toLowerCase().startsWith(needle) || (r.title || "").toLowerCase().includes(needle)).slice(0, 8);
    pickIndex = 0;
    drawPopup();
  }

  function drawPopup() {
    popup.hidden = false;
    if (pickKind === "mention") return drawMentionPicks();
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

  function drawMentionPicks() {
    if (!picks.length) return replace(popup, h("li", { class: "muted" }, t("composer.noStaff")));
    replace(
      popup,
      picks.map((u, i) =>
        h(
          "li",
          { class: ["pick", i === pickIndex && "active"], role: "option", "data-testid": "mention-option", onmousedown: (e) => (e.preventDefault(), choose(u)) },
          h("strong", {}, "@" + u.name),
          " ",
          h("span", { class: "muted" }, label("role", u.role)),
        ),
      ),
    );
  }

  /** `@Lan` typed so far becomes `@Phạm Ngọc Lan ` and the colleague is remembered for this note. */
  function chooseMention(user) {
    popup.hidden = true;
    const caret = textarea.selectionStart;
    const inserted = "@" + user.name + " ";
    textarea.value = textarea.value.slice(0, mentionStart) + inserted + textarea.value.slice(caret);
    const at = mentionStart + inserted.length;
    textarea.setSelectionRange(at, at);
    chosen.set(user.id, user.name);
    textarea.focus();
  }

  /** The ids whose `@Name` is still in the text: a name deleted while writing mentions nobody. */
  function mentionIds(text) {
    return [...chosen].filter(([, name]) => text.includes("@" + name)).map(([id]) => id);
  }

  async function choose(pick) {
    if (pickKind === "mention") return chooseMention(pick);
    const reply = pick;
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
        const body = { text, private: note };
        const mentioned = note ? mentionIds(text) : [];
        if (mentioned.length) body.mention_ids = mentioned;
        msg = await post(`/api/conversations/${convId}/messages`, body);
      }
      if (msg && msg.id) upsertMessage(msg);
      if (msg && msg.delivery_status === "failed") failure.textContent = t("composer.failed", { reason: msg.failure_reason || "" });
      textarea.value = "";
      chosen.clear();
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
