// New-chat and mention alerts: a desktop notification and a short tone, each switchable (saved in this browser).

import { state } from "./state.js";
import { conversationChannel, customerName, t } from "./i18n.js";

let audio = null;

function beep() {
  try {
    audio = audio || new AudioContext();
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.08, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.25);
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.25);
  } catch {
    // no audio device: silence is fine
  }
}

export async function askPermission() {
  if (!("Notification" in window)) return false;
  if (Notification.permission === "granted") return true;
  if (Notification.permission === "denied") return false;
  return (await Notification.requestPermission()) === "granted";
}

/** A customer wrote: alert unless the agent is looking at that very conversation. */
export function alertNewMessage(msg, onOpen) {
  if (msg.direction !== "in" || msg.sender_type !== "contact") return;
  const conv = state.conversations.get(msg.conversation_id);
  if (conv && conv.assignee_id !== null && conv.assignee_id !== state.me.id) return; // a colleague's chat
  const watching = document.visibilityState === "visible" && state.currentId === msg.conversation_id;
  if (watching) return;
  if (state.prefs.sound) beep();
  if (state.prefs.notify && "Notification" in window && Notification.permission === "granted") {
    const name = conv ? customerName(conv.contact, conversationChannel(conv)) : "?";
    // Notification text is plain text by definition: no markup is interpreted.
    const note = new Notification(t("notify.new", { name }), { body: msg.text || "", tag: "conv-" + msg.conversation_id });
    note.onclick = () => {
      window.focus();
      onOpen(msg.conversation_id);
      note.close();
    };
  }
}

/** A colleague mentioned me in a private note: alert unless I am looking at that very conversation. */
export function alertMention(mention, onOpen) {
  const watching = document.visibilityState === "visible" && state.currentId === mention.conversation_id;
  if (watching) return;
  if (state.prefs.sound) beep();
  if (state.prefs.notify && "Notification" in window && Notification.permission === "granted") {
    const name = (mention.by && mention.by.name) || "?";
    const note = new Notification(t("notify.mention", { name }), { body: mention.excerpt || "", tag: "mention-" + mention.id });
    note.onclick = () => {
      window.focus();
      onOpen(mention.conversation_id);
      note.close();
    };
  }
}
