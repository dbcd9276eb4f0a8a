"""Bot settings, the FAQ the bot answers from, saved replies for agents, and the bot report.

Admins write the bot and its FAQ (it speaks for the business); supervisors read them and try questions against
it; saved replies are written by supervisors and admins and used by every agent of their inbox.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q

from agents.bots import BOT_KEYS, DEFAULTS, bot_settings, render
from agents.faq import FaqIndex, FaqItem
from agents.models import FaqEntry, SavedReply, User
from contacts.models import Contact
from inbox import actions
from inbox.api import openapi
from inbox.api.guard import auth_of, requires
from inbox.db import connection
from inbox.http import fail, int_param, json_body, json_response, moment
from inbox.keys import BOTS
from inbox.models import ConversationEvent, Inbox
from inbox.search import fold
from inbox.serialize import iso
from inbox.sql import merge_into_json

routes = web.RouteTableDef()

MAX_QUESTIONS = 50
MAX_TEXT = 2000
INTENTS = (
    "greeting thanks_bye ask_price ask_availability ask_product_info order order_status shipping payment promotion"
    " return_refund complaint store_info human_handoff other"
).split()


def faq_json(entry: FaqEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "inbox_id": entry.inbox_id,
        "intent": entry.intent,
        "questions": entry.questions,
        "answer": entry.answer,
        "enabled": entry.enabled,
        "updated_at": iso(entry.updated_at),
    }


def saved_reply_json(reply: SavedReply) -> dict[str, Any]:
    return {
        "id": reply.id,
        "inbox_id": reply.inbox_id,
        "shortcut": reply.shortcut,
        "title": reply.title,
        "text": reply.text,
        "updated_at": iso(reply.updated_at),
    }


async def _inbox(request: web.Request) -> Inbox:
    inbox = await Inbox.get_or_none(id=int_param(request.match_info["id"], "id"))
    if inbox is None:
        fail(404, "not_found", "inbox not found")
    return inbox


def _text(value: Any, name: str, *, required: bool = True, limit: int = MAX_TEXT) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        fail(422, f"invalid_{name}", f"{name} must be a non-empty string")
    if len(value) > limit:
        fail(422, f"invalid_{name}", f"{name} is limited to {limit} characters")
    return value.strip()


def _faq_fields(body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if "questions" in body or not partial:
        questions = body.get("questions")
        if not isinstance(questions, list) or not questions or len(questions) > MAX_QUESTIONS:
            fail(422, "invalid_questions", f"questions must be a list of 1–{MAX_QUESTIONS} phrasings")
        fields["questions"] = [_text(q, "questions", limit=500) for q in questions]
    if "answer" in body or not partial:
        fields["answer"] = _text(body.get("answer"), "answer")
    if "intent" in body:
        if body["intent"] is not None and body["intent"] not in INTENTS:
            fail(422, "invalid_intent", f"intent must be one of {', '.join(INTENTS)} or null")
        fields["intent"] = body["intent"]
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            fail(422, "invalid_enabled", "enabled must be true or false")
        fields["enabled"] = body["enabled"]
    return fields


# ---- bot settings -------------------------------------------------------------------------------------------


@routes.get("/api/inboxes/{id}/bot")
@requires("supervisor")
async def get_bot(request: web.Request) -> web.Response:
    return json_response(bot_settings(await _inbox(request)))


@routes.put("/api/inboxes/{id}/bot")
@requires("admin")
async def put_bot(request: web.Request) -> web.Response:
    inbox = await _inbox(request)
    body = await json_body(request)
    unknown = set(body) - BOT_KEYS
    if unknown:
        fail(422, "unknown_setting", f"unknown bot settings: {', '.join(sorted(unknown))}")
    for key, value in body.items():
        default = DEFAULTS[key]
        if key == "threshold":
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 1:
                fail(422, "invalid_threshold", "threshold must be a number in (0, 1]")
        elif key.startswith("max_replies"):
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000:
                fail(422, f"invalid_{key}", f"{key} must be an integer from 1 to 1000")
        elif key == "variables":
            if not isinstance(value, dict) or not all(isinstance(v, str | int | float) for v in value.values()):
                fail(422, "invalid_variables", "variables must be an object of names to texts")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                fail(422, f"invalid_{key}", f"{key} must be true or false")
        elif value is not None:
            _text(value, key)
    # In place: routing settings or auto-hide saved by another admin meanwhile stay.
    inbox.settings = await merge_into_json(connection(), "inboxes", "settings", inbox.id, body, key="bot")
    request.app[BOTS].forget(inbox.id)
    return json_response(bot_settings(inbox))


# ---- FAQ ------------------------------------------------------------------------------------------------------


@routes.get("/api/inboxes/{id}/faq")
@requires("supervisor")
async def list_faq(request: web.Request) -> web.Response:
    inbox = await _inbox(request)
    entries = await FaqEntry.filter(inbox_id=inbox.id).order_by("id")
    return json_response({"items": [faq_json(e) for e in entries]})


@routes.post("/api/inboxes/{id}/faq")
@requires("admin")
async def create_faq(request: web.Request) -> web.Response:
    inbox = await _inbox(request)
    entry = await FaqEntry.create(inbox_id=inbox.id, **_faq_fields(await json_body(request), partial=False))
    request.app[BOTS].forget(inbox.id)
    return json_response(faq_json(entry), status=201)


@routes.post("/api/inboxes/{id}/faq/test")
@requires("supervisor")
async def test_faq(request: web.Request) -> web.Response:
    """What the bot would answer to `text`, with its confidence: for admins tuning questions and threshold."""
    inbox = await _inbox(request)
    text = _text((await json_body(request)).get("text"), "text")
    from nlp import analyze

    analysis = analyze(text)
    entries = await FaqEntry.filter(inbox_id=inbox.id, enabled=True)
    index = FaqIndex(FaqItem(e.id, e.intent, tuple(e.questions)) for e in entries)
    match = index.match(text, analysis.intent, analysis.intent_confidence)
    threshold = bot_settings(inbox)["threshold"]
    entry = next((e for e in entries if match and e.id == match.entry_id), None)
    return json_response(
        {
            "intent": analysis.intent,
            "intent_confidence": analysis.intent_confidence,
            "sentiment": analysis.sentiment,
            "match": None
            if match is None
            else {"faq_id": match.entry_id, "confidence": match.confidence, "question": match.question},
            "would_answer": bool(match and match.confidence >= threshold),
            # As the bot renders them: variable values may be numbers (300000), a text is what goes out.
            "answer": render(entry.answer, {k: str(v) for k, v in bot_settings(inbox)["variables"].items()})
            if entry
            else None,
            "threshold": threshold,
        }
    )


async def _faq_entry(request: web.Request) -> FaqEntry:
    entry = await FaqEntry.get_or_none(id=int_param(request.match_info["id"], "id"))
    if entry is None:
        fail(404, "not_found", "FAQ entry not found")
    return entry


@routes.patch("/api/faq/{id}")
@requires("admin")
async def update_faq(request: web.Request) -> web.Response:
    entry = await _faq_entry(request)
    fields = _faq_fields(await json_body(request), partial=True)
    if fields:
        entry.update_from_dict(fields)
        await entry.save()
    request.app[BOTS].forget(entry.inbox_id)
    return json_response(faq_json(entry))


@routes.delete("/api/faq/{id}")
@requires("admin")
async def delete_faq(request: web.Request) -> web.Response:
    entry = await _faq_entry(request)
    await entry.delete()
    request.app[BOTS].forget(entry.inbox_id)
    return json_response({"deleted": entry.id})


# ---- saved replies ------------------------------------------------------------------------------------------


def _visible_replies(request: web.Request) -> Q:
    viewer = auth_of(request).viewer
    if viewer.sees_everything:
        return Q()
    return Q(inbox_id__isnull=True) | Q(inbox_id__in=list(viewer.inbox_ids))


@routes.get("/api/saved-replies")
@requires("agent")
async def list_saved_replies(request: web.Request) -> web.Response:
    query = SavedReply.filter(_visible_replies(request))
    if request.query.get("inbox_id"):
        inbox_id = int_param(request.query["inbox_id"], "inbox_id")
        query = query.filter(Q(inbox_id=inbox_id) | Q(inbox_id__isnull=True))
    replies = await query.order_by("shortcut", "id")
    needle = fold(request.query.get("q", "").lstrip("/"))
    if needle:  # a few hundred rows at most: folded substring match, with or without diacritics
        replies = [r for r in replies if needle in fold(f"{r.shortcut} {r.title} {r.text}")]
    return json_response({"items": [saved_reply_json(r) for r in replies]})


async def _saved_reply_fields(body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if "shortcut" in body or not partial:
        shortcut = _text(body.get("shortcut"), "shortcut", limit=40).lstrip("/")
        if not shortcut or any(ch.isspace() for ch in shortcut):
            fail(422, "invalid_shortcut", "shortcut must be one word, e.g. 'ship' for /ship")
        fields["shortcut"] = shortcut
    if "text" in body or not partial:
        fields["text"] = _text(body.get("text"), "text")
    if "title" in body:
        fields["title"] = _text(body.get("title"), "title", required=False, limit=200) or ""
    if "inbox_id" in body and not partial:
        if body["inbox_id"] is not None:
            if not await Inbox.exists(id=int_param(str(body["inbox_id"]), "inbox_id")):
                fail(422, "unknown_inbox", "inbox_id does not name an inbox")
        fields["inbox_id"] = body["inbox_id"]
    return fields


async def _shortcut_free(fields: dict[str, Any], inbox_id: int | None, own_id: int | None = None) -> None:
    # The database's unique (inbox, shortcut) does not cover global replies (NULL inbox): check both here.
    clash = SavedReply.filter(shortcut=fields["shortcut"], inbox_id=inbox_id)
    if inbox_id is None:
        clash = SavedReply.filter(shortcut=fields["shortcut"], inbox_id__isnull=True)
    if own_id is not None:
        clash = clash.exclude(id=own_id)
    if await clash.exists():
        fail(409, "shortcut_taken", f"/{fields['shortcut']} already exists here")


@routes.post("/api/saved-replies")
@requires("supervisor")
async def create_saved_reply(request: web.Request) -> web.Response:
    fields = await _saved_reply_fields(await json_body(request), partial=False)
    await _shortcut_free(fields, fields.get("inbox_id"))
    try:
        reply = await SavedReply.create(created_by_id=auth_of(request).user.id, **fields)
    except IntegrityError:
        fail(409, "shortcut_taken", f"/{fields['shortcut']} already exists here")
    return json_response(saved_reply_json(reply), status=201)


async def _saved_reply(request: web.Request) -> SavedReply:
    reply = await SavedReply.get_or_none(_visible_replies(request), id=int_param(request.match_info["id"], "id"))
    if reply is None:
        fail(404, "not_found", "saved reply not found")
    return reply


@routes.patch("/api/saved-replies/{id}")
@requires("supervisor")
async def update_saved_reply(request: web.Request) -> web.Response:
    reply = await _saved_reply(request)
    fields = await _saved_reply_fields(await json_body(request), partial=True)
    if "shortcut" in fields:
        await _shortcut_free(fields, reply.inbox_id, own_id=reply.id)
    if fields:
        reply.update_from_dict(fields)
        await reply.save()
    return json_response(saved_reply_json(reply))


@routes.delete("/api/saved-replies/{id}")
@requires("supervisor")
async def delete_saved_reply(request: web.Request) -> web.Response:
    reply = await _saved_reply(request)
    await reply.delete()
    return json_response({"deleted": reply.id})


@routes.post("/api/saved-replies/{id}/render")
@requires("agent")
async def render_saved_reply(request: web.Request) -> web.Response:
    """The reply's text for one conversation: `{contact.name}`, `{agent.name}`, `{inbox.name}` and bot variables."""
    reply = await _saved_reply(request)
    body = await json_body(request)
    conv_id = int_param(str(body.get("conversation_id", "")), "conversation_id")
    conv = await actions.readable_conversation(auth_of(request).viewer, conv_id)
    if reply.inbox_id is not None and reply.inbox_id != conv.inbox_id:
        fail(422, "wrong_inbox", "this saved reply belongs to another inbox")
    inbox = await Inbox.get(id=conv.inbox_id)
    contact = await Contact.get(id=conv.contact_id)
    agent = await User.get(id=auth_of(request).user.id)
    variables = {
        **{k: str(v) for k, v in bot_settings(inbox)["variables"].items()},
        "contact.name": contact.name or "bạn",
        "agent.name": agent.name,
        "inbox.name": inbox.name,
    }
    return json_response({"text": render(reply.text, variables)})


