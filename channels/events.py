"""Channel-neutral events: what every channel adapter parses a platform payload into.

Adapters return these; `inbox.ingest` stores them (as JSON, through `to_record` / `from_record`) and later
turns them into contacts, conversations and messages. Nothing here touches the database.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import orjson

Direction = Literal["in", "out"]


class ParseError(ValueError):
    """The only exception a channel parser may raise: the payload is not what the platform sends."""


@dataclass(frozen=True, slots=True)
class Attachment:
    kind: str  # image | video | audio | file | sticker | location | fallback | reel | link
    url: str | None = None
    name: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message in a conversation: from the customer (`direction="in"`) or an echo of the page's own."""

    kind: ClassVar[str] = "message"
    channel: str
    account_id: str  # the page / OA / bot that received it
    contact_external_id: str  # the customer's id on that account (PSID, Zalo user id, chat id)
    external_id: str  # the platform's message id (mid)
    occurred_at: datetime
    text: str | None = None
    attachments: tuple[Attachment, ...] = ()
    direction: Direction = "in"
    quick_reply_payload: str | None = None
    postback_payload: str | None = None
    postback_title: str | None = None
    referral: dict[str, Any] | None = None
    reply_to_external_id: str | None = None
    app_id: str | None = None  # echoes: the app that sent it
    # echoes: what the sender passed as metadata (hopthu puts its message id here)
    metadata: str | None = None
    # A phone number the customer chose to share with the business (Zalo shared info, Telegram shared contact):
    # given by the customer, so it may become the contact's phone.
    shared_phone: str | None = None
    # Threads other than the direct-message one: Page comments use "post:<post id>", one per customer per post.
    thread_key: str | None = None
    # What the thread is about, shown to the agent: the post's id, text and link for comments.
    thread_context: dict[str, Any] | None = None
    contact_name: str | None = None  # the name the platform shows with the event (comments carry `from.name`)

    def dedupe_key(self) -> str:
        return f"msg:{self.external_id}"


@dataclass(frozen=True, slots=True)
class MessageEdit:
    """The author changed a message already stored: new text; the stored message keeps the old one in history."""

    kind: ClassVar[str] = "edit"
    channel: str
    account_id: str
    contact_external_id: str
    external_id: str  # the platform's id of the edited message
    text: str | None
    occurred_at: datetime  # when it was edited
    direction: Direction = "in"

    def dedupe_key(self) -> str:
        # The same delivery twice is one event; a later edit of the same message (or another text) is a new one.
        stamp = int(self.occurred_at.timestamp() * 1000)
        return "edit:" + _digest(f"{self.external_id}|{stamp}|{self.text}")


@dataclass(frozen=True, slots=True)
class MessageRemoval:
    """The author (or the platform) removed a stored message: it is marked removed, never deleted here."""

    kind: ClassVar[str] = "removal"
    channel: str
    account_id: str
    contact_external_id: str
    external_id: str
    occurred_at: datetime

    def dedupe_key(self) -> str:
        stamp = int(self.occurred_at.timestamp() * 1000)
        return "rm:" + _digest(f"{self.external_id}|{stamp}")


@dataclass(frozen=True, slots=True)
class MessageReaction:
    """The customer reacted to a message (a ❤ on the shop's reply), or took the reaction back (`emoji` None)."""

    kind: ClassVar[str] = "reaction"
    channel: str
    account_id: str
    contact_external_id: str
    external_id: str  # the platform's id of the message reacted to
    emoji: str | None
    occurred_at: datetime

    def dedupe_key(self) -> str:
        stamp = int(self.occurred_at.timestamp() * 1000)
        return "react:" + _digest(f"{self.external_id}|{self.contact_external_id}|{stamp}|{self.emoji}")


@dataclass(frozen=True, slots=True)
class Receipt:
    """Delivery or read watermark: every outgoing message up to `watermark` reached `status`."""

    kind: ClassVar[str] = "receipt"
    channel: str
    account_id: str
    contact_external_id: str
    status: Literal["delivered", "read"]
    watermark: datetime
    external_ids: tuple[str, ...] = ()

    def dedupe_key(self) -> str:
        stamp = int(self.watermark.timestamp() * 1000)
        ids = ",".join(sorted(self.external_ids))
        return "rcpt:" + _digest(f"{self.contact_external_id}|{self.status}|{stamp}|{ids}")


