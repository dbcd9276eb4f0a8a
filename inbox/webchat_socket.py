"""The visitor's WebSocket session of the website live chat, and the per-visitor limits it enforces.

`inbox.webchat` serves the route and the widget; this module is what one socket does: hello → subscribe → history
or replay → frames both ways (messages and images into the durable ingest path, typing, pre-chat form, read).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiohttp import WSMsgType, web
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from channels import webchat
from channels.events import InboundMessage, ParseError, Receipt
from contacts.audience import contact_events
from contacts.models import ConsentRecord, Contact, ContactIdentity
from inbox.bus import NOTHING, Event, EventBus, Subscription
from inbox.ingest import Accepted, StorageUnavailable
from inbox.keys import BUS, INGEST, SETTINGS
from inbox.models import Conversation, InboundEvent, Inbox, Message
from inbox.phones import normalize_phone
from inbox.processing import update_contact_search
from inbox.serialize import contact_summary, iso

log = logging.getLogger(__name__)
HISTORY_LIMIT = 100
HELLO_TIMEOUT = 15.0
EARLY_EVENTS = 500  # per socket, only until its conversation is known
PRECHAT_METHOD = "prechat_form"  # how a consent given on the pre-chat form is recorded


@dataclass
class Limits:
    """Per-visitor limits; tests and deployments may change them on `app[WEBCHAT].limits`."""

    messages_per_minute: float = 20.0
    burst: int = 8
    image_bytes: int = 5 * 1024 * 1024
    typing_interval: float = 1.0  # at most one typing event per this many seconds per visitor


@dataclass
class Bucket:
    tokens: float
    at: float


@dataclass
class Webchat:
    """Process state of the live chat: limits, rate buckets (per visitor) and where images are kept."""

    upload_dir: Path
    limits: Limits = field(default_factory=Limits)
    buckets: dict[tuple[int, str], Bucket] = field(default_factory=dict)

    def allow_message(self, inbox_id: int, visitor_id: str) -> bool:
        """Token bucket: `burst` at once, then `messages_per_minute` on average."""
        now = time.monotonic()
        key = (inbox_id, visitor_id)
        bucket = self.buckets.get(key) or Bucket(float(self.limits.burst), now)
        rate = self.limits.messages_per_minute / 60.0
        bucket.tokens = min(float(self.limits.burst), bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        self.buckets[key] = bucket
        if len(self.buckets) > 100_000:  # crude bound: old buckets are full anyway
            self.buckets = {key: bucket}
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True


WEBCHAT = web.AppKey("webchat", Webchat)


def visitor_view(data: dict[str, Any]) -> dict[str, Any] | None:
    """What a visitor may see of a message: never private notes, NLP results, staff ids or failure reasons."""
    if data.get("private"):
        return None
    parts = webchat.split_external_id(data.get("external_id"))
    status = data.get("delivery_status")
    return {
        "id": data.get("id"),
        "direction": data.get("direction"),
        "sender_type": data.get("sender_type"),
        "text": data.get("text"),
        "attachments": [
            {k: a.get(k) for k in ("kind", "url", "name") if a.get(k) is not None}
            for a in data.get("attachments") or []
        ],
        "created_at": data.get("created_at"),
        "echo_id": parts[0] if parts else None,
        "failed": status == "failed",
        "removed": bool((data.get("extra") or {}).get("removed")) or data.get("removed_at") is not None,
    }


def _message_data(msg: Message) -> dict[str, Any]:
    return {
        "id": msg.id,
        "direction": msg.direction,
        "sender_type": msg.sender_type,
        "text": msg.text,
        "attachments": msg.attachments or [],
        "private": msg.private,
        "created_at": iso(msg.created_at),
        "external_id": msg.external_id,
        "delivery_status": msg.delivery_status,
        "extra": msg.extra or {},
    }


def _frame(kind: str, seq: int, data: dict[str, Any]) -> str:
    return orjson.dumps({"type": kind, "seq": seq, "data": data}).decode()


class VisitorSession:
    """One visitor socket: hello → subscribe → history or replay → live frames both ways."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse, inbox: Inbox, state: Webchat) -> None:
        self.request, self.ws, self.inbox, self.state = request, ws, inbox, state
        self.bus: EventBus = request.app[BUS]
        self.secret = request.app[SETTINGS].secret_key
        self.visitor: webchat.Visitor | None = None
        self.conversations: set[int] = set()
        self.early: deque[Event] = deque(maxlen=EARLY_EVENTS)
        self.subscription: Subscription | None = None
        self.writer: asyncio.Task[None] | None = None
        self.seq = 0
        self.last_typing = 0.0
        self.typing_on = False  # what the agents were last told; an "off" repeating it is not published again
        # A reply the visitor may not have read yet (the history may hold some): `read` frames are only stored as a
        # receipt when there is one, so repeating them cannot grow the inbound log.
        self.unread_replies = True

    # -- lifecycle ----------------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            first = await self.ws.receive(timeout=HELLO_TIMEOUT)
        except TimeoutError:
            await self.ws.close(code=4000, message=b"hello expected")
            return
        hello = _json_frame(first)
        if hello is None or hello.get("type") != "hello":
            await self.ws.close(code=4000, message=b"hello expected")
            return
        data = hello.get("data") or {}
        if not isinstance(data, dict):
            await self.ws.close(code=4000, message=b"hello data must be an object")
            return
        await self.start(data)
        async for message in self.ws:
            if message.type == WSMsgType.TEXT:
                frame = _json_frame(message)
                if frame is not None:
                    await self.on_frame(frame)
            elif message.type == WSMsgType.BINARY:
                await self.on_image(message.data)
            elif message.type == WSMsgType.ERROR:
                break

    async def close(self) -> None:
        if self.subscription is not None:
            self.subscription.close()
        if self.writer is not None:
            self.writer.cancel()
            await asyncio.gather(self.writer, return_exceptions=True)

    async def start(self, data: dict[str, Any]) -> None:
        token = self.inbox.external_id
        visitor = None
        error = None
        if data.get("identifier"):
            try:
                visitor = webchat.identified_visitor(
                    token, (self.inbox.credentials or {}).get("identity_secret", ""),
                    str(data.get("identifier")), str(data.get("identifier_hash") or ""),
                )  # fmt: skip
            except webchat.InvalidVisitor as exc:
                error = str(exc)
        if visitor is None and isinstance(data.get("visitor_token"), str):
            with contextlib.suppress(webchat.InvalidVisitor):
                visitor = webchat.verify_visitor(self.secret, data["visitor_token"], token)
                if visitor.identified and data.get("identifier") is None:
                    visitor = None  # the site's user logged out: this browser continues anonymously
        self.visitor = visitor or webchat.new_visitor(token)
        self.conversations = set(await self._conversation_ids())
        since = data.get("since") if isinstance(data.get("since"), int) else None
        # Register → snapshot → replay: the subscription exists before the history is read, so nothing is lost.
        self.subscription = self.bus.subscribe(since, self._accept)
        replaying = since is not None and not self.subscription.resync
        messages = None if replaying else await self._history()
        self.seq = self.bus.last_seq if not replaying else since
        prechat_done = await self._has_contact_details()
        await self.send(
            "welcome",
            {
                "visitor_token": webchat.sign_visitor(self.secret, self.visitor),
                "identified": self.visitor.identified,
                "messages": messages,
                "prechat_done": prechat_done,
            },
        )
        if error:
            await self.send("error", {"code": "identity_rejected", "message": error})
        for event in self.subscription.replay:
            await self.send_event(event)
        self.subscription.replay = NOTHING  # the replayed events are let go
        await self.send("ready", {})
        self.writer = asyncio.create_task(self._write_events())

    # -- server → visitor ---------------------------------------------------------------------------------

    def _accept(self, event: Event) -> bool:
        """Events of this visitor's conversation, learnt from its own first message when it starts one.

        Until then, events of this inbox's conversations are kept briefly: an agent (or a bot) may answer the
        new conversation before the pipeline has published the visitor's own message, and that answer must
        still reach the widget, in order, ahead of what follows.
        """
        if event.inbox_id != self.inbox.id or event.type not in ("message.created", "message.updated", "typing"):
            return False
        conv_id = event.data.get("conversation_id")
        if conv_id not in self.conversations:
            if not self._is_own_first(event):
                if not self.conversations:
                    self.early.append(event)
                return False
            self.conversations.add(conv_id)
            early, self.early = (
                [e for e in self.early if e.data.get("conversation_id") == conv_id],
                deque(maxlen=EARLY_EVENTS),
            )
            for before in early:
                if self.subscription is not None:
                    self.subscription.offer(before)  # accepted now: queued ahead of this event
        if event.type == "typing":
            return event.data.get("sender_type") == "agent"
        return not event.data.get("private")

    def _is_own_first(self, event: Event) -> bool:
        if event.type != "message.created" or self.visitor is None or event.data.get("direction") != "in":
            return False
        parts = webchat.split_external_id(event.data.get("external_id"))
        return parts is not None and parts[1] == self.visitor.external_id

    async def send(self, kind: str, data: dict[str, Any]) -> None:
        if not self.ws.closed:
            await self.ws.send_str(_frame(kind, self.seq, data))

    async def send_event(self, event: Event) -> None:
        self.seq = max(self.seq, event.seq)
        if event.type == "typing":
            await self.send("typing", {"on": bool(event.data.get("on"))})
            return
        view = visitor_view(event.data)
        if view is not None:
            if event.type == "message.created" and view["direction"] == "out":
                self.unread_replies = True  # (its later updates, such as being read, are nothing new to read)
            await self.send(event.type, view)

    async def _write_events(self) -> None:
        assert self.subscription is not None
        try:
            while not self.ws.closed:
                batch = await self.subscription.next_batch()
                if not batch:
                    if self.subscription.overflowed:
                        await self.send("resync", {"reason": "reconnect without since"})
                        await self.ws.close()
                    return
                for event in batch:
                    await self.send_event(event)
        except (ConnectionResetError, RuntimeError):
            return

    # -- visitor → server ---------------------------------------------------------------------------------

    async def on_frame(self, frame: dict[str, Any]) -> None:
        kind, data = frame.get("type"), frame.get("data") or {}
        if kind == "message":
            await self.on_message(data)
        elif kind == "typing":
            await self.on_typing(bool(data.get("on", True)) if isinstance(data, dict) else True)
        elif kind == "prechat":
            await self.on_prechat(data)
        elif kind == "read":
            await self.on_read()
        elif kind == "ping":
            await self.send("pong", {})

    async def on_message(
        self, data: Any, image_url: str | None = None, *, charged: bool = False
    ) -> InboundMessage | None:
        """Store the visitor's message; None when it was refused (the visitor got an error frame)."""
        assert self.visitor is not None
        echo_id = data.get("echo_id") if isinstance(data, dict) else None
        if not charged and not self.state.allow_message(self.inbox.id, self.visitor.external_id):
            await self.error("rate_limited", "Bạn gửi nhanh quá, vui lòng chờ một chút (too many messages)", echo_id)
            return None
        try:
            event = webchat.visitor_message(self.visitor, data, image_url=image_url)
        except ParseError as exc:
            await self.error("invalid_message", str(exc), echo_id)
            return None
        try:
            await self.request.app[INGEST].store([Accepted(self.inbox.id, webchat.CHANNEL, event)])
        except StorageUnavailable:
            await self.error("storage_unavailable", "Chưa gửi được, đang thử lại (not stored, retry)", echo_id)
            return None
        await self.send("message.accepted", {"echo_id": echo_id})
        return event

    async def on_image(self, raw: bytes) -> None:
        header, content = _split_binary(raw)
        echo_id = header.get("echo_id") if header else None
        if header is None:
            await self.error("invalid_image", "image frame: 4-byte length, JSON header, bytes", None)
            return
        if len(content) > self.state.limits.image_bytes:
            limit_mb = self.state.limits.image_bytes // (1024 * 1024)
            await self.error("image_too_large", f"Ảnh tối đa {limit_mb} MB (image larger than {limit_mb} MB)", echo_id)
            return
        kind = webchat.sniff_image(content)
        if kind is None:
            await self.error("unsupported_image", "Chỉ nhận ảnh PNG, JPEG, GIF, WebP (images only)", echo_id)
            return
        if not self.state.allow_message(self.inbox.id, self.visitor.external_id if self.visitor else ""):
            await self.error("rate_limited", "Bạn gửi nhanh quá, vui lòng chờ một chút (too many messages)", echo_id)
            return
        name = f"{secrets.token_hex(16)}.{kind[1]}"
        path = self.state.upload_dir / name
        try:
            await asyncio.to_thread(_write_file, path, content)
        except OSError:
            await self.error("storage_unavailable", "Chưa gửi được, đang thử lại (not stored, retry)", echo_id)
            return
        # A refused message never shows the file: it must not stay on disk. (Cancelled, the store may still
        # commit the message, so the file stays.) Neither does a retry's: its echo_id's message is already stored,
        # with the first upload's file, and the visitor is answered as the first time (`message.accepted`).
        url = f"/widget/files/{name}"
        try:
            stored = await self.on_message(header, url, charged=True)
        except Exception:
            path.unlink(missing_ok=True)
            raise
        if stored is None or not await _stored_with(self.inbox.id, stored, url):
            path.unlink(missing_ok=True)

    async def on_typing(self, on: bool) -> None:
        now = time.monotonic()
        if (on and now - self.last_typing < self.state.limits.typing_interval) or not self.conversations:
            return
        if not on and not self.typing_on:
            return  # already off for the agents
        self.last_typing = now
        self.typing_on = on
        conv = await Conversation.filter(id__in=list(self.conversations)).order_by("-id").first()
        if conv is None:
            return
        await self.bus.publish(
            Event(
                "typing",
                {"conversation_id": conv.id, "contact_id": conv.contact_id, "on": on, "sender_type": "contact"},
                inbox_id=conv.inbox_id,
                team_id=conv.team_id,
            )
        )

    async def on_read(self) -> None:
        """The visitor has the panel open: every reply so far is read (stored like a platform's read receipt)."""
        if not self.conversations or self.visitor is None or not self.unread_replies:
            return
        self.unread_replies = False
        receipt = Receipt(webchat.CHANNEL, self.inbox.external_id, self.visitor.external_id, "read", datetime.now(UTC))
        try:
            await self.request.app[INGEST].store([Accepted(self.inbox.id, webchat.CHANNEL, receipt)])
        except StorageUnavailable:
            self.unread_replies = True  # the next `read` tries again

    async def on_prechat(self, data: Any) -> None:
        try:
            form = webchat.prechat_form(data, normalize_phone)
        except ParseError as exc:
            field_name, _, message = str(exc).partition(": ")
            await self.send("error", {"code": "invalid_prechat", "field": field_name, "message": message})
            return
        assert self.visitor is not None
        # Each saved form writes the profile, appends a consent record and tells the inbox's agents: it counts
        # against the visitor's messages, so a script cannot flood either.
        if not self.state.allow_message(self.inbox.id, self.visitor.external_id):
            await self.error("rate_limited", "Bạn gửi nhanh quá, vui lòng chờ một chút (too many messages)", None)
            return
        contact = await save_prechat(self.bus, self.inbox, self.visitor, form)
        await self.send("prechat.saved", {"name": contact.name})

    async def error(self, code: str, message: str, echo_id: str | None) -> None:
        await self.send("error", {"code": code, "message": message, "echo_id": echo_id})

    # -- reads --------------------------------------------------------------------------------------------

    async def _identity(self) -> ContactIdentity | None:
        assert self.visitor is not None
        return await ContactIdentity.get_or_none(inbox_id=self.inbox.id, external_id=self.visitor.external_id)

    async def _conversation_ids(self) -> list[int]:
        identity = await self._identity()
        if identity is None:
            return []
        return await Conversation.filter(identity_id=identity.id).values_list("id", flat=True)

    async def _history(self) -> list[dict[str, Any]]:
        if not self.conversations:
            return []
        rows = (
            await Message.filter(conversation_id__in=list(self.conversations), private=False)
            .order_by("-id")
            .limit(HISTORY_LIMIT)
        )
        views = (visitor_view(_message_data(m)) for m in reversed(rows))
        return [v for v in views if v is not None]

    async def _has_contact_details(self) -> bool:
        identity = await self._identity()
        if identity is None:
            return False
        contact = await Contact.get_or_none(id=identity.contact_id)
        if contact is None:
            return False
        if contact.phone or contact.email:
            return True
        # The form takes any one field: a visitor who sent only their name has answered it too.
        return await ConsentRecord.filter(contact_id=contact.id, method=PRECHAT_METHOD).exists()


