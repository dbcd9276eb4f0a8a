// What the app knows, in one place: the list, the open conversation and its messages, presence, typing.
// Live events are upserts of whole objects (the server sends the full conversation or message), so applying one
// twice, or after a reload, is harmless. Views subscribe to named topics and redraw only their part.

import { get, post, query } from "./api.js";

export const state = {
  me: null,
  inboxes: new Map(),
  users: new Map(),
  conversations: new Map(),
  listIds: [],
  nextCursor: null,
  listLoading: false,
  filters: { tab: "all", status: "open", inbox_id: "", channel: "", label: "", sentiment: "", intent: "", segment: "", q: "" },
  segments: null, // saved segments and RFM names, for the list filter (null until loaded or when unavailable)
  currentId: null,
  messages: [],
  nextBefore: null,
  activity: [], // the open conversation's activity (taken, assigned, resolved…), oldest first
  typing: new Map(), // conversation id → {user_id, sender_type, until}
  mentions: { items: [], unread: 0, next: null }, // the caller's latest @mentions in private notes (mentions.js)
  presence: new Map(), // user id → "online" | "offline"
  connection: "connecting",
  prefs: {
    notify: localStorage.getItem("hopthu.notify") === "1",
    sound: localStorage.getItem("hopthu.sound") !== "0",
  },
};

const listeners = new Map();

export function on(topic, fn) {
  if (!listeners.has(topic)) listeners.set(topic, new Set());
  listeners.get(topic).add(fn);
  return () => listeners.get(topic).delete(fn);
}

export function emit(topic, detail) {
  for (const fn of listeners.get(topic) || []) {
    try {
      fn(detail);
    } catch (err) {
      console.error(err);
    }
  }
}

export function setPref(name, value) {
  state.prefs[name] = value;
  localStorage.setItem("hopthu." + name, value ? "1" : "0");
  emit("prefs");
}

export function listParams(extra) {
  const f = state.filters;
  const assignee = { mine: "me", unassigned: "unassigned", all: "all" }[f.tab];
  return {
    assignee,
    status: f.status,
    inbox_id: f.inbox_id,
    channel: f.channel,
    label: f.label,
    sentiment: f.sentiment,
    intent: f.intent,
    segment: f.segment,
    q: f.q,
    limit: 30,
    ...extra,
  };
}

/** Whether a conversation belongs in the list as filtered now (search results are the server's to decide). */
export function matches(conv) {
  const f = state.filters;
  if (f.status && conv.status !== f.status) return false;
  if (f.tab === "mine" && conv.assignee_id !== state.me.id) return false;
  if (f.tab === "unassigned" && conv.assignee_id !== null) return false;
  if (f.inbox_id && conv.inbox_id !== Number(f.inbox_id)) return false;
  if (f.channel && conv.channel !== f.channel) return false;
  if (f.label && !(conv.labels || []).includes(f.label)) return false;
  if (f.sentiment && conv.sentiment !== f.sentiment) return false;
  if (f.intent && conv.intent !== f.intent) return false;
  // Search and segments are the server's to decide: keep what it listed, add nothing new.
  if (f.q || f.segment) return state.listIds.includes(conv.id);
  return true;
}

function activity(conv) {
  return Date.parse(conv.last_activity_at || conv.last_message_at || conv.created_at || 0) || 0;
}

function sortList() {
  state.listIds.sort((a, b) => {
    const ca = state.conversations.get(a);
    const cb = state.conversations.get(b);
    return activity(cb) - activity(ca) || b - a;
  });
}

let listToken = 0;

export async function loadList() {
  const token = ++listToken;
  state.listLoading = true;
  emit("list");
  try {
    const page = await get("/api/conversations" + query(listParams()));
    if (token !== listToken) return; // a newer filter won
    state.listIds = [];
    for (const conv of page.items) {
      state.conversations.set(conv.id, conv);
      state.listIds.push(conv.id);
    }
    state.nextCursor = page.next_cursor;
  } finally {
    if (token === listToken) {
      state.listLoading = false;
      emit("list");
    }
  }
}

export async function loadMore() {
  if (!state.nextCursor) return;
  const token = listToken;
  const page = await get("/api/conversations" + query(listParams({ cursor: state.nextCursor })));
  if (token !== listToken) return;
  for (const conv of page.items) {
    state.conversations.set(conv.id, conv);
    if (!state.listIds.includes(conv.id)) state.listIds.push(conv.id);
  }
  state.nextCursor = page.next_cursor;
  emit("list");
}

export function setFilters(changes) {
  Object.assign(state.filters, changes);
  emit("filters");
  return loadList().catch((err) => emit("error", err));
}

export async function openConversation(id) {
  state.currentId = id;
  state.messages = [];
  state.nextBefore = null;
  state.activity = [];
  emit("thread");
  if (id === null) return emit("messages"); // none open: the last one's messages go too
  const [conv, page, activity] = await Promise.all([
    get(`/api/conversations/${id}`),
    get(`/api/conversations/${id}/messages?limit=50`),
    fetchActivity(id),
  ]);
  if (state.currentId !== id) return;
  upsertConversation(conv, { keepInList: true });
  state.messages = page.items;
  state.nextBefore = page.next_before;
  state.activity = activity;
  emit("thread");
  emit("messages");
  if (conv.unread_count) post(`/api/conversations/${id}/read`).catch(() => {});
}

