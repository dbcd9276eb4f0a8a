// The supervisor dashboard: live figures (queue, longest wait, who is online and their load, unanswered),
// agent performance with SVG charts, sentiment and intent mix; every figure drills down to its conversations.
// It reads /api/reports/* when the server has them; the live figures otherwise come from the conversation list.

import { get, optional, query } from "../api.js";
import { h, replace } from "../dom.js";
import { ago, conversationChannel, duration, label, previewText, t } from "../i18n.js";
import { on, state, userName } from "../state.js";
import { barChart, lineChart } from "./charts.js";
import { channelBadge, sentimentBadge } from "./inbox.js";

const PAGE_LIMIT = 100;
const MAX_PAGES = 10;

async function allConversations(params) {
  const items = [];
  let cursor = null;
  for (let page = 0; page < MAX_PAGES; page += 1) {
    const data = await get("/api/conversations" + query({ ...params, limit: PAGE_LIMIT, cursor }));
    items.push(...data.items);
    cursor = data.next_cursor;
    if (!cursor) break;
  }
  return items;
}

/** Waiting for us: the customer wrote last. */
function unanswered(conv) {
  return conv.last_incoming_at && (!conv.last_message_at || conv.last_incoming_at >= conv.last_message_at);
}

// Reports count days in the shop's time zone (Asia/Ho_Chi_Minh), whatever the browser's own zone is.
const SHOP_DAY = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Ho_Chi_Minh", year: "numeric", month: "2-digit", day: "2-digit" });

function isoDay(date) {
  return SHOP_DAY.format(date);
}

function pick(obj, ...names) {
  for (const name of names) {
    const value = name.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
    if (value !== undefined && value !== null) return value;
  }
  return null;
}

