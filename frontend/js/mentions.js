// @mentions: the caller's own list and unread count (GET /api/mentions), kept current by `mention.created` /
// `mention.read` frames (addressed to this user only), and marked read when the conversation is opened.

import { get, post } from "./api.js";
import { emit, state } from "./state.js";

const PAGE = 20;
const MAX_PAGE = 100; // GET /api/mentions's largest `limit`
let loadToken = 0;

/** The newest mentions and the unread count again (after a frame, a reconnect or a resync): the server decides.
 * As many as the list shows now (up to 100), so a frame does not fold pages the agent opened with "Load more". */
export async function loadMentions() {
  const token = ++loadToken;
  const limit = Math.min(MAX_PAGE, Math.max(PAGE, state.mentions.items.length));
  const page = await get(`/api/mentions?limit=${limit}`);
  if (token !== loadToken) return; // a newer load won
  state.mentions = { items: page.items, unread: page.unread_count, next: page.next_cursor };
  emit("mentions");
}

/** The next older page under the list ("Load more"). */
export async function loadMoreMentions() {
  const cursor = state.mentions.next;
  if (!cursor) return;
  const token = loadToken;
  const page = await get(`/api/mentions?limit=${PAGE}&cursor=${cursor}`);
  if (token !== loadToken || state.mentions.next !== cursor) return; // the list was loaded again meanwhile
  state.mentions = { items: [...state.mentions.items, ...page.items], unread: page.unread_count, next: page.next_cursor };
  emit("mentions");
}

/** "Mark all read": every unread mention of mine, shown or not; my other pages get `mention.read`. */
export async function markAllMentionsRead() {
  const answer = await post("/api/mentions/read", { all: true });
  const at = new Date().toISOString();
  for (const item of state.mentions.items) if (!item.read_at) item.read_at = at;
  state.mentions.unread = answer.unread_count;
  emit("mentions");
}

/** The agent opened this conversation: what mentioned them in it is read. */
export async function markConversationRead(conversationId) {
  if (!state.mentions.unread) return;
  const answer = await post("/api/mentions/read", { conversation_id: conversationId });
  if (!answer.marked) return;
  const at = new Date().toISOString();
  for (const item of state.mentions.items) if (item.conversation_id === conversationId && !item.read_at) item.read_at = at;
  state.mentions.unread = answer.unread_count;
  emit("mentions");
}

/** Folded for matching what is typed: lower case, without Vietnamese diacritics ("Lân" ~ "lan", "Đức" ~ "duc"). */
export function fold(text) {
  return String(text || "")
    .normalize("NFD")
    .replace(/[\u0300-\u036f]/g, "")
    .replace(/đ/g, "d")
    .replace(/Đ/g, "D")
    .toLowerCase();
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A note's text as text nodes, with each `@Name` of a colleague as a highlighted mark (longest names first). */
export function withMentions(text, h) {
  const names = [...state.users.values()].map((u) => u.name).filter(Boolean);
  if (state.me && state.me.name) names.push(state.me.name);
  const unique = [...new Set(names)].sort((a, b) => b.length - a.length);
  if (!text || !unique.length || !text.includes("@")) return text || "";
  const pattern = new RegExp("@(" + unique.map(escapeRegExp).join("|") + ")", "g");
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    parts.push(text.slice(last, match.index));
    parts.push(h("mark", { class: "mention", "data-testid": "mention" }, match[0]));
    last = match.index + match[0].length;
  }
  parts.push(text.slice(last));
  return parts;
}
