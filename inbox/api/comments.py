"""Page comments, for agents: public reply, private reply (Messenger), hide / unhide, delete; auto-hide setting.

Paths name the comment's message (`/api/messages/{id}/comment/…`); an agent may act on comments of the inboxes
they read, and another inbox's comment does not exist for them (404). Replies go through the outbox like every
reply; hide and delete are one Graph call each, made while the agent waits, so a refusal is the answer.
"""

from __future__ import annotations

from aiohttp import web
from tortoise.transactions import in_transaction

from agents.access import Viewer
from channels.base import SendError
from channels.facebook import GraphClient
from contacts.models import Contact, ContactIdentity
from inbox import actions
from inbox.api import openapi
from inbox.api.guard import auth_of, requires
from inbox.autohide import SETTING
from inbox.bus import Event
from inbox.db import connection
from inbox.http import fail, int_param, json_body, json_response
from inbox.keys import BUS, HTTP, OUTBOX, SETTINGS
from inbox.models import Conversation, Inbox, Message
from inbox.processing import Outcome, conversation_for, record
from inbox.serialize import conversation_json, message_json
from inbox.sql import merge_into_json

routes = web.RouteTableDef()


async def _comment(viewer: Viewer, message_id: int) -> tuple[Conversation, Message, Inbox]:
    """The comment message if this viewer may read its conversation (404 otherwise: no leak)."""
    msg = await Message.get_or_none(id=message_id)
    conv = await Conversation.get_or_none(id=msg.conversation_id).select_related("contact") if msg else None
    if msg is None or conv is None or not viewer.can_read(conv.inbox_id, conv.team_id):
        fail(404, "not_found", "message not found")  # the same answer for another inbox's message: no leak
    if not (msg.extra or {}).get("comment") or msg.external_id is None:
        fail(409, "not_a_comment", "this message is not a Page comment")
    return conv, msg, await Inbox.get(id=conv.inbox_id)


def _text(body: dict) -> str:
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        fail(400, "invalid_body", "text (a non-empty string) is required")
    if len(text) > actions.MAX_TEXT:
        fail(422, "text_too_long", f"text is limited to {actions.MAX_TEXT} characters")
    return text.strip()


def _graph(request: web.Request) -> GraphClient:
    return GraphClient(request.app[SETTINGS].facebook_graph_url, request.app[HTTP])


async def _finish(request: web.Request, msg: Message) -> web.Response:
    """Wait briefly for the first send attempt, so the answer usually carries the outcome."""
    outbox = request.app[OUTBOX]
    if msg.delivery_status == "pending":
        await outbox.wait_first_attempt(msg.id, wait_seconds=3.0)
        await msg.refresh_from_db()
    return json_response(message_json(msg), status=201)


@routes.post("/api/messages/{id}/comment/reply")
@requires("agent")
async def public_reply(request: web.Request) -> web.Response:
    viewer = auth_of(request).viewer
    conv, comment, inbox = await _comment(viewer, int_param(request.match_info["id"], "id"))
    text = _text(await json_body(request))
    msg = await actions.send_outgoing(
        request.app[BUS], request.app[OUTBOX], inbox, conv, text, sender_type="agent", user_id=viewer.user_id,
        extra={"comment_reply_to": comment.external_id},
    )  # fmt: skip
    return await _finish(request, msg)


@routes.post("/api/messages/{id}/comment/private-reply")
@requires("agent")
async def private_reply(request: web.Request) -> web.Response:
    """A Messenger message to the commenter; it lives in their Messenger conversation (created if needed)."""
    viewer = auth_of(request).viewer
    conv, comment, inbox = await _comment(viewer, int_param(request.match_info["id"], "id"))
    if comment.direction != "in":
        fail(409, "not_a_customer_comment", "only a customer's comment can be answered privately")
    text = _text(await json_body(request))
    bus = request.app[BUS]
    out = Outcome()
    async with in_transaction() as conn:
        identity = await ContactIdentity.get(id=conv.identity_id).using_db(conn)
        contact = await Contact.get(id=conv.contact_id).using_db(conn)
        dm = await conversation_for(conn, inbox, identity, contact, comment.created_at, out)
    for created in out.new_conversations:
        await bus.publish(Event("conversation.created", conversation_json(created, contact), inbox_id=inbox.id,
                                team_id=created.team_id))  # fmt: skip
    # One private reply per comment (Facebook's rule) counts only once it was not refused: a first try that failed
    # (an expired page token, say) reached nobody, and may be sent again.
    earlier = (comment.extra or {}).get("comment", {}).get("private_reply_message_id")
    previous = await Message.get_or_none(id=earlier) if earlier else None
    already = previous is not None and previous.delivery_status != "failed"
    extra = {"private_reply_to": {"comment_id": comment.external_id, "comment_message_id": comment.id,
                                  "comment_created_at": comment.created_at.isoformat()}}  # fmt: skip
    if already:
        extra["private_reply_to"]["already_replied"] = True
    msg = await actions.send_outgoing(
        bus, request.app[OUTBOX], inbox, dm, text, sender_type="agent", user_id=viewer.user_id, extra=extra
    )
    if not already and msg.delivery_status != "failed":
        await _update_comment(comment, private_reply_message_id=msg.id)
    return await _finish(request, msg)