// The activity is a side line of the thread: when it cannot be read, the messages still show.
function fetchActivity(id) {
  return get(`/api/conversations/${id}/activity?limit=200`).then((page) => page.items, () => []);
}

let activityToken = 0;
let activityTimer = null;

/** The open conversation changed (taken, assigned, resolved…): its activity again, once a burst of frames settles
 *  (every customer message updates the conversation too), the latest answer winning. */
function reloadActivitySoon(id) {
  clearTimeout(activityTimer);
  activityTimer = setTimeout(async () => {
    const token = ++activityToken;
    const items = await fetchActivity(id);
    if (token !== activityToken || state.currentId !== id) return;
    state.activity = items;
    emit("messages", { activity: true });
  }, 250);
}

export async function loadOlder() {
  const id = state.currentId;
  if (!id || !state.nextBefore) return;
  const page = await get(`/api/conversations/${id}/messages?limit=50&before=${state.nextBefore}`);
  if (state.currentId !== id) return;
  const known = new Set(state.messages.map((m) => m.id));
  state.messages = [...page.items.filter((m) => !known.has(m.id)), ...state.messages];
  state.nextBefore = page.next_before;
  emit("messages", { older: true });
}

/** Everything again after a resync or a restart: the list, the open conversation, its messages. */
export async function reloadAll() {
  const jobs = [loadList()];
  if (state.currentId !== null) jobs.push(openConversation(state.currentId));
  await Promise.all(jobs);
  emit("reloaded");
}

export function upsertConversation(conv, { keepInList = false } = {}) {
  const had = state.conversations.get(conv.id);
  state.conversations.set(conv.id, { ...(had || {}), ...conv });
  const inList = state.listIds.includes(conv.id);
  const belongs = matches(conv) || (keepInList && inList);
  if (belongs && !inList) state.listIds.push(conv.id);
  if (!belongs && inList) state.listIds = state.listIds.filter((id) => id !== conv.id);
  sortList();
  emit("list");
  if (conv.id === state.currentId) emit("thread");
}

/** A conversation this agent may no longer read (moved to a team they are not in) or that was deleted. */
export function removeConversation(id) {
  state.conversations.delete(id);
  state.listIds = state.listIds.filter((other) => other !== id);
  state.typing.delete(id);
  emit("list");
  emit("conversation-removed", id);
  if (id === state.currentId) openConversation(null);
}

// Delivery only moves forward. Frames about one message come from different writers (the outbox after its send,
// the processor on a receipt, the thread's own fetch), so a "sent" written before a "delivered" may arrive after it.
const DELIVERY_RANK = { pending: 0, sent: 1, delivered: 2, read: 3 };

function newerDelivery(known, incoming) {
  const before = DELIVERY_RANK[known.delivery_status];
  const after = DELIVERY_RANK[incoming.delivery_status];
  if (before === undefined || after === undefined || after >= before) return incoming;
  return { ...incoming, delivery_status: known.delivery_status, failure_reason: known.failure_reason };
}

export function upsertMessage(msg) {
  if (msg.conversation_id !== state.currentId) return false;
  const index = state.messages.findIndex((m) => m.id === msg.id);
  if (index >= 0) state.messages[index] = newerDelivery(state.messages[index], msg);
  else state.messages.push(msg);
  state.messages.sort((a, b) => a.id - b.id);
  emit("messages", { added: index < 0 ? msg : null });
  return true;
}

let readTimer = null;

/** The agent is looking at this conversation: what just arrived is read (once the burst settles). */
function markReadSoon(id) {
  if (document.visibilityState !== "visible") return;
  clearTimeout(readTimer);
  readTimer = setTimeout(() => {
    if (state.currentId === id) post(`/api/conversations/${id}/read`).catch(() => {});
  }, 1000);
}

export function applyEvent(frame) {
  const data = frame.data || {};
  switch (frame.type) {
    case "conversation.created":
    case "conversation.updated":
    case "conversation.assigned":
      upsertConversation(data);
      if (frame.type !== "conversation.created" && data.id === state.currentId) reloadActivitySoon(data.id);
      emit("conversation-event", frame);
      break;
    case "conversation.removed":
    case "conversation.deleted":
      removeConversation(data.id);
      emit("conversation-event", frame);
      break;
    case "message.created":
    case "message.updated":
      if (upsertMessage(data) && frame.type === "message.created" && data.direction === "in") markReadSoon(data.conversation_id);
      emit("message-event", frame);
      break;
    case "typing":
      if (data.user_id === state.me.id && data.sender_type === "agent") break;
      if (data.on === false) state.typing.delete(data.conversation_id);
      else state.typing.set(data.conversation_id, { ...data, until: Date.now() + 6000 });
      emit("typing");
      break;
    case "presence":
      state.presence.set(data.user_id, data.status);
      emit("presence");
      break;
    default:
      emit("event", frame);
  }
  emit("any-event", frame);
}

export function userName(id) {
  if (id === null || id === undefined) return null;
  if (state.me && id === state.me.id) return state.me.name || state.me.email;
  const user = state.users.get(id);
  return user ? user.name || user.email : "#" + id;
}

export function isSupervisor() {
  return state.me && (state.me.role === "supervisor" || state.me.role === "admin");
}