def _json_frame(message: Any) -> dict[str, Any] | None:
    if message.type != WSMsgType.TEXT:
        return None
    try:
        frame = orjson.loads(message.data)
    except orjson.JSONDecodeError:
        return None
    return frame if isinstance(frame, dict) else None


def _split_binary(raw: bytes) -> tuple[dict[str, Any] | None, bytes]:
    if len(raw) < 4:
        return None, b""
    (size,) = struct.unpack("!I", raw[:4])
    if size > 4096 or len(raw) < 4 + size:
        return None, b""
    try:
        header = orjson.loads(raw[4 : 4 + size])
    except orjson.JSONDecodeError:
        return None, b""
    return (header if isinstance(header, dict) else None), raw[4 + size :]


async def _stored_with(inbox_id: int, event: InboundMessage, url: str) -> bool:
    """Whether the inbound log holds this event with this file, not an earlier one under the same echo_id
    (the log keeps the first of a dedupe key: a retried upload stores nothing). Asked after the store, so two
    uploads racing on one echo_id cannot both keep their file."""
    try:
        query = InboundEvent.filter(inbox_id=inbox_id, dedupe_key=event.dedupe_key())
        records = await query.values_list("record", flat=True)
    except Exception:  # unsure: keep the file, since a stored message must never point at a missing one
        log.warning("could not check which upload the widget message %s kept", event.external_id, exc_info=True)
        return True
    return any(a.get("url") == url for record in records for a in record.get("attachments") or [])