@routes.post("/api/messages/{id}/comment/hide")
@requires("agent")
async def hide(request: web.Request) -> web.Response:
    viewer = auth_of(request).viewer
    conv, comment, inbox = await _comment(viewer, int_param(request.match_info["id"], "id"))
    body = await json_body(request)
    hidden = body.get("hidden", True)
    if not isinstance(hidden, bool):
        fail(400, "invalid_body", "hidden must be a boolean")
    if comment.removed_at is not None:
        fail(409, "comment_removed", "the comment was removed")
    try:
        await _graph(request).set_comment_hidden(inbox.credentials["page_token"], comment.external_id or "", hidden)
    except SendError as error:
        fail(502, "platform_refused", error.reason)
    changes: dict = {"hidden": hidden}
    if not hidden:
        changes["auto_hidden"] = False
    await _update_comment(comment, **changes)
    async with in_transaction() as conn:
        kind = "comment_hidden" if hidden else "comment_unhidden"
        await record(conn, conv, kind, "agent", viewer.user_id, actions.now(), comment.id)
    await _publish(request, conv, comment)
    return json_response(message_json(comment))


@routes.delete("/api/messages/{id}/comment")
@requires("agent")
async def delete(request: web.Request) -> web.Response:
    """Deletes the comment on Facebook; hopthu keeps it, marked removed (the record of what was said stays)."""
    viewer = auth_of(request).viewer
    conv, comment, inbox = await _comment(viewer, int_param(request.match_info["id"], "id"))
    if comment.removed_at is None:  # deleting twice is not an error: it is gone either way
        try:
            await _graph(request).delete_comment(inbox.credentials["page_token"], comment.external_id or "")
        except SendError as error:
            fail(502, "platform_refused", error.reason)
        at = actions.now()
        comment.removed_at = at
        await Message.filter(id=comment.id).update(removed_at=at)
        await _update_comment(comment, deleted_by=viewer.user_id)
        async with in_transaction() as conn:
            await record(conn, conv, "comment_deleted", "agent", viewer.user_id, at, comment.id)
        await _publish(request, conv, comment)
    return json_response(message_json(comment))


@routes.put("/api/inboxes/{id}/comment-settings")
@requires("admin")
async def comment_settings(request: web.Request) -> web.Response:
    inbox = await Inbox.get_or_none(id=int_param(request.match_info["id"], "id"))
    if inbox is None:
        fail(404, "not_found", "inbox not found")
    body = await json_body(request)
    auto_hide = body.get("auto_hide")
    if not isinstance(auto_hide, bool):
        fail(400, "invalid_body", "auto_hide (boolean) is required")
    await merge_into_json(connection(), "inboxes", "settings", inbox.id, {SETTING: auto_hide})  # the rest stays
    return json_response({"inbox_id": inbox.id, "auto_hide": auto_hide})


async def _update_comment(comment: Message, **changes: object) -> None:
    """Sets fields of `extra.comment` in place, keeping what the auto-hide worker wrote meanwhile."""
    extra = await merge_into_json(connection(), "messages", "extra", comment.id, changes, key="comment")
    if extra is not None:
        comment.extra = extra


async def _publish(request: web.Request, conv: Conversation, msg: Message) -> None:
    event = Event("message.updated", message_json(msg), inbox_id=conv.inbox_id, team_id=conv.team_id)
    await request.app[BUS].publish(event)


_TEXT = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
openapi.document(
    {
        "/api/messages/{id}/comment/reply": {"post": openapi.op(
            "Reply publicly under a Page comment (through the outbox)",
            openapi.json_response_of(openapi.ref("Message")), body=_TEXT, params=[openapi.PATH_ID],
            status="201", tag="comments",
        )},
        "/api/messages/{id}/comment/private-reply": {"post": openapi.op(
            "Reply privately: a Messenger message to the commenter by comment id (once per comment, within 7 days); "
            "it lives in their Messenger conversation. A refusal is stored as a failed message with the reason.",
            openapi.json_response_of(openapi.ref("Message")), body=_TEXT, params=[openapi.PATH_ID],
            status="201", tag="comments",
        )},
        "/api/messages/{id}/comment/hide": {"post": openapi.op(
            "Hide (or with hidden=false unhide) a comment: the author still sees it, the public does not",
            openapi.json_response_of(openapi.ref("Message")), params=[openapi.PATH_ID], tag="comments",
            body={"type": "object", "properties": {"hidden": {"type": "boolean", "default": True}}},
        )},
        "/api/messages/{id}/comment": {"delete": openapi.op(
            "Delete a comment on Facebook; hopthu keeps it marked removed",
            openapi.json_response_of(openapi.ref("Message")), params=[openapi.PATH_ID], tag="comments",
        )},
        "/api/inboxes/{id}/comment-settings": {"put": openapi.op(
            "Auto-hide comments that show a phone number or an address (on by default)",
            openapi.json_response_of({"type": "object"}), params=[openapi.PATH_ID], role="admin", tag="comments",
            body={"type": "object", "required": ["auto_hide"], "properties": {"auto_hide": {"type": "boolean"}}},
        )},
    }
)  # fmt: skip