# ---- report -------------------------------------------------------------------------------------------------


def _period(request: web.Request) -> tuple[datetime, datetime]:
    def parse(name: str, default: datetime) -> datetime:
        raw = request.query.get(name)
        if not raw:
            return default
        return moment(raw, name, naive_is_utc=True)

    end = parse("to", datetime.now(UTC))
    return parse("from", end - timedelta(days=30)), end


@routes.get("/api/reports/bots")
@requires("supervisor")
async def bot_report(request: web.Request) -> web.Response:
    """From the append-only events: bot answers, hand-offs by reason, conversations the bot resolved alone."""
    start, end = _period(request)
    events = ConversationEvent.filter(occurred_at__gte=start, occurred_at__lt=end)
    if request.query.get("inbox_id"):
        events = events.filter(inbox_id=int_param(request.query["inbox_id"], "inbox_id"))
    rows = await events.filter(Q(kind="handoff") | Q(kind="message_out") | Q(kind="status_changed")).values(
        "conversation_id", "kind", "actor_type", "data"
    )
    handoffs: dict[str, int] = {}
    bot_conversations: set[int] = set()
    human_conversations: set[int] = set()
    resolved: set[int] = set()
    answers = 0
    for row in rows:
        if row["kind"] == "handoff":
            reason = (row["data"] or {}).get("reason", "unknown")
            handoffs[reason] = handoffs.get(reason, 0) + 1
            human_conversations.add(row["conversation_id"])
        elif row["kind"] == "message_out" and row["actor_type"] == "bot":
            answers += 1
            bot_conversations.add(row["conversation_id"])
        elif row["kind"] == "message_out":
            human_conversations.add(row["conversation_id"])
        elif (row["data"] or {}).get("status") == "resolved":
            resolved.add(row["conversation_id"])
    resolved_by_bot = sorted((bot_conversations & resolved) - human_conversations)
    return json_response(
        {
            "from": iso(start),
            "to": iso(end),
            "bot_messages": answers,
            "conversations_with_bot": len(bot_conversations),
            "handoffs": handoffs,
            "resolved_by_bot_alone": len(resolved_by_bot),
            "resolved_by_bot_alone_ids": resolved_by_bot[:500],
        }
    )