@dataclass(frozen=True, slots=True)
class Referral:
    """The customer arrived from an ad, a link or a plugin without writing yet."""

    kind: ClassVar[str] = "referral"
    channel: str
    account_id: str
    contact_external_id: str
    occurred_at: datetime
    referral: dict[str, Any] = field(default_factory=dict)

    def dedupe_key(self) -> str:
        stamp = int(self.occurred_at.timestamp() * 1000)
        return "ref:" + _digest(f"{self.contact_external_id}|{stamp}|{sorted(self.referral.items())}")


@dataclass(frozen=True, slots=True)
class ThreadControl:
    """Control of the customer's thread moved between the page's apps (Messenger's handover protocol): while another
    app (a chatbot platform, the Page Inbox) holds it, the platform may refuse the replies sent from here."""

    kind: ClassVar[str] = "thread_control"
    channel: str
    account_id: str
    contact_external_id: str
    action: Literal["passed", "taken", "requested"]
    occurred_at: datetime
    new_owner_app_id: str | None = None  # "requested": the app that asks for control
    previous_owner_app_id: str | None = None  # None: the thread was idle
    metadata: str | None = None  # what the app that moved it said, as it said it

    def dedupe_key(self) -> str:
        stamp = int(self.occurred_at.timestamp() * 1000)
        apps = f"{self.new_owner_app_id}|{self.previous_owner_app_id}"
        return "ctl:" + _digest(f"{self.contact_external_id}|{self.action}|{stamp}|{apps}")


@dataclass(frozen=True, slots=True)
class Unrecognized:
    """A signed event the adapter does not understand: kept raw in the dead-letter table, never an error."""

    kind: ClassVar[str] = "unrecognized"
    channel: str
    account_id: str | None
    reason: str
    payload: dict[str, Any] = field(default_factory=dict)


ChannelEvent = InboundMessage | Receipt | Referral | MessageEdit | MessageRemoval | MessageReaction | ThreadControl
_EVENT_TYPES = (InboundMessage, Receipt, Referral, MessageEdit, MessageRemoval, MessageReaction, ThreadControl)
_KINDS: dict[str, type] = {cls.kind: cls for cls in _EVENT_TYPES}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


_FIELD_NAMES: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in _EVENT_TYPES
}


def to_record(event: ChannelEvent) -> dict[str, Any]:
    """A JSON-ready dict that `from_record` turns back into the same event (shallow: it is on the ack path)."""
    data: dict[str, Any] = {"kind": event.kind}
    for name in _FIELD_NAMES[type(event)]:
        value = getattr(event, name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif name == "attachments":
            value = [dataclasses.asdict(a) for a in value]
        data[name] = value
    return data


def record_json(event: ChannelEvent) -> str:
    """`to_record` as JSON text, encoded by orjson straight from the dataclass (half the time: on the ack path).
    orjson writes datetimes as `isoformat` does and nested dataclasses (attachments) as their fields."""
    return (b'{"kind":"' + event.kind.encode() + b'",' + orjson.dumps(event)[1:]).decode()


def from_record(record: dict[str, Any]) -> ChannelEvent:
    data = dict(record)
    cls = _KINDS[data.pop("kind")]
    # Only the fields `to_record` changed are turned back (the record's keys are the class's own fields).
    for name in ("occurred_at", "watermark"):
        if isinstance(value := data.get(name), str):
            data[name] = datetime.fromisoformat(value)
    if (attachments := data.get("attachments")) is not None:
        data["attachments"] = tuple(Attachment(**a) for a in attachments)
    if (external_ids := data.get("external_ids")) is not None:
        data["external_ids"] = tuple(external_ids)
    return cls(**data)


def from_millis(ms: int | float | str) -> datetime:
    """A platform's milliseconds as a UTC instant; ParseError for one no calendar holds (the event is then kept as
    a dead letter, never a 500)."""
    try:
        return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise ParseError(f"time out of range: {ms!r}") from exc


def from_seconds(seconds: int | float | str) -> datetime:
    """A platform's seconds as a UTC instant; ParseError as in `from_millis`."""
    try:
        return datetime.fromtimestamp(int(seconds), tz=UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise ParseError(f"time out of range: {seconds!r}") from exc
