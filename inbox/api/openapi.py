"""`GET /api/openapi.json`: the OpenAPI 3.1 document of every route (a test checks none is missing)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from inbox.http import json_response

routes = web.RouteTableDef()


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {str(code): {"$ref": "#/components/responses/Error"} for code in (400, 401, 403, 404, 409, 413, 422, 503)}


def _op(
    summary: str,
    response: dict[str, Any],
    *,
    body: dict | None = None,
    params: list | None = None,
    role: str | None = "agent",
    status: str = "200",
    tag: str = "inbox",
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": {status: response, **ERRORS}}
    if role:
        op["security"] = [{"bearer": []}, {"cookie": []}]
        op["x-required-role"] = role
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    return op


def _q(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
NULLABLE_STR = {"type": ["string", "null"]}
NULLABLE_INT = {"type": ["integer", "null"]}
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "User": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "email": {"type": "string"},
            "name": {"type": "string"},
            "role": {"enum": ["agent", "supervisor", "admin"]},
        },
    },
    "ContactSummary": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "picture_url": NULLABLE_STR,
            "phone": NULLABLE_STR,
            "email": NULLABLE_STR,
        },
    },
    "Conversation": {
        "type": "object",
        "required": [
            "id",
            "inbox_id",
            "channel",
            "status",
            "contact",
            "assignee_id",
            "labels",
            "last_message_at",
            "unread_count",
            "sentiment",
            "intent",
        ],
        "properties": {
            "id": {"type": "integer"},
            "inbox_id": {"type": "integer"},
            "channel": {"enum": ["facebook", "zalo", "telegram", "webchat"]},
            "status": {"enum": ["open", "pending", "snoozed", "resolved"]},
            "snoozed_until": NULLABLE_TIME,
            "contact": _ref("ContactSummary"),
            "assignee_id": NULLABLE_INT,
            "team_id": NULLABLE_INT,
            "labels": {"type": "array", "items": {"type": "string"}},
            "last_message_at": NULLABLE_TIME,
            "last_message_preview": {"type": "string"},
            "last_incoming_at": NULLABLE_TIME,
            "last_activity_at": NULLABLE_TIME,
            "unread_count": {"type": "integer"},
            "sentiment": {"enum": ["negative", "neutral", "positive", None]},
            "intent": NULLABLE_STR,
            "created_at": NULLABLE_TIME,
            "nlp": {"type": "object"},
        },
    },
    "Message": {
        "type": "object",
        "required": [
            "id",
            "conversation_id",
            "direction",
            "sender_type",
            "text",
            "private",
            "created_at",
            "external_id",
            "delivery_status",
            "sentiment",
            "intent",
        ],
        "properties": {
            "id": {"type": "integer"},
            "conversation_id": {"type": "integer"},
            "direction": {"enum": ["in", "out"]},
            "sender_type": {"enum": ["contact", "agent", "bot", "system"]},
            "sender_id": NULLABLE_INT,
            "origin": {"enum": ["hopthu", "platform"], "description": "platform: sent from the platform's tools"},
            "text": NULLABLE_STR,
            "attachments": {"type": "array", "items": {"type": "object"}},
            "private": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
            "external_id": NULLABLE_STR,
            "delivery_status": {"enum": ["pending", "sent", "delivered", "read", "failed", None]},
            "failure_reason": NULLABLE_STR,
            "extra": {"type": "object"},
            "sentiment": NULLABLE_STR,
            "sentiment_score": {"type": ["number", "null"]},
            "intent": NULLABLE_STR,
            "intent_confidence": {"type": ["number", "null"]},
            "entities": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Inbox": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "channel": {"type": "string"},
            "external_id": {"type": "string"},
            "credentials_set": {"type": "array", "items": {"type": "string"}},
            "settings": {"type": "object"},
            "created_at": NULLABLE_TIME,
            # HOPTHU_PUBLIC_URL, else the request's address: the same links as `setup` when it was added
            "webhook_url": {**NULLABLE_STR, "description": "where the platform posts (null for the website chat)"},
            "snippet": {**NULLABLE_STR, "description": "the website chat's <script> line (null for other channels)"},
        },
    },
    "DeadLetter": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "channel": {"type": "string"},
            "inbox_id": NULLABLE_INT,
            "account_id": NULLABLE_STR,
            "reason": {"type": "string"},
            "payload": {"type": "object"},
            "received_at": NULLABLE_TIME,
        },
    },
}


def _items(name: str, cursor: str | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {"items": {"type": "array", "items": _ref(name)}}
    if cursor:
        props[cursor] = {"type": ["string", "integer", "null"]}
    return {"type": "object", "required": ["items"], "properties": props}


LIST_PARAMS = [
    _q("status", {"enum": ["open", "pending", "snoozed", "resolved"]}),
    _q("assignee", {"type": "string"}, "me | unassigned | all | <agent id>"),
    _q("inbox_id", {"type": "integer"}),
    _q("channel", {"type": "string"}),
    _q("label", {"type": "string"}),
    _q("sentiment", {"enum": ["negative", "neutral", "positive"]}),
    _q("worst_sentiment", {"enum": ["negative", "neutral", "positive"]}, "the worst the customer showed in it"),
    _q("intent", {"type": "string"}),
    _q("q", {"type": "string"}, "searches message text and contact name/phone, with or without diacritics"),
    _q("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
    _q("cursor", {"type": "string"}),
]

PATHS: dict[str, Any] = {
    "/healthz": {"get": _op("Readiness", _json({"type": "object"}), role=None, tag="ops")},
    "/api/openapi.json": {"get": _op("This document", _json({"type": "object"}), role=None, tag="ops")},
    "/api/auth/login": {
        "post": _op(
            "Log in: returns a bearer token and sets the session cookie",
            _json(
                {
                    "type": "object",
                    "properties": {"token": {"type": "string"}, "csrf_token": {"type": "string"}, "user": _ref("User")},
                }
            ),
            body={
                "type": "object",
                "required": ["email", "password"],
                "properties": {"email": {"type": "string"}, "password": {"type": "string"}},
            },
            role=None,
            tag="auth",
        )
    },
    "/api/auth/logout": {"post": _op("Log out (revokes this session)", _json({"type": "object"}), tag="auth")},
    "/api/me": {"get": _op("The logged-in user, CSRF token and readable inboxes", _json(_ref("User")), tag="auth")},
    "/api/conversations": {
        "get": _op(
            "Conversation list, newest activity first", _json(_items("Conversation", "next_cursor")), params=LIST_PARAMS
        )
    },
    "/api/conversations/{id}": {"get": _op("Conversation detail", _json(_ref("Conversation")), params=[ID])},
    "/api/conversations/{id}/messages": {
        "get": _op(
            "Messages, oldest → newest within the page",
            _json(_items("Message", "next_before")),
            params=[ID, _q("before", {"type": "integer"}), _q("limit", {"type": "integer"})],
        ),
        "post": _op(
            "Reply through the channel, or a private note",
            _json(_ref("Message"), "Created"),
            status="201",
            body={
                "type": "object",
                "required": ["text"],
                "properties": {
                    "text": {"type": "string", "maxLength": 2000},
                    "private": {"type": "boolean"},
                    "mention_ids": {
                        "type": "array",
                        "items": {"type": "integer"},
                        "maxItems": 20,
                        "description": "private notes only: staff who may read the conversation, told by a "
                        "mention.created frame (422 invalid_mention / mentions_need_private otherwise)",
                    },
                },
            },
            params=[ID],
        ),
    },
    "/api/conversations/{id}/assign": {
        "post": _op(
            "Assign to an agent and/or team (null unassigns)",
            _json(_ref("Conversation")),
            params=[ID],
            body={"type": "object", "properties": {"agent_id": NULLABLE_INT, "team_id": NULLABLE_INT}},
        )
    },
    "/api/conversations/{id}/status": {
        "post": _op(
            "Change status; snoozed needs snoozed_until",
            _json(_ref("Conversation")),
            params=[ID],
            body={
                "type": "object",
                "required": ["status"],
                "properties": {
                    "status": {"enum": ["open", "pending", "snoozed", "resolved"]},
                    "snoozed_until": NULLABLE_TIME,
                },
            },
        )
    },
    "/api/conversations/{id}/labels": {
        "post": _op(
            "Replace the labels",
            _json(_ref("Conversation")),
            params=[ID],
            body={
                "type": "object",
                "required": ["labels"],
                "properties": {"labels": {"type": "array", "items": {"type": "string"}}},
            },
        )
    },
    "/api/conversations/{id}/read": {"post": _op("Mark as read", _json(_ref("Conversation")), params=[ID])},
    "/api/inboxes": {"get": _op("Inboxes the caller can read", _json(_items("Inbox")), tag="admin")},
    "/api/users": {"get": _op("Staff users", _json(_items("StaffUser")), role="supervisor", tag="admin")},
    "/api/dead-letters": {
        "get": _op(
            "Signed events nobody understood, newest first",
            _json(_items("DeadLetter")),
            role="admin",
            params=[_q("before", {"type": "integer"}), _q("limit", {"type": "integer"})],
            tag="admin",
        )
    },
    "/webhooks/facebook": {
        "get": _op(
            "Messenger verification handshake",
            {"description": "the challenge, as text/plain"},
            params=[
                _q("hub.mode", {"type": "string"}),
                _q("hub.verify_token", {"type": "string"}),
                _q("hub.challenge", {"type": "string"}),
            ],
            role=None,
            tag="webhooks",
        ),
        "post": _op(
            "Messenger webhook (X-Hub-Signature-256)",
            _json({"type": "object"}),
            role=None,
            body={"type": "object"},
            tag="webhooks",
        ),
    },
    "/ws": {
        "get": _op(
            "Agent WebSocket: frames {type, seq, data}; ?since=<seq> resumes",
            {"description": "switching protocols"},
            status="101",
            params=[_q("since", {"type": "integer"}), _q("token", {"type": "string"})],
            tag="realtime",
        )
    },
}


def document(paths: dict[str, Any], schemas: dict[str, Any] | None = None) -> None:
    """Add routes to the document: each API module documents its own routes beside them, at import time."""
    for path, operations in paths.items():
        PATHS.setdefault(path, {}).update(operations)
    SCHEMAS.update(schemas or {})


# Public names for the builders, for the API modules that document themselves through `document`.
op, query_param, ref, json_response_of, items_of, PATH_ID = _op, _q, _ref, _json, _items, ID

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "hopthu",
        "version": "0.1.0",
        "description": "Hộp thư hội thoại cho doanh nghiệp Việt Nam — agent API",
    },
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "responses": {"Error": _json(_ref("Error"), "Error")},
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "cookie": {
                "type": "apiKey",
                "in": "cookie",
                "name": "hopthu_session",
                "description": "cookie writes also need the X-CSRF-Token header",
            },
        },
    },
}


@routes.get("/api/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return json_response(DOCUMENT)
