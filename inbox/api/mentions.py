"""Mentions: who a note may mention, the caller's own mentions, and marking them read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from inbox import actions, mentions
from inbox.api import openapi
from inbox.api.guard import auth_of, requires
from inbox.http import fail, int_param, is_id, json_body, json_response
from inbox.keys import BUS

routes = web.RouteTableDef()
MAX_IDS = 500


@routes.get("/api/conversations/{id}/mentionable")
@requires("agent")
async def mentionable(request: web.Request) -> web.Response:
    """The staff a note in this conversation may mention (its readers), for the composer's `@` picker."""
    conv_id = int_param(request.match_info["id"], "id")
    conv = await actions.readable_conversation(auth_of(request).viewer, conv_id)
    return json_response({"items": await mentions.mentionable_users(conv)})


@routes.get("/api/mentions")
@requires("agent")
async def list_(request: web.Request) -> web.Response:
    viewer = auth_of(request).viewer
    q = request.query
    cursor = int_param(q.get("cursor"), "cursor") if q.get("cursor") else None
    items, next_cursor = await mentions.list_mentions(
        viewer,
        unread_only=q.get("unread", "") in ("1", "true"),
        limit=int_param(q.get("limit"), "limit", default=20, high=100),
        cursor=cursor,
    )
    unread = await mentions.unread_count(viewer)
    return json_response({"items": items, "next_cursor": next_cursor, "unread_count": unread})


@routes.post("/api/mentions/read")
@requires("agent")
async def read(request: web.Request) -> web.Response:
    viewer = auth_of(request).viewer
    body = await json_body(request)
    ids, conversation_id, everything = _what_to_mark(body)
    marked = await mentions.mark_read(
        request.app[BUS], viewer, datetime.now(UTC), ids=ids, conversation_id=conversation_id, everything=everything
    )
    return json_response({"marked": marked, "unread_count": await mentions.unread_count(viewer)})


def _what_to_mark(body: dict[str, Any]) -> tuple[list[int] | None, int | None, bool]:
    """`{"ids": [...]}`, `{"conversation_id": N}` or `{"all": true}`: exactly one of them, well formed."""
    ids, conversation_id = body.get("ids"), body.get("conversation_id")
    if "all" in body:
        if body["all"] is not True:
            fail(422, "invalid_field", "all must be true: it marks every unread mention of yours read")
        if ids is not None or conversation_id is not None:
            fail(422, "conflicting_fields", "all marks every mention read: give it without ids or conversation_id")
        return None, None, True
    if (ids is None) == (conversation_id is None):
        fail(400, "invalid_body", "give either ids (a list of mention ids), conversation_id, or all: true")
    if ids is not None and (not isinstance(ids, list) or len(ids) > MAX_IDS or not all(is_id(i) for i in ids)):
        fail(400, "invalid_body", f"ids must be a list of at most {MAX_IDS} mention ids")
    if conversation_id is not None and not is_id(conversation_id):
        fail(400, "invalid_body", "conversation_id must be a conversation id")
    return ids, conversation_id, False


_BY = {"type": ["object", "null"], "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}}
_MENTION = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "conversation_id": {"type": "integer"},
        "message_id": {"type": "integer"},
        "contact_name": {"type": "string"},
        "by": _BY,
        "excerpt": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "read_at": {"type": ["string", "null"], "format": "date-time"},
    },
}
_STAFF = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "role": {"type": "string"}},
}
_COUNTS = {"type": "object", "properties": {"marked": {"type": "integer"}, "unread_count": {"type": "integer"}}}
openapi.document(
    {
        "/api/conversations/{id}/mentionable": {
            "get": openapi.op(
                "Active staff who may read the conversation: whom a private note in it may mention",
                openapi.json_response_of(openapi.items_of("MentionableStaff")),
                params=[openapi.PATH_ID],
            )
        },
        "/api/mentions": {
            "get": openapi.op(
                "The caller's mentions in private notes, newest first, with the unread count",
                openapi.json_response_of(
                    {
                        "type": "object",
                        "required": ["items", "unread_count"],
                        "properties": {
                            "items": {"type": "array", "items": openapi.ref("Mention")},
                            "next_cursor": {"type": ["integer", "null"]},
                            "unread_count": {"type": "integer"},
                        },
                    }
                ),
                params=[
                    openapi.query_param("unread", {"enum": ["1", "0", "true", "false"]}, "1: unread ones only"),
                    openapi.query_param("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
                    openapi.query_param("cursor", {"type": "integer"}, "the previous page's next_cursor"),
                ],
            )
        },
        "/api/mentions/read": {
            "post": openapi.op(
                "Mark the caller's own mentions read: by id, all of one conversation, or all of them (`all: true`, "
                "alone); others' ids are ignored",
                openapi.json_response_of(_COUNTS),
                body={
                    "type": "object",
                    "properties": {
                        "ids": {"type": "array", "items": {"type": "integer"}, "maxItems": MAX_IDS},
                        "conversation_id": {"type": "integer"},
                        "all": {"type": "boolean", "enum": [True]},
                    },
                },
            )
        },
    },
    {"Mention": _MENTION, "MentionableStaff": _STAFF},
)