def _write_file(path: Path, content: bytes) -> None:
    """Whole or not at all: written under a name the file route never serves, then renamed into place; a failed
    write (a full disk) leaves nothing behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    try:
        with partial.open("wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


# ------------------------------------------------------------------------------------------------ pre-chat


async def save_prechat(bus: EventBus, inbox: Inbox, visitor: webchat.Visitor, form: webchat.PreChat) -> Contact:
    """The form's details on the visitor's contact (created now if they have not written yet), with consent.

    Only empty fields are filled: what an agent typed on the profile is never overwritten by a form.
    """
    from contacts.consent import STORAGE, record_consent

    now = datetime.now(UTC)
    async with in_transaction() as conn:
        identity = await ContactIdentity.get_or_none(inbox_id=inbox.id, external_id=visitor.external_id).using_db(conn)
        if identity is None:
            contact = await Contact.create(using_db=conn, first_seen_at=now, last_seen_at=now)
            try:
                async with in_transaction() as savepoint:
                    identity = await ContactIdentity.create(
                        using_db=savepoint, contact=contact, inbox_id=inbox.id, channel=webchat.CHANNEL,
                        external_id=visitor.external_id, name=form.name,
                    )  # fmt: skip
            except IntegrityError:  # the visitor's first message created it meanwhile
                await contact.delete(using_db=conn)
                identity = await ContactIdentity.get(inbox_id=inbox.id, external_id=visitor.external_id).using_db(conn)
        contact = await Contact.get(id=identity.contact_id).using_db(conn)
        changed = []
        for name, value in (("name", form.name), ("phone", form.phone), ("email", form.email)):
            if value and not getattr(contact, name):
                setattr(contact, name, value)
                changed.append(name)
        if changed:
            await contact.save(using_db=conn, update_fields=changed)
            await update_contact_search(conn, contact)
    await record_consent(contact.id, kind=STORAGE, granted=True, channel=webchat.CHANNEL, method=PRECHAT_METHOD, at=now)
    for event in await contact_events("contact.updated", contact_summary(contact) or {}, contact.id):
        await bus.publish(event)
    return contact
