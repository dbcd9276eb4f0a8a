"""`GET /api/audit`: the audit log for admins — newest first, filtered, paged with `before=<id>`."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from agents.models import AuditEntry
from inbox.api.guard import requires
from inbox.api.openapi import document, json_response_of, op, query_param
from inbox.http import MAX_ID, int_param, json_response, moment
from inbox.serialize import iso

routes = web.RouteTableDef()


def entry_json(entry: AuditEntry) -> dict:
    return {
        "id": entry.id,
        "action": entry.action,
        "actor_id": entry.actor_id,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "data": entry.data,
        "ip": entry.ip,
        "occurred_at": iso(entry.occurred_at),
    }


def _time(value: str, name: str) -> datetime:
    return moment(value, name)


@routes.get("/api/audit")
@requires("admin")
async def audit_log(request: web.Request) -> web.Response:
    q = request.query
    limit = int_param(q.get("limit"), "limit", default=50, high=500)
    query = AuditEntry.all()
    if q.get("action"):
        # `contact.` matches every contact action; a full name matches that action only.
        action = q["action"]
        query = query.filter(action__startswith=action) if action.endswith(".") else query.filter(action=action)
    if q.get("actor_id"):
        query = query.filter(actor_id=int_param(q["actor_id"], "actor_id", high=2**31 - 1))
    if q.get("target_type"):
        query = query.filter(target_type=q["target_type"])
    if q.get("target_id"):
        query = query.filter(target_id=q["target_id"])
    if q.get("from"):
        query = query.filter(occurred_at__gte=_time(q["from"], "from"))
    if q.get("to"):
        query = query.filter(occurred_at__lt=_time(q["to"], "to"))
    if q.get("before"):
        query = query.filter(id__lt=int_param(q["before"], "before", high=MAX_ID))
    rows = await query.order_by("-id").limit(limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return json_response({"items": [entry_json(e) for e in rows], "next_before": rows[-1].id if more else None})


document(
    {
        "/api/audit": {
            "get": op(
                "The audit log (admins): logins, failed logins, role, permission, settings and credential changes, "
                "exports, erasures, merges — newest first",
                json_response_of(
                    {
                        "type": "object",
                        "required": ["items", "next_before"],
                        "properties": {
                            "items": {"type": "array", "items": {"$ref": "#/components/schemas/AuditEntry"}},
                            "next_before": {"type": ["integer", "null"]},
                        },
                    }
                ),
                params=[
                    query_param("action", {"type": "string"}, "an action, or a prefix ending with '.'"),
                    query_param("actor_id", {"type": "integer", "minimum": 1}),
                    query_param("target_type", {"type": "string"}),
                    query_param("target_id", {"type": "string"}),
                    query_param("from", {"type": "string", "format": "date-time"}),
                    query_param("to", {"type": "string", "format": "date-time"}),
                    query_param("before", {"type": "integer", "minimum": 1}, "the next_before of the previous page"),
                    query_param("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
                ],
                role="admin",
                tag="admin",
            )
        }
    },
    {
        "AuditEntry": {
            "type": "object",
            "required": ["id", "action", "actor_id", "target_type", "target_id", "data", "ip", "occurred_at"],
            "properties": {
                "id": {"type": "integer"},
                "action": {"type": "string"},
                "actor_id": {"type": ["integer", "null"]},
                "target_type": {"type": ["string", "null"]},
                "target_id": {"type": ["string", "null"]},
                "data": {"type": "object"},
                "ip": {"type": ["string", "null"]},
                "occurred_at": {"type": "string", "format": "date-time"},
            },
        }
    },
)