export function mount(main, args, ctx) {
  const to = new Date();
  const from = new Date(Date.now() - 7 * 86400 * 1000);
  const range = { from: isoDay(from), to: isoDay(to) };
  const tilesEl = h("div", { class: "tiles", "data-testid": "live-tiles" });
  const drillEl = h("div", { class: "drill-slot" });
  const agentsEl = h("div", { class: "card" });
  const chartsEl = h("div", { class: "cards" });
  const trendsEl = h("div", { class: "cards" });
  const customersEl = h("div", { class: "cards" });
  const noteEl = h("p", { class: "muted small" });
  const fromInput = h("input", { type: "date", value: range.from, onchange: (e) => ((range.from = e.target.value), refresh({ full: true })) });
  const toInput = h("input", { type: "date", value: range.to, onchange: (e) => ((range.to = e.target.value), refresh({ full: true })) });
  const page = h(
    "div",
    { class: "page", "data-testid": "dashboard" },
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, t("dash.title")),
      h("span", { class: "spacer" }),
      h("label", { class: "inline" }, t("dash.from"), " ", fromInput),
      h("label", { class: "inline" }, t("dash.to"), " ", toInput),
      h("button", { class: "btn", onclick: () => refresh({ full: true }) }, t("dash.refresh")),
    ),
    noteEl,
    h("h2", {}, t("dash.live")),
    tilesEl,
    drillEl,
    agentsEl,
    trendsEl,
    chartsEl,
    customersEl,
  );
  replace(main, page);

  function drill(title, conversations) {
    replace(
      drillEl,
      h(
        "div",
        { class: "card drill", "data-testid": "drill" },
        h("div", { class: "page-head" }, h("h2", {}, t("dash.drill") + ": " + title), h("span", { class: "spacer" }), h("button", { class: "btn ghost", onclick: () => replace(drillEl) }, t("dash.close"))),
        conversations.length
          ? h(
              "ul",
              { class: "plain" },
              conversations.map((c) =>
                h(
                  "li",
                  {},
                  h("a", { href: "#/inbox/" + c.id, "data-testid": "drill-item" }, (c.contact && c.contact.name) || "#" + c.id),
                  " ",
                  channelBadge(conversationChannel(c)),
                  " ",
                  sentimentBadge(c.sentiment),
                  " ",
                  h("span", { class: "muted small" }, previewText(c.last_message_preview), " · ", ago(c.last_activity_at)),
                ),
              ),
            )
          : h("p", { class: "muted" }, t("empty.nothing")),
      ),
    );
  }

  function tile(key, value, onClick, alert) {
    return h(
      "button",
      { class: ["tile", alert && "alert"], "data-testid": "tile-" + key.split(".")[1], onclick: onClick },
      h("span", { class: "muted" }, t(key)),
      h("span", { class: "value", "data-testid": "value" }, String(value)),
    );
  }

  /** Live figures: /api/reports/live (agents/live.py) when the server has it, else computed from the list. */
  async function renderLive(open, byId) {
    const live = await optional("/api/reports/live").catch(() => null);
    const counts = (live && live.counts) || {};
    const queue = open.filter((c) => c.assignee_id === null);
    const waiting = open.filter(unanswered).sort((a, b) => Date.parse(a.last_incoming_at) - Date.parse(b.last_incoming_at));
    const computedLongest = waiting.length ? (Date.now() - Date.parse(waiting[0].last_incoming_at)) / 1000 : null;
    const routed = live && live.queue && live.queue.length ? live.queue : null;
    const longest = routed ? routed.longest_waiting_seconds : computedLongest;
    const longestList = routed ? routed.items.map((q) => byId.get(q.conversation_id)).filter(Boolean) : waiting.slice(0, 20);
    const nobody = live && Array.isArray(live.unanswered) ? live.unanswered.map((u) => byId.get(u.id)).filter(Boolean) : waiting;
    const load = new Map();
    for (const c of open) if (c.assignee_id !== null) load.set(c.assignee_id, (load.get(c.assignee_id) || 0) + 1);
    const online =
      live && Array.isArray(live.agents)
        ? live.agents.filter((a) => a.presence !== "offline").map((a) => ({ ...a, name: a.name || userName(a.id) }))
        : [...state.presence.entries()].filter(([, s]) => s === "online").map(([id]) => ({ id, name: userName(id), load: load.get(id) || 0, presence: "online" }));
    const byAgent = (id) => open.filter((c) => c.assignee_id === id);
    replace(
      tilesEl,
      tile("dash.queue", counts.unassigned ?? queue.length, () => drill(t("dash.queue"), queue), queue.length > 0),
      tile("dash.longest", longest === null ? "—" : duration(longest), () => drill(t("dash.longest"), longestList), longest > 900),
      tile("dash.unanswered", counts.unanswered ?? nobody.length, () => drill(t("dash.unanswered"), nobody), nobody.length > 0),
      tile("dash.open", counts.open ?? open.length, () => drill(t("dash.open"), open)),
      h(
        "div",
        { class: "tile", "data-testid": "tile-online" },
        h("span", { class: "muted" }, t("dash.online")),
        h("span", { class: "value" }, String(online.filter((a) => a.presence === "online").length)),
        h(
          "ul",
          { class: "plain small" },
          online.map((a) =>
            h("li", {}, h("button", { class: "link", onclick: () => drill(a.name, byAgent(a.id)) }, a.name), " — ", t("dash.load"), ": ", String(a.load ?? 0), a.capacity ? "/" + a.capacity : "", a.presence !== "online" ? " (" + label("presence", a.presence) + ")" : ""),
          ),
        ),
      ),
    );
  }

  function drillRoute(paths) {
    if (paths["/api/reports/agents/conversations"]) return "/api/reports/agents/conversations";
    return Object.keys(paths).find((p) => p.startsWith("/api/reports") && p.endsWith("/conversations")) || null;
  }

  /** The facts behind one figure (agents/reports.py drilldown), shown as the conversations they came from. */
  async function drillFacts(title, route, agentId, metric, byId) {
    const path = route.replace(/\{[^}]+\}/, encodeURIComponent(agentId ?? ""));
    const data = await optional(path + query({ ...range, metric, group: "agent", key: agentId, agent_id: agentId })).catch(() => null);
    const facts = data ? data.items || [] : [];
    const seen = new Map();
    for (const fact of facts) {
      const id = fact.conversation_id ?? fact.id;
      if (seen.has(id)) continue;
      const conv = byId.get(id) || (await optional(`/api/conversations/${id}`).catch(() => null));
      if (conv) seen.set(id, { ...conv, last_message_preview: fact.seconds != null ? duration(fact.seconds) : conv.last_message_preview });
    }
    drill(title, [...seen.values()]);
  }

  async function renderAgents(all, byId) {
    const report = await optional("/api/reports/agents" + query(range)).catch(() => null);
    noteEl.textContent = report ? "" : t("dash.noReports");
    const rows = report ? report.items || report.agents || [] : [];
    if (!rows.length) {
      // Without reports: how many conversations each agent holds, from the list.
      const held = new Map();
      for (const c of all) if (c.assignee_id !== null) held.set(c.assignee_id, (held.get(c.assignee_id) || []).concat(c));
      replace(
        agentsEl,
        h("h2", {}, t("dash.leaderboard")),
        held.size
          ? barChart(
              [...held.entries()].sort((a, b) => b[1].length - a[1].length).map(([id, convs]) => ({ label: userName(id), value: convs.length, onClick: () => drill(userName(id), convs) })),
              { format: String },
            )
          : h("p", { class: "muted" }, t("empty.nothing")),
      );
      return;
    }
    const paths = (await optional("/api/openapi.json").catch(() => null))?.paths || {};
    const route = drillRoute(paths);
    const agentId = (row) => row.agent_id ?? row.id ?? row.user_id ?? row.key;
    const median = (row, metric) => pick(row, metric + ".median", metric + "_median");
    const columns = [
      ["dash.handled", "conversations_handled", (row) => pick(row, "conversations_handled", "conversations") ?? 0, String],
      ["dash.firstResponse", "first_response_time", (row) => median(row, "first_response_time"), (v) => duration(v)],
      ["dash.replyTime", "reply_time", (row) => median(row, "reply_time"), (v) => duration(v)],
      ["dash.resolution", "resolution_time", (row) => median(row, "resolution_time"), (v) => duration(v)],
      ["dash.csat", "csat", (row) => (typeof row.csat === "number" ? row.csat : pick(row, "csat.mean")), (v) => (v == null ? "—" : Number(v).toFixed(2))],
    ];
    const sorted = [...rows].sort((a, b) => (pick(b, "conversations_handled") ?? 0) - (pick(a, "conversations_handled") ?? 0));
    replace(
      agentsEl,
      h("h2", {}, t("dash.agents")),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { "data-testid": "agents-table" },
          h("thead", {}, h("tr", {}, h("th", {}, t("dash.agent")), columns.map(([key]) => h("th", { class: "num" }, t(key))))),
          h(
            "tbody",
            {},
            sorted.map((row) => {
              const id = agentId(row);
              const name = id == null ? t("dash.outside") : row.name || userName(id); // replies sent outside hopthu
              return h(
                "tr",
                {},
                h("td", {}, name),
                columns.map(([key, metric, value, fmt]) =>
                  h(
                    "td",
                    { class: "num" },
                    route
                      ? h("button", { class: "link", "data-testid": "metric-" + metric, onclick: () => drillFacts(name + " — " + t(key), route, id, metric, byId) }, fmt(value(row)))
                      : fmt(value(row)),
                  ),
                ),
              );
            }),
          ),
        ),
      ),
      h("h3", {}, t("dash.firstResponse")),
      barChart(
        sorted
          .filter((row) => median(row, "first_response_time") != null)
          .map((row) => ({ label: row.name || userName(agentId(row)), value: Number(median(row, "first_response_time")), onClick: route ? () => drillFacts(row.name, route, agentId(row), "first_response_time", byId) : null })),
        { format: (v) => duration(v) },
      ),
    );
  }

  /** Per day from the reports (group_by=day): first response median and conversations handled. */
  async function renderTrends() {
    const [summary, teams] = await Promise.all([
      optional("/api/reports/summary" + query({ ...range, group_by: "day" })).catch(() => null),
      optional("/api/reports/summary" + query({ ...range, group_by: "team" })).catch(() => null),
    ]);
    if (!summary || !summary.items || !summary.items.length) return replace(trendsEl);
    const teamRows = ((teams && teams.items) || []).filter((i) => i.key !== null);
    const days = summary.items.filter((i) => i.key).sort((a, b) => String(a.key).localeCompare(String(b.key)));
    const point = (i, value) => ({ label: String(i.key).slice(5), value: Number(value || 0) });
    replace(
      trendsEl,
      h("div", { class: "card" }, h("h2", {}, t("dash.firstResponse")), lineChart(days.map((i) => point(i, pick(i, "first_response_time.median"))), { format: (v) => duration(v) })),
      h("div", { class: "card" }, h("h2", {}, t("dash.resolution")), lineChart(days.map((i) => point(i, pick(i, "resolution_time.median"))), { format: (v) => duration(v) })),
      h("div", { class: "card" }, h("h2", {}, t("dash.replyTime")), lineChart(days.map((i) => point(i, pick(i, "reply_time.median"))), { format: (v) => duration(v) })),
      h("div", { class: "card" }, h("h2", {}, t("dash.csat")), lineChart(days.map((i) => point(i, pick(i, "csat.mean"))))),
      teamRows.length
        ? h(
            "div",
            { class: "card" },
            h("h2", {}, t("dash.teams")),
            h(
              "table",
              {},
              h("thead", {}, h("tr", {}, h("th", {}, t("admin.name")), h("th", { class: "num" }, t("dash.handled")), h("th", { class: "num" }, t("dash.firstResponse")))),
              h("tbody", {}, teamRows.map((i) => h("tr", {}, h("td", {}, i.name || "#" + i.key), h("td", { class: "num" }, String(i.conversations_handled ?? 0)), h("td", { class: "num" }, duration(pick(i, "first_response_time.median")))))),
            ),
          )
        : null,
    );
  }

  /** Customers: business KPIs and the RFM segment grid (contacts helper), each cell listing its customers. */
  async function renderCustomers() {
    const [kpis, segments] = await Promise.all([
      optional("/api/reports/customers").catch(() => null),
      optional("/api/segments").catch(() => null),
    ]);
    if (!kpis && !segments) return replace(customersEl);
    const names = (segments && segments.rfm_segments) || [];
    const cells = await Promise.all(
      names.map(async (name) => {
        const data = await optional("/api/contacts" + query({ segment: "rfm:" + name, limit: 100 })).catch(() => null);
        return { name, contacts: (data && data.items) || [], more: Boolean(data && data.next_cursor) };
      }),
    );
    const showCustomers = (cell) =>
      replace(
        drillEl,
        h(
          "div",
          { class: "card drill", "data-testid": "drill" },
          h("div", { class: "page-head" }, h("h2", {}, t("dash.segments") + ": " + label("rfm", cell.name)), h("span", { class: "spacer" }), h("button", { class: "btn ghost", onclick: () => replace(drillEl) }, t("dash.close"))),
          cell.contacts.length ? h("ul", { class: "plain" }, cell.contacts.map((c) => h("li", {}, c.name || "#" + c.id, " ", h("span", { class: "muted small" }, c.phone || "")))) : h("p", { class: "muted" }, t("empty.nothing")),
        ),
      );
    replace(
      customersEl,
      kpis
        ? h(
            "div",
            { class: "card" },
            h("h2", {}, t("dash.customers")),
            h(
              "div",
              { class: "kpis" },
              [
                ["dash.revenue", Number(kpis.revenue || 0).toLocaleString("vi-VN") + " ₫"],
                ["dash.orders", kpis.orders],
                ["dash.aov", Number(kpis.aov || 0).toLocaleString("vi-VN") + " ₫"],
                ["dash.repeat", Math.round((kpis.repeat_purchase_rate || 0) * 100) + "%"],
                ["dash.conversion", Math.round((kpis.chat_to_order_conversion || 0) * 100) + "%"],
              ].map(([key, value]) => h("div", { class: "kpi" }, h("span", { class: "muted small" }, t(key)), h("strong", {}, String(value ?? 0)))),
            ),
          )
        : null,
      cells.length
        ? h(
            "div",
            { class: "card" },
            h("h2", {}, t("dash.segments")),
            h(
              "div",
              { class: "rfm-grid", "data-testid": "rfm-grid" },
              cells.map((cell) =>
                h("button", { class: ["rfm-cell", cell.contacts.length && "filled"], onclick: () => showCustomers(cell) }, h("span", { class: "small" }, label("rfm", cell.name)), h("strong", {}, cell.contacts.length + (cell.more ? "+" : ""))),
              ),
            ),
          )
        : null,
    );
  }

  function renderCharts(all) {
    const sentiments = ["negative", "neutral", "positive"].map((s) => {
      const convs = all.filter((c) => c.sentiment === s);
      return { label: label("sentiment", s), value: convs.length, cls: s === "negative" ? "neg" : s === "positive" ? "pos" : "", onClick: () => drill(label("sentiment", s), convs) };
    });
    const intents = new Map();
    for (const c of all) if (c.intent) intents.set(c.intent, (intents.get(c.intent) || []).concat(c));
    const days = [];
    for (let d = new Date(range.from); d <= new Date(range.to); d.setDate(d.getDate() + 1)) days.push(isoDay(d));
    const perDay = days.map((day) => {
      const convs = all.filter((c) => (c.created_at || "").slice(0, 10) === day);
      return { label: day.slice(5), value: convs.length, onClick: () => drill(day, convs) };
    });
    const negativeShare = days.map((day) => {
      const convs = all.filter((c) => (c.created_at || "").slice(0, 10) === day);
      const negative = convs.filter((c) => c.sentiment === "negative");
      return { label: day.slice(5), value: convs.length ? Math.round((100 * negative.length) / convs.length) : 0, onClick: () => drill(day, negative) };
    });
    replace(
      chartsEl,
      h("div", { class: "card" }, h("h2", {}, t("dash.sentiment")), barChart(sentiments, { format: String })),
      h("div", { class: "card" }, h("h2", {}, t("dash.intent")), intents.size ? barChart([...intents.entries()].map(([k, convs]) => ({ label: k, value: convs.length, onClick: () => drill(k, convs) })), { format: String }) : h("p", { class: "muted" }, t("empty.nothing"))),
      h("div", { class: "card" }, h("h2", {}, t("dash.volume")), lineChart(perDay)),
      h("div", { class: "card" }, h("h2", {}, t("dash.negativeTrend")), lineChart(negativeShare, { format: (v) => v + "%" })),
    );
  }

  let running = null;
  let slowDone = false;
  async function refresh({ full = false } = {}) {
    if (full) slowDone = false;
    if (running) return running;
    running = (async () => {
      try {
        const all = await allConversations({ assignee: "all" });
        const byId = new Map(all.map((c) => [c.id, c]));
        const open = all.filter((c) => c.status === "open");
        await Promise.all([renderLive(open, byId), renderAgents(all, byId)]);
        renderCharts(all);
        if (!slowDone) {
          // Trends and customers change slowly: loaded with the page and on "refresh", not on every event.
          slowDone = true;
          await Promise.all([renderTrends(), renderCustomers()]);
        }
      } catch (err) {
        noteEl.textContent = t("error.generic", { message: err.message });
      } finally {
        running = null;
      }
    })();
    return running;
  }

  let timer = null;
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 800);
  };
  refresh();
  const offs = [
    on("conversation-event", soon),
    on("presence", soon),
    on("reloaded", soon),
    on("event", (frame) => frame.type === "queue.live" && soon()),
  ];
  const ticker = setInterval(refresh, 30_000);
  return () => {
    offs.forEach((off) => off());
    clearInterval(ticker);
    clearTimeout(timer);
  };
}