_ID = openapi.PATH_ID
_FAQ = openapi.ref("FaqEntry")
_SAVED = openapi.ref("SavedReply")
_OBJ = {"type": "object"}
openapi.document(
    {
        "/api/inboxes/{id}/bot": {
            "get": openapi.op(
                "Bot settings of an inbox", openapi.json_response_of(_OBJ), params=[_ID], role="supervisor", tag="bots"
            ),
            "put": openapi.op(
                "Change bot settings (welcome, away, FAQ bot, threshold, variables, rate limit)",
                openapi.json_response_of(_OBJ),
                params=[_ID],
                body=_OBJ,
                role="admin",
                tag="bots",
            ),
        },
        "/api/inboxes/{id}/faq": {
            "get": openapi.op(
                "FAQ entries of an inbox",
                openapi.json_response_of(openapi.items_of("FaqEntry")),
                params=[_ID],
                role="supervisor",
                tag="bots",
            ),
            "post": openapi.op(
                "Add an FAQ entry",
                openapi.json_response_of(_FAQ, "Created"),
                params=[_ID],
                body=_OBJ,
                role="admin",
                status="201",
                tag="bots",
            ),
        },
        "/api/inboxes/{id}/faq/test": {
            "post": openapi.op(
                "What the bot would answer to a text",
                openapi.json_response_of(_OBJ),
                params=[_ID],
                body=_OBJ,
                role="supervisor",
                tag="bots",
            ),
        },
        "/api/faq/{id}": {
            "patch": openapi.op(
                "Change an FAQ entry", openapi.json_response_of(_FAQ), params=[_ID], body=_OBJ, role="admin", tag="bots"
            ),
            "delete": openapi.op(
                "Delete an FAQ entry", openapi.json_response_of(_OBJ), params=[_ID], role="admin", tag="bots"
            ),
        },
        "/api/saved-replies": {
            "get": openapi.op(
                "Saved replies visible to the caller",
                openapi.json_response_of(openapi.items_of("SavedReply")),
                params=[
                    openapi.query_param("q", {"type": "string"}),
                    openapi.query_param("inbox_id", {"type": "integer"}),
                ],
                tag="bots",
            ),
            "post": openapi.op(
                "Add a saved reply",
                openapi.json_response_of(_SAVED, "Created"),
                body=_OBJ,
                role="supervisor",
                status="201",
                tag="bots",
            ),
        },
        "/api/saved-replies/{id}": {
            "patch": openapi.op(
                "Change a saved reply",
                openapi.json_response_of(_SAVED),
                params=[_ID],
                body=_OBJ,
                role="supervisor",
                tag="bots",
            ),
            "delete": openapi.op(
                "Delete a saved reply", openapi.json_response_of(_OBJ), params=[_ID], role="supervisor", tag="bots"
            ),
        },
        "/api/saved-replies/{id}/render": {
            "post": openapi.op(
                "A saved reply filled in for one conversation",
                openapi.json_response_of(_OBJ),
                params=[_ID],
                body=_OBJ,
                tag="bots",
            ),
        },
        "/api/reports/bots": {
            "get": openapi.op(
                "Bot answers, hand-offs by reason, conversations resolved by the bot alone",
                openapi.json_response_of(_OBJ),
                params=[
                    openapi.query_param("from", {"type": "string"}),
                    openapi.query_param("to", {"type": "string"}),
                    openapi.query_param("inbox_id", {"type": "integer"}),
                ],
                role="supervisor",
                tag="reports",
            ),
        },
    },
    {
        "FaqEntry": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "inbox_id": {"type": "integer"},
                "intent": {"type": ["string", "null"]},
                "questions": {"type": "array", "items": {"type": "string"}},
                "answer": {"type": "string"},
                "enabled": {"type": "boolean"},
                "updated_at": {"type": ["string", "null"]},
            },
        },
        "SavedReply": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "inbox_id": {"type": ["integer", "null"]},
                "shortcut": {"type": "string"},
                "title": {"type": "string"},
                "text": {"type": "string"},
                "updated_at": {"type": ["string", "null"]},
            },
        },
    },
)
