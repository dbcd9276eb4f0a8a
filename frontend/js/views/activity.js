// The conversation's activity between its messages: small centred lines ("Lê Minh Khoa đã nhận xử lý · 07:01")
// from GET /api/conversations/{id}/activity. Any field may be missing (erasure strips them): a line still shows.

import { h } from "../dom.js";
import { clock, label, t } from "../i18n.js";
import { userName } from "../state.js";

const PAGE_INBOX_APP = "263902037430900"; // Facebook's own Page inbox (Business Suite, the Pages app)

function agentName(id, name) {
  return name || userName(id) || "—";
}

function assignedText(item, who) {
  const d = item.data;
  const previous = d.previous || {};
  const agentChanged = d.agent_id !== previous.agent_id;
  const teamChanged = "team_id" in d && d.team_id !== previous.team_id;
  const parts = [];
  if (agentChanged || !teamChanged) {
    if (d.agent_id != null) {
      const agent = agentName(d.agent_id, d.agent_name);
      if (!who) parts.push(t("activity.assigned", { agent }));
      else parts.push(d.agent_id === item.actor_id ? t("activity.took", { who }) : t("activity.assignedBy", { who, agent }));
    } else if (!who) parts.push(t("activity.unassigned"));
    else parts.push(previous.agent_id === item.actor_id ? t("activity.gaveUp", { who }) : t("activity.unassignedBy", { who }));
  }
  if (teamChanged) parts.push(d.team_id != null ? t("activity.toTeam", { team: d.team_name || "#" + d.team_id }) : t("activity.noTeam"));
  return parts.join(" · ");
}

function statusText(item, who) {
  const status = item.data.status;
  if (status === "resolved") return who ? t("activity.resolvedBy", { who }) : t("activity.resolved");
  if (status === "open") {
    if (who) return t("activity.reopenedBy", { who });
    return item.data.reason === "snooze_ended" ? t("activity.snoozeEnded") : t("activity.reopenedPlain");
  }
  const name = status ? label("status", status).toLowerCase() : "—";
  return who ? t("activity.statusBy", { who, status: name }) : t("activity.status", { status: name });
}

function threadControlText(data) {
  const id = data.new_owner_app_id; // for a request: the app asking
  const app = !id ? null : String(id) === PAGE_INBOX_APP ? t("activity.pageInbox") : t("activity.app", { id });
  if (data.action === "requested") return app ? t("activity.threadRequested", { app }) : t("activity.threadRequestedOther");
  return app ? t("activity.threadTo", { app }) : t("activity.threadOther");
}

/** What happened, in the reader's language. */
export function activityText(item) {
  const d = item.data || {};
  const who = item.actor_type === "agent" ? agentName(item.actor_id, item.actor_name) : null;
  switch (item.kind) {
    case "opened":
      return t("activity.opened");
    case "reopened":
      return t("activity.reopened");
    case "assigned":
      return assignedText({ ...item, data: d }, who);
    case "status_changed":
      return statusText({ ...item, data: d }, who);
    case "labels_changed":
      return t("activity.labels", { who: who || t("msg.system"), labels: (d.labels || []).join(", ") || "—" });
    case "referral": {
      const referral = d.referral || {};
      if (String(referral.type || "").toLowerCase() === "follow") return t("activity.followed");
      return referral.source ? t("activity.referral", { source: referral.source }) : t("activity.referralAny");
    }
    case "unfollowed":
      return t("activity.unfollowed");
    case "thread_control":
      return threadControlText(d);
    case "handoff":
      return t("activity.handoff");
    case "sla_breached":
      return t("activity.sla", { target: d.target ? label("activity.slaTarget", d.target) : "—" });
    case "csat_answered":
      return d.rating != null ? t("activity.csat", { rating: d.rating }) : t("activity.csatAny");
    default:
      return item.kind;
  }
}

export function activityView(item) {
  return h(
    "div",
    { class: "activity muted small", "data-testid": "activity", "data-kind": item.kind, "data-id": item.id },
    activityText(item) + " · ",
    h("time", { datetime: item.at }, clock(item.at)),
  );
}

/** Messages and activity in one time line: each line goes before the first message that came after it. Activity
 *  older than the oldest message loaded waits until older messages are loaded (`complete` false). */
export function timeline(messages, activity, complete) {
  const since = !complete && messages.length ? Date.parse(messages[0].created_at) : -Infinity;
  const lines = activity.filter((a) => Date.parse(a.at) >= since).sort((a, b) => Date.parse(a.at) - Date.parse(b.at) || a.id - b.id);
  const out = [];
  let next = 0;
  for (const msg of messages) {
    const at = Date.parse(msg.created_at);
    while (next < lines.length && Date.parse(lines[next].at) <= at) out.push({ activity: lines[next++] });
    out.push({ message: msg });
  }
  while (next < lines.length) out.push({ activity: lines[next++] });
  return out;
}
