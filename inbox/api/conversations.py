"""Conversations and their messages: list, detail, messages, reply/note, assign, status, labels, read."""

from __future__ import annotations

from aiohttp import web

from inbox import actions
from inbox.api.guard import auth_of, requires
from inbox.http import fail, int_param, is_id, json_body, json_response, moment
from inbox.keys import BUS, OUTBOX
from inbox.listing import InvalidFilter, ListFilters, list_conversations
from inbox.models import Message
from inbox.serialize import conversation_json, message_json

routes = web.RouteTableDef()


def _conv_id(request: web.Request) -> int:
    return int_param(request.match_info["id"], "id")


@routes.get("/api/conversations")
@requires("agent")
async def list_(request: web.Request) -> web.Response:
    q = request.query
    inbox_id = int_param(q.get("inbox_id"), "inbox_id") if q.get("inbox_id") else None
    filters = ListFilters(
        status=q.get("status") or None,
        assignee=q.get("assignee") or None,
        inbox_id=inbox_id,
        channel=q.get("channel") or None,
        label=q.get("label") or None,
        sentiment=q.get("sentiment") or None,
        worst_sentiment=q.get("worst_sentiment") or None,
        intent=q.get("intent") or None,
        q=q.get("q") or None,
        segment=q.get("segment") or None,
        limit=int_param(q.get("limit"), "limit", default=25, high=100),
        cursor=q.get("cursor") or None,
    )
    try:
        items, next_cursor = await list_conversations(auth_of(request).viewer, filters)
    except InvalidFilter as exc:
        fail(400, "invalid_parameter", str(exc))
    return json_response({"items": items, "next_cursor": next_cursor})


@routes.get("/api/conversations/{id}")
@requires("agent")
async def detail(request: web.Request) -> web.Response:
    conv = await actions.readable_conversation(auth_of(request).viewer, _conv_id(request))
    data = conversation_json(conv, conv.contact)
    data["nlp"] = {"sentiment": conv.sentiment, "intent": conv.intent}
    return json_response(data)


@routes.get("/api/conversations/{id}/messages")
@requires("agent")
async def messages(request: web.Request) -> web.Response:
    conv = await actions.readable_conversation(auth_of(request).viewer, _conv_id(request))
    limit = int_param(request.query.get("limit"), "limit", default=50, high=200)
    query = Message.filter(conversation_id=conv.id)
    if request.query.get("before"):
        query = query.filter(id__lt=int_param(request.query["before"], "before"))
    page = await query.order_by("-id").limit(limit + 1)
    more = len(page) > limit
    page = list(reversed(page[:limit]))  # oldest → newest within the page
    return json_response(
        {"items": [message_json(m) for m in page], "next_before": page[0].id if more and page else None}
    )


@routes.post("/api/conversations/{id}/messages")
@requires("agent")
async def reply(request: web.Request) -> web.Response:
    viewer = auth_of(request).viewer
    conv = await actions.readable_conversation(viewer, _conv_id(request))
    body = await json_body(request)
    text, private = body.get("text"), body.get("private", False)
    if not isinstance(text, str) or not isinstance(private, bool):
        fail(400, "invalid_body", "text (string) is required; private is a boolean")
    msg = await actions.reply(
        request.app[BUS], request.app[OUTBOX], viewer, conv, text, private=private, mention_ids=body.get("mention_ids")
    )
    return json_response(message_json(msg), status=201)


def _optional_id(body: dict, name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not is_id(value):
        fail(400, "invalid_body", f"{name} must be a positive integer id or null")
    return value


@routes.post("/api/conversations/{id}/assign")
@requires("agent")
async def assign(request: web.Request) -> web.Response:
    viewer = auth_of(request).viewer
    conv = await actions.readable_conversation(viewer, _conv_id(request))
    body = await json_body(request)
    agent_id = _optional_id(body, "agent_id")
    # No `team_id` keeps the team ("take it" sends only `agent_id`); null takes the conversation out of its team.
    team_id = _optional_id(body, "team_id") if "team_id" in body else conv.team_id
    conv = await actions.assign(request.app[BUS], viewer, conv, agent_id, team_id)
    return json_response(conversation_json(conv, conv.contact))


@routes.post("/api/conversations/{id}/status")
@requires("agent")
async def status(request: web.Request) -> web.Response:
    viewer = auth_of(request).viewer
    conv = await actions.readable_conversation(viewer, _conv_id(request))
    body = await json_body(request)
    status_value, until = body.get("status"), body.get("snoozed_until")
    if not isinstance(status_value, str):
        fail(400, "invalid_body", "status is required")
    snoozed_until = None
    if until is not None:
        snoozed_until = moment(until, "snoozed_until", code="invalid_body")
    conv = await actions.set_status(request.app[BUS], viewer, conv, status_value, snoozed_until)
    return json_response(conversation_json(conv, conv.contact))


@routes.post("/api/conversations/{id}/labels")
@requires("agent")
async def labels(request: web.Request) -> web.Response:
    viewer = auth_of(request).viewer
    conv = await actions.readable_conversation(viewer, _conv_id(request))
    body = await json_body(request)
    if not isinstance(body.get("labels"), list):
        fail(400, "invalid_body", "labels must be a list of strings")
    conv = await actions.set_labels(request.app[BUS], viewer, conv, body["labels"])
    return json_response(conversation_json(conv, conv.contact))


@routes.post("/api/conversations/{id}/read")
@requires("agent")
async def read(request: web.Request) -> web.Response:
    viewer = auth_of(request).viewer
    conv = await actions.readable_conversation(viewer, _conv_id(request))
    conv = await actions.mark_read(request.app[BUS], viewer, conv)
    return json_response(conversation_json(conv, conv.contact))
