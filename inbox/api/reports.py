"""Agent performance reports (from the conversation events, through `metric_facts`), their drill-downs, CSV, and the
live queue. Supervisors and admins only.

Periods: `from` / `to` are ISO date-times (with a zone; without one, UTC) or dates `YYYY-MM-DD`, read as whole
days in Asia/Ho_Chi_Minh with `to` included. Default: the last 7 days. `business_hours=true` counts only the
inboxes' business hours. `format=csv` returns the same rows as CSV.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from agents import reports
from agents.business_hours import DEFAULT_TIMEZONE
from agents.live import live_snapshot
from agents.models import Team, User
from agents.presence import PRESENCE
from inbox.api import openapi
from inbox.api.guard import requires
from inbox.http import EARLIEST, LATEST, fail, int_param, json_response, moment
from inbox.serialize import iso

routes = web.RouteTableDef()
DEFAULT_DAYS = 7
CATCH_UP_STEPS = 40  # projection steps a report may run first, so its figures include the latest events


def _moment(raw: str, name: str, *, end: bool) -> datetime:
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            if not EARLIEST.date() <= day < LATEST.date():  # its local midnight in UTC could overflow
                fail(400, "invalid_parameter", f"{name} must be between 1970 and 2100")
            local = datetime.combine(day + timedelta(days=1) if end else day, time(0), ZoneInfo(DEFAULT_TIMEZONE))
            return local.astimezone(UTC)
    except ValueError:
        fail(400, "invalid_parameter", f"{name} must be an ISO date (YYYY-MM-DD) or date-time")
    return moment(raw, name, naive_is_utc=True)


def period(request: web.Request) -> tuple[datetime, datetime]:
    q = request.query
    end = _moment(q["to"], "to", end=True) if q.get("to") else datetime.now(UTC)
    start = _moment(q["from"], "from", end=False) if q.get("from") else end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        fail(400, "invalid_parameter", "from must be before to")
    return start, end


def _flag(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0", "yes", "no"):
        fail(400, "invalid_parameter", f"{name} must be true or false")
    return raw in ("true", "1", "yes")


def _filters(request: web.Request) -> dict[str, Any]:
    q = request.query
    filters: dict[str, Any] = {}
    for name in ("inbox_id", "team_id"):
        if q.get(name):
            filters[name] = int_param(q[name], name)
    if q.get("channel"):
        filters["channel"] = q["channel"]
    return filters


async def _fresh() -> None:
    for _ in range(CATCH_UP_STEPS):
        if not await reports.project():
            return


def _csv(rows: str, filename: str) -> web.Response:
    return web.Response(
        text=rows,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def _names(group: str, keys: list[Any]) -> dict[Any, str]:
    ids = [k for k in keys if k is not None]
    if group == "agent":
        return {u["id"]: u["name"] or u["email"] for u in await User.filter(id__in=ids).values("id", "name", "email")}
    if group == "team":
        return {t["id"]: t["name"] for t in await Team.filter(id__in=ids).values("id", "name")}
    if group == "inbox":
        from inbox.models import Inbox

        return {i["id"]: i["name"] for i in await Inbox.filter(id__in=ids).values("id", "name")}
    return {}


async def _grouped(request: web.Request, group: str) -> dict[str, Any]:
    start, end = period(request)
    business = _flag(request, "business_hours")
    await _fresh()
    figures = await reports.aggregate(start, end, group=group, business=business, filters=_filters(request))
    names = await _names(group, list(figures))
    items = []
    for key in sorted(figures, key=lambda k: (k is None, str(k))):
        item = {"key": key, "name": names.get(key), **figures[key]}
        if group == "agent":
            item = {"agent_id": key, "agent": {"id": key, "name": names.get(key)} if key is not None else None, **item}
            if key is None:
                item["name"] = "Ngoài hopthu / outside hopthu"
        items.append(item)
    return {
        "from": iso(start),
        "to": iso(end),
        "group_by": group,
        "business_hours": business,
        "items": items,
    }


@routes.get("/api/reports/agents")
@requires("supervisor")
async def agents_report(request: web.Request) -> web.StreamResponse:
    data = await _grouped(request, "agent")
    if request.query.get("format") == "csv":
        return _csv(reports.to_csv(data["items"], ["agent_id", "name"]), "hopthu-agents.csv")
    return json_response(data)


@routes.get("/api/reports/summary")
@requires("supervisor")
async def summary_report(request: web.Request) -> web.StreamResponse:
    group = request.query.get("group_by", "agent")
    if group not in reports.GROUPS:
        fail(400, "invalid_parameter", f"group_by must be one of {', '.join(reports.GROUPS)}")
    data = await _grouped(request, group)
    if request.query.get("format") == "csv":
        return _csv(reports.to_csv(data["items"], ["key", "name"]), f"hopthu-{group}.csv")
    return json_response(data)


def _key(request: web.Request, group: str) -> Any:
    raw = request.query.get("key", request.query.get("agent_id") if group == "agent" else None)
    if raw is None or raw in ("", "none", "null"):
        return None
    if group in ("channel", "day"):
        return raw
    return int_param(raw, "key")


async def _drill(request: web.Request, group: str) -> web.StreamResponse:
    start, end = period(request)
    metric = request.query.get("metric", "first_response_time")
    if metric not in reports.METRICS:
        fail(400, "invalid_parameter", f"metric must be one of {', '.join(reports.METRICS)}")
    limit = int_param(request.query.get("limit"), "limit", default=100, high=1000)
    after = int_param(request.query.get("after"), "after", default=0, low=0)
    await _fresh()
    items = await reports.drilldown(
        metric,
        start,
        end,
        group=group,
        key=_key(request, group),
        business=_flag(request, "business_hours"),
        filters=_filters(request),
        limit=limit,
        after_id=after,
    )
    next_after = items[-1]["fact_id"] if len(items) == limit else None
    if request.query.get("format") == "csv":
        import csv
        import io

        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(items[0]) if items else ["conversation_id"])
        writer.writeheader()
        writer.writerows(items)
        return _csv(out.getvalue(), f"hopthu-{metric}.csv")
    return json_response(
        {"metric": metric, "from": iso(start), "to": iso(end), "items": items, "next_after": next_after}
    )


@routes.get("/api/reports/agents/conversations")
@requires("supervisor")
async def agents_drilldown(request: web.Request) -> web.StreamResponse:
    return await _drill(request, "agent")


@routes.get("/api/reports/summary/conversations")
@requires("supervisor")
async def summary_drilldown(request: web.Request) -> web.StreamResponse:
    group = request.query.get("group_by", "agent")
    if group not in reports.GROUPS:
        fail(400, "invalid_parameter", f"group_by must be one of {', '.join(reports.GROUPS)}")
    return await _drill(request, group)


@routes.get("/api/reports/live")
@requires("supervisor")
async def live(request: web.Request) -> web.Response:
    inbox_id = int_param(request.query["inbox_id"], "inbox_id") if request.query.get("inbox_id") else None
    return json_response(await live_snapshot(request.app[PRESENCE], inbox_id))


@routes.post("/api/reports/rebuild")
@requires("admin")
async def rebuild(request: web.Request) -> web.Response:
    """Forget the derived facts and replay every conversation event (after a rule change, or to verify)."""
    conversations = await reports.rebuild()
    return json_response({"conversations": conversations})


_TIMING = {
    "type": "object",
    "properties": {k: {"type": ["number", "null"]} for k in ("median", "p90", "mean")} | {"count": {"type": "integer"}},
}
_FIGURES = {
    "type": "object",
    "properties": {
        "conversations_handled": {"type": "integer"},
        "messages_sent": {"type": "integer"},
        "reassignments": {"type": "integer"},
        "sla_breaches": {"type": "integer"},
        "bot_resolutions": {"type": "integer"},
        "first_response_time": openapi.ref("Timing"),
        "reply_time": openapi.ref("Timing"),
        "resolution_time": openapi.ref("Timing"),
        "csat": {
            "type": "object",
            "properties": {
                "count": {"type": "integer"},
                "mean": {"type": ["number", "null"]},
                "satisfied_share": {"type": ["number", "null"]},
            },
        },
    },
}
_REPORT = {
    "type": "object",
    "properties": {
        "from": {"type": "string", "format": "date-time"},
        "to": {"type": "string", "format": "date-time"},
        "group_by": {"type": "string"},
        "business_hours": {"type": "boolean"},
        "items": {"type": "array", "items": openapi.ref("ReportFigures")},
    },
}
_PERIOD = [
    openapi.query_param("from", {"type": "string"}, "ISO date-time, or a date (local day, Asia/Ho_Chi_Minh)"),
    openapi.query_param("to", {"type": "string"}, "ISO date-time (exclusive), or a date (included)"),
    openapi.query_param("business_hours", {"type": "boolean"}, "count business hours only"),
    openapi.query_param("inbox_id", {"type": "integer"}),
    openapi.query_param("team_id", {"type": "integer"}),
    openapi.query_param("channel", {"type": "string"}),
    openapi.query_param("format", {"enum": ["json", "csv"]}),
]
_GROUP = openapi.query_param("group_by", {"enum": list(reports.GROUPS)})
_DRILL = [
    openapi.query_param("metric", {"enum": list(reports.METRICS)}),
    openapi.query_param("key", {"type": "string"}, "the group's key (agent id, team id, inbox id, channel, day)"),
    openapi.query_param("agent_id", {"type": "string"}, "agent report: the agent (none: replies outside hopthu)"),
    openapi.query_param("limit", {"type": "integer"}),
    openapi.query_param("after", {"type": "integer"}, "fact id to continue after (next_after)"),
]
_OBJ = {"type": "object"}


def _json_or_csv(schema: dict) -> dict:
    """The JSON document, or with `format=csv` the same rows as a CSV attachment."""
    response = openapi.json_response_of(schema)
    response["content"]["text/csv"] = {"schema": {"type": "string"}}
    return response


openapi.document(
    {
        "/api/reports/agents": {
            "get": openapi.op(
                "Per agent: handled, messages, first response / reply / resolution times (median, p90, mean, s),"
                " reassignments, SLA breaches, CSAT — from conversation events",
                _json_or_csv(_REPORT),
                params=_PERIOD,
                role="supervisor",
                tag="reports",
            )
        },
        "/api/reports/summary": {
            "get": openapi.op(
                "The same figures per agent, team, inbox, channel or day",
                _json_or_csv(_REPORT),
                params=[*_PERIOD, _GROUP],
                role="supervisor",
                tag="reports",
            )
        },
        "/api/reports/agents/conversations": {
            "get": openapi.op(
                "Drill-down: the conversations (and events) behind one agent figure",
                _json_or_csv(_OBJ),
                params=[*_PERIOD, *_DRILL],
                role="supervisor",
                tag="reports",
            )
        },
        "/api/reports/summary/conversations": {
            "get": openapi.op(
                "Drill-down: the conversations behind one figure of a group",
                _json_or_csv(_OBJ),
                params=[*_PERIOD, _GROUP, *_DRILL],
                role="supervisor",
                tag="reports",
            )
        },
        "/api/reports/live": {
            "get": openapi.op(
                "Live: queue (length, longest wait, items), agents with presence and load, open/unassigned/waiting/"
                "unanswered counts (also pushed to supervisors as `queue.live` frames)",
                openapi.json_response_of(_OBJ),
                params=[openapi.query_param("inbox_id", {"type": "integer"})],
                role="supervisor",
                tag="reports",
            )
        },
        "/api/reports/rebuild": {
            "post": openapi.op(
                "Rebuild the metric facts from the conversation events",
                openapi.json_response_of(_OBJ),
                role="admin",
                tag="reports",
            )
        },
    },
    {"Timing": _TIMING, "ReportFigures": _FIGURES},
)
