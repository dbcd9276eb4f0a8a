"""Admin views: inboxes, users, dead letters."""

from __future__ import annotations

from aiohttp import web

from agents.models import User
from inbox.api.auth_routes import user_json
from inbox.api.guard import auth_of, requires
from inbox.http import int_param, json_response
from inbox.models import DeadLetter, Inbox
from inbox.serialize import iso

routes = web.RouteTableDef()


def inbox_json(inbox: Inbox) -> dict:
    """Credentials are never returned: only which ones are set."""
    return {
        "id": inbox.id,
        "name": inbox.name,
        "channel": inbox.channel,
        "external_id": inbox.external_id,
        "credentials_set": sorted(k for k, v in (inbox.credentials or {}).items() if v),
        "settings": inbox.settings,
        "created_at": iso(inbox.created_at),
    }


@routes.get("/api/inboxes")
@requires("agent")
async def inboxes(request: web.Request) -> web.Response:
    viewer = auth_of(request).viewer
    query = Inbox.all() if viewer.sees_everything else Inbox.filter(id__in=list(viewer.inbox_ids))
    return json_response({"items": [inbox_json(i) for i in await query.order_by("id")]})


@routes.get("/api/users")
@requires("supervisor")
async def users(request: web.Request) -> web.Response:
    return json_response({"items": [user_json(u) for u in await User.all().order_by("id")]})


@routes.get("/api/dead-letters")
@requires("admin")
async def dead_letters(request: web.Request) -> web.Response:
    limit = int_param(request.query.get("limit"), "limit", default=50, high=500)
    query = DeadLetter.all()
    if request.query.get("before"):
        query = query.filter(id__lt=int_param(request.query["before"], "before"))
    rows = await query.order_by("-id").limit(limit)
    return json_response(
        {
            "items": [
                {
                    "id": d.id,
                    "channel": d.channel,
                    "inbox_id": d.inbox_id,
                    "account_id": d.account_id,
                    "reason": d.reason,
                    "payload": d.payload,
                    "received_at": iso(d.received_at),
                }
                for d in rows
            ]
        }
    )
