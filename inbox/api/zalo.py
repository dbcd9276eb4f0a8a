"""Zalo OA administration: store a new token pair after re-authorising the OA, and see the token state."""

from __future__ import annotations

from aiohttp import web

from inbox.api import openapi
from inbox.api.guard import requires
from inbox.http import fail, int_param, json_body, json_response
from inbox.models import Inbox, ZaloToken
from inbox.serialize import iso
from inbox.zalo_tokens import store_new_tokens

routes = web.RouteTableDef()


async def _zalo_inbox(request: web.Request) -> Inbox:
    inbox = await Inbox.get_or_none(id=int_param(request.match_info["id"], "id"))
    if inbox is None or inbox.channel != "zalo":
        fail(404, "not_found", "Zalo inbox not found")
    return inbox


@routes.put("/api/inboxes/{id}/zalo-tokens")
@requires("admin")
async def put_tokens(request: web.Request) -> web.Response:
    """After a refused refresh the inbox shows state "needs_reauth"; a new pair from Zalo's consent flow ends it."""
    inbox = await _zalo_inbox(request)
    body = await json_body(request)
    access, refresh, expires_in = body.get("access_token"), body.get("refresh_token"), body.get("expires_in")
    if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
        fail(400, "invalid_body", "access_token and refresh_token (strings) are required")
    if expires_in is not None and (isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in <= 0):
        fail(400, "invalid_body", "expires_in is a positive number of seconds")
    await store_new_tokens(inbox, access, refresh, expires_in)
    return json_response(await _state(inbox))


@routes.get("/api/inboxes/{id}/zalo-tokens")
@requires("admin")
async def get_tokens(request: web.Request) -> web.Response:
    return json_response(await _state(await _zalo_inbox(request)))


async def _state(inbox: Inbox) -> dict:
    """Never the tokens themselves: when the current one expires and when it was last refreshed."""
    row = await ZaloToken.get_or_none(inbox_id=inbox.id)
    return {
        "inbox_id": inbox.id,
        "state": inbox.state,
        "state_reason": inbox.state_reason,
        "expires_at": iso(row.expires_at) if row else None,
        "refreshed_at": iso(row.refreshed_at) if row else None,
    }


_STATE = {
    "type": "object",
    "properties": {
        "inbox_id": {"type": "integer"},
        "state": {"type": "string", "enum": ["active", "needs_reauth"]},
        "state_reason": {"type": ["string", "null"]},
        "expires_at": {"type": ["string", "null"], "format": "date-time"},
        "refreshed_at": {"type": ["string", "null"], "format": "date-time"},
    },
}
openapi.document(
    {
        "/webhooks/zalo": {
            "post": openapi.op(
                "Zalo OA webhook (X-ZEvent-Signature: mac = sha256(app_id + body + timestamp + OA secret))",
                openapi.json_response_of({"type": "object"}), role=None, body={"type": "object"}, tag="webhooks",
            )
        },
        "/api/inboxes/{id}/zalo-tokens": {
            "get": openapi.op("Zalo OA token state (never the tokens)", openapi.json_response_of(_STATE),
                              params=[openapi.PATH_ID], role="admin", tag="admin"),
            "put": openapi.op(
                "Store a new Zalo token pair (after re-authorising the OA); the inbox becomes active again",
                openapi.json_response_of(_STATE), params=[openapi.PATH_ID], role="admin", tag="admin",
                body={"type": "object", "required": ["access_token", "refresh_token"], "properties": {
                    "access_token": {"type": "string"}, "refresh_token": {"type": "string"},
                    "expires_in": {"type": "integer"}}},
            ),
        }
    }
)  # fmt: skip
