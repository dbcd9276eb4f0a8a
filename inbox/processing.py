"""From the durable inbound log to contacts, conversations and messages (one transaction per batch).

Runs off the ack path. Each stored event is applied inside a savepoint, so one bad event is marked with its
error and kept, and the rest of the batch still lands. After the commit, the outcomes go to the post-commit
pipeline (enrich → route → publish).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
import unicodedata
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from channels.events import (
    InboundMessage,
    MessageEdit,
    MessageReaction,
    MessageRemoval,
    Receipt,
    Referral,
    ThreadControl,
    from_record,
)
from contacts.consent import withheld
from contacts.models import Contact, ContactIdentity
from inbox import db
from inbox.enrich import MAX_TEXT, NLP_COLUMNS, nlp_value, take_analysis, write_and_summarise
from inbox.models import Conversation, EarlyReceipt, InboundEvent, Inbox, Message
from inbox.phones import normalize_phone
from inbox.search import contact_search_text, fold, index_messages, message_index_statement, store_contact_search
from inbox.sql import (
    Sql,
    Statement,
    as_json,
    insert_many,
    insert_rows,
    json_param,
    model_columns,
    model_from_row,
    model_select,
    update_many,
)

if TYPE_CHECKING:
    from inbox.coordination import LogLeader

log = logging.getLogger(__name__)
PREVIEW_LENGTH = 200
ORIGIN_PREFIX = "hopthu:"  # echoes whose metadata starts with this were sent by hopthu itself
# An echo without our metadata confirms a pending reply written at most this long before it: the outbox sends
# within minutes (its retries give up well within this) and the echo follows the send within seconds.
ECHO_MATCH_WINDOW = timedelta(hours=1)
ECHO_CLOCK_SKEW = timedelta(minutes=2)  # the platform's clock against ours (comment times are whole seconds)


@dataclass(slots=True)
class Outcome:
    """What one batch changed, for the post-commit pipeline."""

    new_messages: list[tuple[Conversation, Contact, Message]] = field(default_factory=list)
    updated_messages: list[tuple[Conversation, Message]] = field(default_factory=list)
    # Customers' messages whose text changed (edits): the enrichers read them again (NLP, comment auto-hide).
    edited_messages: list[tuple[Conversation, Message]] = field(default_factory=list)
    new_conversations: list[Conversation] = field(default_factory=list)
    changed_conversations: dict[int, tuple[Conversation, Contact]] = field(default_factory=dict)
    identities_to_enrich: list[ContactIdentity] = field(default_factory=list)

    def touch(self, conv: Conversation, contact: Contact) -> None:
        self.changed_conversations[conv.id] = (conv, contact)

    def merge(self, other: Outcome) -> None:
        self.new_messages += other.new_messages
        self.updated_messages += other.updated_messages
        self.edited_messages += other.edited_messages
        self.new_conversations += other.new_conversations
        self.changed_conversations.update(other.changed_conversations)
        self.identities_to_enrich += other.identities_to_enrich


def now() -> datetime:
    return datetime.now(UTC)


def preview(text: str | None, attachments: list[dict]) -> str:
    if text:
        return text[:PREVIEW_LENGTH]
    if attachments:
        return f"[{attachments[0].get('kind', 'file')}]"
    return ""


def advance(conv: Conversation, at: datetime, preview_text: str, *, incoming: bool) -> None:
    """Move the conversation's summary forward for a message at `at` (events may arrive out of order)."""
    if conv.last_message_at is None or at >= conv.last_message_at:
        conv.last_message_at, conv.last_message_preview = at, preview_text
    conv.last_activity_at = max(conv.last_activity_at, at)
    if incoming:
        conv.last_incoming_at = max(conv.last_incoming_at or at, at)
        conv.unread_count += 1


async def identity_and_contact(
    conn: BaseDBAsyncClient, inbox: Inbox, external_id: str, seen_at: datetime, out: Outcome, name: str | None = None
) -> tuple[ContactIdentity, Contact]:
    identity = (
        await ContactIdentity.filter(inbox_id=inbox.id, external_id=external_id)
        .using_db(conn)
        .select_related("contact")
        .first()
    )
    if identity is not None:
        contact = identity.contact
        if contact.last_seen_at is None or seen_at > contact.last_seen_at:
            contact.last_seen_at = seen_at
            await contact.save(using_db=conn, update_fields=["last_seen_at"])
        return identity, contact
    contact = await Contact.create(using_db=conn, first_seen_at=seen_at, last_seen_at=seen_at, name=name or "")
    identity = await ContactIdentity.create(
        using_db=conn, contact=contact, inbox_id=inbox.id, channel=inbox.channel, external_id=external_id, name=name
    )
    out.identities_to_enrich.append(identity)
    return identity, contact


async def conversation_for(
    conn: BaseDBAsyncClient,
    inbox: Inbox,
    identity: ContactIdentity,
    contact: Contact,
    at: datetime,
    out: Outcome,
    thread_key: str = "dm",
    thread_context: dict | None = None,
) -> Conversation:
    """The identity's conversation in one thread: "dm", or one per post for Page comments."""
    query = Conversation.filter(inbox_id=inbox.id, identity_id=identity.id, thread_key=thread_key)
    conv = await query.using_db(conn).first()
    if conv is not None:
        return conv
    conv = await Conversation.create(
        using_db=conn,
        inbox_id=inbox.id,
        contact_id=contact.id,
        identity_id=identity.id,
        channel=inbox.channel,
        thread_key=thread_key,
        thread_context=thread_context,
        status="open",
        last_activity_at=at,
    )
    await record(conn, conv, "opened", "contact", contact.id, at)
    out.new_conversations.append(conv)
    return conv


async def record(
    conn: BaseDBAsyncClient,
    conv: Conversation,
    kind: str,
    actor_type: str,
    actor_id: int | None,
    at: datetime,
    message_id: int | None = None,
    **data: object,
) -> None:
    """Append one fact to `conversation_events` (raw insert: it is on the ingest hot path)."""
    sql = Sql(conn.capabilities.dialect)
    values = dict(zip(_EVENT_COLUMNS, _event_row(conv, kind, actor_type, actor_id, at, message_id, data), strict=True))
    await conn.execute_query(sql.insert("conversation_events", values), sql.params)


_EVENT_COLUMNS = (
    "conversation_id", "inbox_id", "kind", "actor_type", "actor_id", "message_id", "data", "occurred_at", "recorded_at",
)  # fmt: skip
_MESSAGE_ID = _EVENT_COLUMNS.index("message_id")  # a held message's id is filled in there at the flush
_SUMMARY_COLUMNS = (
    "status", "snoozed_until", "last_message_at", "last_message_preview", "last_incoming_at", "last_activity_at",
    "unread_count",
)  # fmt: skip


def _event_row(
    conv: Conversation, kind: str, actor_type: str, actor_id: int | None, at: datetime, message_id: int | None, data
) -> list:
    return event_row(conv.id, conv.inbox_id, kind, actor_type, actor_id, at, message_id, data)


def event_row(
    conversation_id: int,
    inbox_id: int,
    kind: str,
    actor_type: str,
    actor_id: int | None,
    at: datetime,
    message_id: int | None,
    data: dict,
) -> list:
    """One `conversation_events` row for `append_events`."""
    return [conversation_id, inbox_id, kind, actor_type, actor_id, message_id, json_param(data), at, now()]


async def append_events(conn: BaseDBAsyncClient, rows: list[list]) -> None:
    """Append many facts to `conversation_events` in one statement."""
    if rows:
        await conn.execute_many(insert_many(conn.capabilities.dialect, "conversation_events", _EVENT_COLUMNS), rows)


@dataclass(slots=True)
class Deferred:
    """Writes of customers' messages held until the end of their batch, in the same transaction: one multi-row
    statement per table instead of three per message. A conversation read in the batch is kept here, so the next
    message to it sees the changes of the previous one. Anything else that touches conversations flushes first."""

    events: list[list] = field(default_factory=list)
    search: list[tuple[Message, str]] = field(default_factory=list)
    conversations: dict[int, Conversation] = field(default_factory=dict)
    changed: set[int] = field(default_factory=set)
    seen: dict[int, datetime] = field(default_factory=dict)  # contact id → last seen
    # New customer messages, inserted at the flush in one statement (their ids are filled in then). Off where each
    # event must stand alone (`_apply_isolated`): a message already stored is then skipped, not an error.
    hold_messages: bool = True
    messages: list[tuple[Message, list]] = field(default_factory=list)
    # The NLP results already in for held messages' texts (`NlpEnricher.finished`): stored in the messages' insert
    # and summarised on their conversations in this transaction, so `message.created` carries them.
    finished_analyses: Callable[[list[str]], dict[str, dict]] | None = None

    def record(
        self,
        conv: Conversation,
        kind: str,
        actor_type: str,
        actor_id: int | None,
        at: datetime,
        message: Message | None,
        **data: object,
    ) -> None:
        """The message's id is read at the flush: a held message gets its id there."""
        self.events.append(_event_row(conv, kind, actor_type, actor_id, at, message, data))  # type: ignore[arg-type]

    async def flush(self, conn: BaseDBAsyncClient, also: Sequence[Statement] = (), *, commit: bool = False) -> None:
        """The held writes, with `also`, in one hand-off (`run_statements`): the held messages first, whose ids
        their insert returns and fills in where the rest refer to them (`_message_inserts`), then the rest.
        `commit`: the transaction's last writes, committed in that hand-off on SQLite."""
        dialect = conn.capabilities.dialect
        analysed = self._take_analyses()
        indexed = message_index_statement(dialect, [(msg, text) for msg, text in self.search])
        # Rows that name a message by its object, and where: its id replaces it once known.
        naming = [(self.events, _MESSAGE_ID), (indexed.params if indexed else [], 0)]
        statements = self._message_inserts(dialect, naming)
        if not statements:
            _name_by_id(naming)  # no message held: every one named has its id already
        if self.events:
            events = insert_many(dialect, "conversation_events", _EVENT_COLUMNS)
            statements.append(Statement(events, self.events, many=True))
        if self.changed:
            rows = [
                [*(getattr(self.conversations[cid], c) for c in _SUMMARY_COLUMNS), cid] for cid in sorted(self.changed)
            ]
            statements.append(Statement(update_many(dialect, "conversations", _SUMMARY_COLUMNS), rows, many=True))
        if self.seen:
            rows = [[at, cid] for cid, at in sorted(self.seen.items())]
            statements.append(Statement(update_many(dialect, "contacts", ("last_seen_at",)), rows, many=True))
        if indexed:
            statements.append(indexed)
        statements += also
        # With the NLP summary of the conversations whose messages came with their analysis.
        for conv_id, fields in (await write_and_summarise(conn, statements, analysed, commit=commit)).items():
            if (conv := self.conversations.get(conv_id)) is not None:
                for column, value in fields.items():
                    setattr(conv, column, value)  # published with the conversation after the commit
        self.events, self.search, self.changed, self.seen = [], [], set(), {}
        self.conversations = {}

    def _take_analyses(self) -> list[Message]:
        """Held customer messages whose analysis is in: filled in on the message and its row to insert."""
        if self.finished_analyses is None:
            return []
        texts = [msg.text for msg, _ in self.messages if msg.text and msg.text.strip()]
        results = self.finished_analyses(texts) if texts else {}
        if not results:
            return []
        analysed = []
        for msg, row in self.messages:
            result = results.get((msg.text or "")[:MAX_TEXT])
            if result is not None:
                take_analysis(msg, result)
                for index, column in _NLP_SLOTS:
                    row[index] = nlp_value(msg, column)
                analysed.append(msg)
        return analysed

    def _message_inserts(self, dialect: str, naming: list[tuple[list[list], int]]) -> list[Statement]:
        """The held messages' inserts, one per `MESSAGES_PER_STATEMENT`, each giving its messages their ids as soon
        as it has run (`_give_ids`); after the last, the rows in `naming` get those ids. They run in the flush's
        hand-off: a round trip of their own had held the connection longer while webhooks waited for it."""
        held, self.messages = self.messages, []
        statements = []
        for start in range(0, len(held), MESSAGES_PER_STATEMENT):
            chunk = held[start : start + MESSAGES_PER_STATEMENT]
            statement, params = insert_rows(
                dialect, "messages", _MESSAGE_COLUMNS, [row for _, row in chunk],
                on_conflict="(inbox_id, external_id) DO NOTHING",
            )  # fmt: skip
            last = start + MESSAGES_PER_STATEMENT >= len(held)
            then = functools.partial(_give_ids, [msg for msg, _ in chunk], naming if last else [])
            statements.append(
                Statement(f"{statement} RETURNING id, inbox_id, external_id", params, fetch=True, then=then)
            )
        return statements


def _give_ids(chunk: list[Message], naming: list[tuple[list[list], int]], inserted: list[dict]) -> None:
    """Each message of `chunk` its id from the insert's returned rows, then (after the last insert) the rows in
    `naming` their messages' ids. One that is not inserted was already stored (the same platform message under
    another log key, or twice in this batch): `AlreadyStored` fails the batch, which is then applied event by
    event, where it is skipped."""
    ids = {(r["inbox_id"], r["external_id"]): r["id"] for r in inserted}
    for msg in chunk:
        msg_id = ids.pop((msg.inbox_id, msg.external_id), None)
        if msg_id is None:
            raise AlreadyStored(f"message {msg.external_id!r} of inbox {msg.inbox_id} is already stored")
        msg.id = msg_id
    _name_by_id(naming)


def _name_by_id(naming: list[tuple[list[list], int]]) -> None:
    for rows, index in naming:
        for row in rows:
            if isinstance(message := row[index], Message):
                row[index] = message.id


class AlreadyStored(Exception):
    """A held customer message turned out to be stored already: the batch is applied again event by event."""


_MESSAGE_COLUMNS = (
    "conversation_id", "inbox_id", "direction", "sender_type", "origin", "text", "attachments", "private",
    "created_at", "recorded_at", "external_id", "extra", "entities", "search_text",
    "sentiment", "sentiment_score", "intent", "intent_confidence",
)  # fmt: skip
_NLP_SLOTS = [(_MESSAGE_COLUMNS.index(column), column) for column in NLP_COLUMNS]  # filled in at the flush
MESSAGES_PER_STATEMENT = 500  # 7,000 parameters: well within SQLite's and Postgres' limits


def _attachments(event: InboundMessage) -> list[dict]:
    return [{k: v for k, v in dataclasses.asdict(a).items() if v is not None} for a in event.attachments]


def _extra(event: InboundMessage) -> dict:
    extra: dict = {
        "quick_reply_payload": event.quick_reply_payload,
        "postback_payload": event.postback_payload,
        "postback_title": event.postback_title,
        "referral": event.referral,
        "reply_to_external_id": event.reply_to_external_id,
    }
    if event.thread_key and event.thread_key.startswith("post:"):
        context = event.thread_context or {}
        extra["comment"] = {
            "comment_id": event.external_id,
            "post_id": context.get("post_id"),
            "parent_id": context.get("parent_id"),
            "hidden": bool(context.get("hidden")),
        }
    return {k: v for k, v in extra.items() if v is not None}


async def apply_echo(conn: BaseDBAsyncClient, inbox: Inbox, event: InboundMessage, out: Outcome) -> None:
    """The page's own message: ours (confirm it) or sent from the platform's tools (record it as outgoing)."""
    own_id = _own_message_id(event.metadata)
    if own_id is not None:
        msg = await Message.filter(id=own_id, inbox_id=inbox.id).using_db(conn).first()
        if msg is not None:
            if msg.external_id is None or msg.delivery_status in ("pending", "failed"):
                msg.external_id = msg.external_id or event.external_id
                if msg.delivery_status in ("pending", "failed"):
                    msg.delivery_status, msg.failure_reason = await confirmed_status(conn, msg), None
                await msg.save(using_db=conn, update_fields=["external_id", "delivery_status", "failure_reason"])
                conv = await Conversation.get(id=msg.conversation_id).using_db(conn)
                out.updated_messages.append((conv, msg))
            return
    if await Message.filter(inbox_id=inbox.id, external_id=event.external_id).using_db(conn).exists():
        return  # hopthu sent it and already knows its id
    if event.thread_key and event.thread_key != "dm":
        found = await _comment_thread_of_page_reply(conn, inbox, event, out)
        if found is None:
            return  # the page's own post or a comment outside any customer's thread: nothing to show
        conv, contact = found
    else:
        identity, contact = await identity_and_contact(conn, inbox, event.contact_external_id, event.occurred_at, out)
        conv = await conversation_for(conn, inbox, identity, contact, event.occurred_at, out)
    if await _confirm_unconfirmed_reply(conn, conv, event, out):
        return
    attachments = _attachments(event)
    msg = await Message.create(
        using_db=conn,
        conversation_id=conv.id,
        inbox_id=inbox.id,
        direction="out",
        sender_type="agent",
        origin="platform",
        text=event.text,
        attachments=attachments,
        created_at=event.occurred_at,
        external_id=event.external_id,
        delivery_status=status_by_watermarks(conv, event.occurred_at),
        extra={**_extra(event), **({"app_id": event.app_id} if event.app_id else {})},
        search_text=fold(event.text),
    )
    await record(conn, conv, "message_out", "agent", None, event.occurred_at, msg.id, origin="platform")
    advance(conv, event.occurred_at, preview(event.text, attachments), incoming=False)
    await conv.save(using_db=conn)
    await index_messages(conn, [(msg.id, msg.search_text)])
    out.new_messages.append((conv, contact, msg))
    out.touch(conv, contact)


async def _confirm_unconfirmed_reply(
    conn: BaseDBAsyncClient, conv: Conversation, event: InboundMessage, out: Outcome
) -> bool:
    """An echo without hopthu's metadata (Zalo's, a page's own comment) that reports a reply of ours whose send
    has not answered yet, or answered with an error although it went through: confirm that reply instead of
    storing a copy. The outbox then records the same id, or skips the retry (it never resends a sent message).

    Matched on the conversation and the content, oldest first: the outbox sends one reply per conversation at
    a time, in order, so the oldest pending reply with this text is the one on its way. An identical text typed
    in the platform's own tool at that moment is indistinguishable and confirms our reply (one message shown).
    """
    earliest = event.occurred_at - ECHO_MATCH_WINDOW
    latest = event.occurred_at + ECHO_CLOCK_SKEW  # an echo never comes before its message was written
    candidates = (
        await Message.filter(
            conversation_id=conv.id, direction="out", origin="hopthu", private=False, delivery_status="pending",
            external_id__isnull=True, created_at__gte=earliest, created_at__lte=latest,
        )
        .using_db(conn)
        .order_by("id")  # the outbox's order: its items are created with their messages
    )  # fmt: skip
    content = _content_key(event.text, [a.kind for a in event.attachments])
    for msg in candidates:
        if _content_key(msg.text, [a.get("kind") for a in msg.attachments or []]) != content:
            continue
        status = await confirmed_status(conn, msg)
        # Conditional, like the outbox's own update: whichever of the two comes first stores the id.
        unconfirmed = Message.filter(id=msg.id, delivery_status="pending", external_id__isnull=True)
        if await unconfirmed.using_db(conn).update(external_id=event.external_id, delivery_status=status):
            msg.external_id, msg.delivery_status = event.external_id, status
            out.updated_messages.append((conv, msg))
            return True
        if await Message.filter(id=msg.id, external_id=event.external_id).using_db(conn).exists():
            return True  # the outbox stored this very id meanwhile
    return False


def _content_key(text: str | None, kinds: list[str | None]) -> tuple[str, list[str | None]]:
    """What an echo and our reply must share: the text as the customer reads it, and the attachments' kinds."""
    return unicodedata.normalize("NFC", (text or "").strip()), kinds


async def _comment_thread_of_page_reply(
    conn: BaseDBAsyncClient, inbox: Inbox, event: InboundMessage, out: Outcome
) -> tuple[Conversation, Contact] | None:
    """The customer thread a page's own comment belongs to: the thread of the comment it answers."""
    parent_id = (event.thread_context or {}).get("parent_id")
    if not parent_id:
        return None
    parent = await Message.filter(inbox_id=inbox.id, external_id=parent_id).using_db(conn).first()
    if parent is None:
        return None
    conv = await Conversation.get(id=parent.conversation_id).using_db(conn)
    contact = await Contact.get(id=conv.contact_id).using_db(conn)
    return conv, contact


def _own_message_id(metadata: str | None) -> int | None:
    if metadata and metadata.startswith(ORIGIN_PREFIX):
        tail = metadata[len(ORIGIN_PREFIX) :]
        if tail.isdigit():
            return int(tail)
    return None


_STATUS_RANK = {"pending": 0, "sent": 1, "delivered": 2, "read": 3}
# Receipts for ids not known yet (`EarlyReceipt`): a send's answer is written down within seconds, so an hour is
# plenty; older ones are dropped as the next is kept. A receipt keeps this many of its ids at most.
EARLY_RECEIPT_TTL = timedelta(hours=1)
EARLY_RECEIPT_IDS = 50


async def _existing_chat(conn: BaseDBAsyncClient, inbox: Inbox, contact_external_id: str) -> Conversation | None:
    """The customer's direct conversation, if they have one: a receipt or a handover never makes either."""
    identity = await ContactIdentity.filter(inbox_id=inbox.id, external_id=contact_external_id).using_db(conn).first()
    if identity is None:
        return None
    return await Conversation.filter(inbox_id=inbox.id, identity_id=identity.id, thread_key="dm").using_db(conn).first()


async def apply_receipt(conn: BaseDBAsyncClient, inbox: Inbox, event: Receipt, out: Outcome) -> None:
    conv = await _existing_chat(conn, inbox, event.contact_external_id)
    if conv is None:
        return
    # The watermark first: that takes the conversation's row lock, which the outbox waits for to read it while it
    # records a send's answer (`confirmed_status`). A reply still pending is not moved below; the outbox's answer
    # then stores it as this watermark says, whichever of the two commits first.
    await _keep_watermark(conn, conv, event)
    query = Message.filter(conversation_id=conv.id, direction="out", delivery_status__in=["sent", "delivered"])
    candidates = await query.filter(created_at__lte=event.watermark).using_db(conn)
    if event.external_ids:
        candidates += await query.filter(external_id__in=list(event.external_ids)).using_db(conn)
    rank = _STATUS_RANK[event.status]
    changed: dict[int, Message] = {}
    for msg in candidates:
        if _STATUS_RANK.get(msg.delivery_status or "pending", 0) < rank:
            msg.delivery_status = event.status
            changed[msg.id] = msg
    if changed:
        await Message.filter(id__in=list(changed)).using_db(conn).update(delivery_status=event.status)
        out.updated_messages.extend((conv, m) for m in changed.values())
    if event.external_ids:
        await _keep_early_receipt(conn, conv, event)


async def _keep_watermark(conn: BaseDBAsyncClient, conv: Conversation, event: Receipt) -> None:
    """The conversation's latest watermark of the receipt's kind, for a page's message that is stored or confirmed
    after a receipt covering it (webhooks arrive in any order): `status_by_watermarks` stores it as such."""
    column = "read_until" if event.status == "read" else "delivered_until"
    kept = getattr(conv, column)
    if kept is None or event.watermark > kept:
        setattr(conv, column, event.watermark)
        await Conversation.filter(id=conv.id).using_db(conn).update(**{column: event.watermark})


def status_by_watermarks(conv: Conversation, at: datetime) -> str:
    """A page's message sent at `at` as the receipts already applied to its conversation report it."""
    if conv.read_until is not None and at <= conv.read_until:
        return "read"
    if conv.delivered_until is not None and at <= conv.delivered_until:
        return "delivered"
    return "sent"


async def confirmed_status(conn: BaseDBAsyncClient, msg: Message) -> str:
    """The status of our reply that the platform has just confirmed (its send's answer, its echo): "sent", or
    further where a receipt applied before already covers it. Messenger's receipts are watermarks, so none comes
    again for it: "sent" would stay for good. Its time is the one `apply_receipt` compares, `created_at` (the
    platform's own is not known before the echo): the same status whichever webhook is applied first.

    Read under the conversation's row lock (Postgres; SQLite runs one transaction at a time), before the message
    is written, as `apply_receipt` takes it before it moves messages: a receipt committing meanwhile is waited for,
    or waits and then finds the reply confirmed."""
    query = Conversation.select_for_update().filter(id=msg.conversation_id).only("id", "delivered_until", "read_until")
    conv = await query.using_db(conn).first()
    return "sent" if conv is None else status_by_watermarks(conv, msg.created_at)


async def _keep_early_receipt(conn: BaseDBAsyncClient, conv: Conversation, event: Receipt) -> None:
    """Ids that match no reply of the conversation may be a reply whose send answer the outbox has not written
    down yet (Zalo can report "received" first): kept for a while, `take_early_receipt` applies them."""
    ids = list(event.external_ids)[:EARLY_RECEIPT_IDS]
    known = Message.filter(conversation_id=conv.id, direction="out", external_id__in=ids).using_db(conn)
    unknown = set(ids) - set(await known.values_list("external_id", flat=True))
    if not unknown:
        return
    stale = datetime.now(UTC) - EARLY_RECEIPT_TTL
    await EarlyReceipt.filter(received_at__lt=stale).using_db(conn).delete()
    rows = [EarlyReceipt(inbox_id=conv.inbox_id, external_id=i, status=event.status) for i in sorted(unknown)]
    await EarlyReceipt.bulk_create(rows, using_db=conn)


async def take_early_receipt(conn: BaseDBAsyncClient, inbox_id: int, message_id: int, external_id: str | None) -> None:
    """The outbox wrote down a sent reply's platform id: a receipt that came for that id before is applied now,
    only ever moving the status forward, and is used up."""
    if external_id is None:
        return
    fresh = datetime.now(UTC) - EARLY_RECEIPT_TTL
    kept = EarlyReceipt.filter(inbox_id=inbox_id, external_id=external_id).using_db(conn)
    statuses = await kept.filter(received_at__gte=fresh).values_list("status", flat=True)
    if not statuses:
        return  # stale ones go when the next receipt is kept
    await kept.delete()
    best = max(statuses, key=lambda s: _STATUS_RANK[s])
    behind = [s for s, rank in _STATUS_RANK.items() if rank < _STATUS_RANK[best]]
    await Message.filter(id=message_id, delivery_status__in=behind).using_db(conn).update(delivery_status=best)


async def apply_referral(conn: BaseDBAsyncClient, inbox: Inbox, event: Referral, out: Outcome) -> None:
    identity, contact = await identity_and_contact(conn, inbox, event.contact_external_id, event.occurred_at, out)
    if event.referral.get("type") == "unfollow":  # noted in an existing thread; never opens a conversation
        query = Conversation.filter(inbox_id=inbox.id, identity_id=identity.id, thread_key="dm")
        conv = await query.using_db(conn).first()
        if conv is not None:
            await record(conn, conv, "unfollowed", "contact", contact.id, event.occurred_at, None)
        return
    conv = await conversation_for(conn, inbox, identity, contact, event.occurred_at, out)
    await record(conn, conv, "referral", "contact", contact.id, event.occurred_at, None, referral=event.referral)
    out.touch(conv, contact)


async def apply_thread_control(conn: BaseDBAsyncClient, inbox: Inbox, event: ThreadControl, out: Outcome) -> None:
    """Noted in the customer's thread, so agents see why the platform may refuse their replies while another app
    holds it. Like a receipt, it never makes a customer or opens a conversation: it is the apps', not theirs."""
    conv = await _existing_chat(conn, inbox, event.contact_external_id)
    if conv is None:
        return
    await record(
        conn, conv, "thread_control", "system", None, event.occurred_at, None, action=event.action,
        new_owner_app_id=event.new_owner_app_id, previous_owner_app_id=event.previous_owner_app_id,
        metadata=event.metadata,
    )  # fmt: skip


LAST_SEEN_RESOLUTION = timedelta(minutes=1)
# While webhooks wait to commit, a batch of the processor ends after `SLICE_SECONDS`, or as soon as `CROWD`
# webhooks wait: ack latency against the events a batch applies (its pipeline's fixed costs spread over them).
# With 50 agents at 200 msg/s, 5 ms batches once fell behind by seconds; since the pipeline's costs came down
# (uvloop, bounded projection steps, acks before the pipeline) 10 ms batches keep agents at p50 / p99 21 / 44 ms
# (20 ms: 22 / 50) and the ack p99 at 1,000 webhooks/s at 23–25 ms (20 ms: 27–32) (bench/README.md).
# While a crowd keeps coming (a burst beyond what the process acknowledges), the log steps aside for up to
# `MAX_STEP_ASIDE` and then takes a turn of at least `OWED_EVENTS` events: a turn of one event cost its batch's
# fixed costs (transaction, NLP hand-off, publishing) for one message, a quarter of the process's CPU during a burst.
SLICE_SECONDS = 0.01
CROWD = 8
MAX_STEP_ASIDE = 0.25  # seconds, at most, that the log waits for the webhooks (a stuck commit must not stall it)
LULL_SECONDS = 0.005  # fewer than CROWD webhooks in this long (< 1,600/s) is a lull: the log's turn
LOAD_STEP = 8  # events whose conversations are read together while acks wait
OWED_EVENTS = LOAD_STEP


@dataclass(slots=True)
class Known:
    """Ids learnt in committed batches, so the common case (a known customer writes again) skips lookups."""

    identities: dict[tuple[int, str], tuple[int, int]] = field(default_factory=dict)  # → (identity, contact)
    # (inbox, identity, thread key) → conversation
    conversations: dict[tuple[int, int, str], int] = field(default_factory=dict)
    limit: int = 100_000

    def learn(self, other: Known) -> None:
        if len(self.identities) > self.limit:  # crude bound: forget everything rather than grow forever
            self.identities.clear()
            self.conversations.clear()
        self.identities.update(other.identities)
        self.conversations.update(other.conversations)


async def load_conversations(conn: BaseDBAsyncClient, conv_ids: Collection[int]) -> dict[int, Conversation]:
    """Conversations with their contacts in one raw query, built as the ORM builds what it reads (`_init_from_db`):
    the ORM's query building and model constructor dominated the hot path."""
    if not conv_ids:
        return {}
    sql = Sql(conn.capabilities.dialect)
    selected = f"{model_select(Conversation, 'c')}, {model_select(Contact, 'ct')}"
    rows = await conn.execute_query_dict(
        f"SELECT {selected} FROM conversations c JOIN contacts ct ON ct.id = c.contact_id "
        f"WHERE c.id IN ({sql.marks(conv_ids)})",
        sql.params,
    )
    found = {}
    for row in rows:
        conv = model_from_row(Conversation, row, "c_")
        conv.contact = model_from_row(Contact, row, "ct_")
        found[conv.id] = conv
    return found


async def _load_conversation(conn: BaseDBAsyncClient, conv_id: int) -> Conversation | None:
    return (await load_conversations(conn, [conv_id])).get(conv_id)


async def apply_inbound(
    conn: BaseDBAsyncClient,
    inbox: Inbox,
    event: InboundMessage,
    out: Outcome,
    known: Known,
    learnt: Known,
    deferred: Deferred,
) -> None:
    """A customer's message: the hot path of ingest. For a known customer, two statements of its own (read the
    conversation unless the batch already has it, insert the message); the rest waits in `deferred`.

    `known` holds ids from committed batches; ids first seen here go to `learnt`, for the caller to keep only once
    its transaction has committed.
    """
    at = event.occurred_at
    thread = event.thread_key or "dm"
    key = (inbox.id, event.contact_external_id)
    ids = known.identities.get(key) or learnt.identities.get(key)
    cached = ids is not None
    if ids is None:
        identity, contact = await identity_and_contact(
            conn, inbox, event.contact_external_id, at, out, name=event.contact_name
        )
        ids = learnt.identities[key] = (identity.id, contact.id)
    conv_key = (inbox.id, ids[0], thread)
    conv_id = known.conversations.get(conv_key) or learnt.conversations.get(conv_key)
    conv = deferred.conversations.get(conv_id) if conv_id is not None else None
    if conv is None and conv_id is not None:
        conv = await _load_conversation(conn, conv_id)
    if conv is None:
        identity = await ContactIdentity.get(id=ids[0]).using_db(conn)
        # The identity's contact, not the cached id: a merge may have moved the identity to another profile.
        contact = await Contact.get(id=identity.contact_id).using_db(conn)
    else:
        contact = conv.contact
    if contact.erased_at is not None and cached:
        # Erased since these ids were cached: erasure took the platform id off the identity, so the customer who
        # writes again starts a new, empty profile (the erased one must not fill up again). Looked up afresh.
        known.identities.pop(key, None)
        learnt.identities.pop(key, None)
        return await apply_inbound(conn, inbox, event, out, known, learnt, deferred)
    if conv is None:
        context = _thread_context(event) if thread != "dm" else None
        conv = await conversation_for(conn, inbox, identity, contact, at, out, thread, context)
        conv.contact = contact
        learnt.conversations[conv_key] = conv.id
    deferred.conversations[conv.id] = conv
    if contact.do_not_store:  # the customer refused storage of personal data: keep the fact, not the content
        event = withheld(event)
    attachments = _attachments(event)
    values = {
        "conversation_id": conv.id,
        "inbox_id": inbox.id,
        "direction": "in",
        "sender_type": "contact",
        "origin": "platform",
        "text": event.text,
        "attachments": json_param(attachments),
        "private": False,
        "created_at": at,
        "recorded_at": now(),
        "external_id": event.external_id,
        "extra": json_param(_extra(event)),
        "entities": "[]",
        "search_text": fold(event.text),
        "sentiment": None,  # filled in at the flush when the analysis is in (`Deferred._take_analyses`)
        "sentiment_score": None,
        "intent": None,
        "intent_confidence": None,
    }
    if deferred.hold_messages:
        msg_id = None  # given at the flush, with the batch's other messages (`Deferred._message_inserts`)
    else:
        sql = Sql(conn.capabilities.dialect)
        inserted = await conn.execute_query_dict(
            sql.insert("messages", values, on_conflict="(inbox_id, external_id) DO NOTHING", returning="id"),
            sql.params,
        )
        if not inserted:
            return  # the same platform message under another log key: already stored
        msg_id = inserted[0]["id"]
    row = dict.fromkeys(model_columns(Message))  # every other column is NULL for a new customer message
    row.update(values, id=msg_id, attachments=attachments, extra=_extra(event), entities=[])
    msg = Message._init_from_db(**row)
    if msg_id is None:
        deferred.messages.append((msg, [values[column] for column in _MESSAGE_COLUMNS]))
    if conv.status in ("resolved", "snoozed"):
        previous = conv.status
        conv.status, conv.snoozed_until = "open", None
        deferred.record(conv, "reopened", "contact", contact.id, at, msg, previous=previous)
    deferred.record(conv, "message_in", "contact", contact.id, at, msg)
    advance(conv, at, preview(event.text, attachments), incoming=True)
    deferred.changed.add(conv.id)
    if contact.last_seen_at is None or at - contact.last_seen_at > LAST_SEEN_RESOLUTION:
        contact.last_seen_at = deferred.seen[contact.id] = at
    deferred.search.append((msg, msg.search_text))
    if event.shared_phone:
        await deferred.flush(conn)  # the contact is read and written next: everything before it lands first
        await apply_shared_phone(conn, conv, contact, event.shared_phone, at, msg.id, event.channel)
    out.new_messages.append((conv, contact, msg))
    out.touch(conv, contact)


def _thread_context(event: InboundMessage) -> dict:
    """What the conversation shows about its post (the per-comment fields stay on the message)."""
    context = event.thread_context or {}
    return {k: context.get(k) for k in ("post_id", "post_text", "permalink") if context.get(k) is not None}


async def apply_shared_phone(
    conn: BaseDBAsyncClient,
    conv: Conversation,
    contact: Contact,
    raw_phone: str,
    at: datetime,
    message_id: int | None,
    channel: str,
) -> None:
    """A phone the customer chose to share: the contact's phone when it has none, recorded as given by them."""
    phone = normalize_phone(raw_phone)
    if phone is None:
        return
    current = await Contact.get(id=contact.id).using_db(conn)
    applied = not current.phone
    if applied:
        current.phone = contact.phone = phone
        await Contact.filter(id=contact.id).using_db(conn).update(phone=phone)
        await update_contact_search(conn, current)
    await record(
        conn, conv, "phone_shared", "contact", contact.id, at, message_id,
        phone=phone, given_by_customer=True, channel=channel, applied=applied,
    )  # fmt: skip


async def _message_by_external_id(
    conn: BaseDBAsyncClient, inbox: Inbox, external_id: str
) -> tuple[Conversation, Message] | None:
    msg = await Message.filter(inbox_id=inbox.id, external_id=external_id).using_db(conn).first()
    if msg is None:
        return None
    return await Conversation.get(id=msg.conversation_id).using_db(conn), msg


async def apply_edit(conn: BaseDBAsyncClient, inbox: Inbox, event: MessageEdit, out: Outcome) -> None:
    """New text for a stored message; the text it replaces goes to its edit history (oldest first)."""
    found = await _message_by_external_id(conn, inbox, event.external_id)
    if found is None:
        return  # an edit of a message we never had (sent before the inbox was connected): nothing to change
    conv, msg = found
    if msg.edited_at is not None and event.occurred_at <= msg.edited_at:
        return  # an older edit arriving late: the newer text stays
    if msg.text == event.text:
        return
    history = list(msg.edit_history or [])
    history.append({"text": msg.text, "until": event.occurred_at.isoformat()})
    msg.text, msg.edit_history, msg.edited_at = event.text, history, event.occurred_at
    msg.search_text = fold(event.text)
    changed = ["text", "edit_history", "edited_at", "search_text"]
    if msg.direction == "in":  # the analysis read the old text: none until the pipeline has read the new one
        msg.sentiment = msg.sentiment_score = msg.intent = msg.intent_confidence = None
        msg.entities = []
        changed += NLP_COLUMNS
    await msg.save(using_db=conn, update_fields=changed)
    if msg.direction == "in" and not (msg.text or "").strip():
        # Nothing left to analyse: the conversation's NLP summary no longer counts what the text said. (The
        # pipeline compares the summary with `conv`, read before, and tells agents.)
        await write_and_summarise(conn, [], [msg])
    await index_messages(conn, [(msg.id, msg.search_text)])
    actor = "contact" if msg.direction == "in" else "agent"
    await record(conn, conv, "message_edited", actor, None, event.occurred_at, msg.id)
    out.updated_messages.append((conv, msg))
    if msg.direction == "in":
        out.edited_messages.append((conv, msg))


async def apply_removal(conn: BaseDBAsyncClient, inbox: Inbox, event: MessageRemoval, out: Outcome) -> None:
    """Marked removed, never deleted: what the customer wrote stays for the agent's record."""
    found = await _message_by_external_id(conn, inbox, event.external_id)
    if found is None:
        return
    conv, msg = found
    if msg.removed_at is not None:
        return
    msg.removed_at = event.occurred_at
    await msg.save(using_db=conn, update_fields=["removed_at"])
    actor = "contact" if msg.direction == "in" else "agent"
    await record(conn, conv, "message_removed", actor, None, event.occurred_at, msg.id)
    out.updated_messages.append((conv, msg))


async def apply_reaction(conn: BaseDBAsyncClient, inbox: Inbox, event: MessageReaction, out: Outcome) -> None:
    """The customer's reaction shows on the message (`extra.reaction`: `{emoji, at}`); taking it back leaves
    `emoji` null with its time, so a reaction older than the last change (a late redelivery) changes nothing."""
    found = await _message_by_external_id(conn, inbox, event.external_id)
    if found is None:
        return  # a reaction to a message we never had (sent before the inbox was connected)
    conv, msg = found
    shown = (msg.extra or {}).get("reaction")
    if isinstance(shown, dict) and str(shown.get("at") or "") > event.occurred_at.isoformat():
        return
    msg.extra = {**(msg.extra or {}), "reaction": {"emoji": event.emoji, "at": event.occurred_at.isoformat()}}
    await msg.save(using_db=conn, update_fields=["extra"])
    out.updated_messages.append((conv, msg))


async def apply_event(
    conn: BaseDBAsyncClient, inbox: Inbox, row: LogRow, out: Outcome, known: Known, learnt: Known, deferred: Deferred
) -> None:
    event = from_record(row.record)
    if isinstance(event, InboundMessage) and event.direction == "in":
        await apply_inbound(conn, inbox, event, out, known, learnt, deferred)
        return
    await deferred.flush(conn)  # the other kinds read and write conversations through the ORM
    if isinstance(event, InboundMessage):
        await apply_echo(conn, inbox, event, out)
    elif isinstance(event, Receipt):
        await apply_receipt(conn, inbox, event, out)
    elif isinstance(event, Referral):
        await apply_referral(conn, inbox, event, out)
    elif isinstance(event, MessageEdit):
        await apply_edit(conn, inbox, event, out)
    elif isinstance(event, MessageRemoval):
        await apply_removal(conn, inbox, event, out)
    elif isinstance(event, MessageReaction):
        await apply_reaction(conn, inbox, event, out)
    elif isinstance(event, ThreadControl):
        await apply_thread_control(conn, inbox, event, out)


async def update_contact_search(conn: BaseDBAsyncClient, contact: Contact) -> None:
    """The contact's search text from the fields of `contact` (read in this transaction); the stored text is what
    `store_contact_search` compares with, not this copy's."""
    contact.search_text = contact_search_text(contact)
    await store_contact_search(conn, contact.id, contact.search_text)


AfterCommit = Callable[[Outcome], Awaitable[None]]
PROCESSING_LOCK = 0x686F7074  # "hopt": the advisory lock key of the inbound log


async def claim_rows(conn: BaseDBAsyncClient, rows: list[LogRow]) -> list[LogRow]:
    """Several server processes share the inbound log: on Postgres one applies it at a time (a transaction-scoped
    advisory lock, released by the commit), and only rows still unprocessed once it holds the lock, so no event is
    applied twice and events keep their order. One process on SQLite has nothing to share."""
    if conn.capabilities.dialect != "postgres":
        return rows
    await conn.execute_query("SELECT pg_advisory_xact_lock($1)", [PROCESSING_LOCK])
    ids = [row.id for row in rows]
    still = set(await InboundEvent.filter(id__in=ids, processed=False).using_db(conn).values_list("id", flat=True))
    return [row for row in rows if row.id in still]


READ_AHEAD = 500


@dataclass(slots=True)
class LogRow:
    """What applying needs of one `inbound_events` row."""

    id: int
    inbox_id: int
    record: dict


class InboundProcessor:
    """Applies pending log rows in order, in batches; woken by the writer's commit, and polls as a backstop."""

    def __init__(
        self,
        after_commit: AfterCommit,
        wake: asyncio.Event,
        batch_size: int = 50,
        acks_waiting: Callable[[], int] = lambda: 0,
        acks_caught_up: Callable[[], Awaitable[None]] = lambda: asyncio.sleep(0),
        acks_arrived: Callable[[], int] = lambda: 0,
        leader: LogLeader | None = None,
        before_apply: Callable[[list[dict]], None] = lambda records: None,
        finished_analyses: Callable[[list[str]], dict[str, dict]] | None = None,
    ) -> None:
        self._before_apply = before_apply  # told each batch's records first (the pipeline starts NLP early)
        self._finished_analyses = finished_analyses  # the NLP results already in, stored with their messages
        self._leader = leader  # several processes on Postgres: only the leader applies the log (in its order)
        self._acks_waiting = acks_waiting
        self._acks_caught_up = acks_caught_up
        self._acks_arrived = acks_arrived  # webhooks handed to the writer so far: how fast they are coming
        self._after_commit = after_commit
        self._wake = wake
        self._batch_size = batch_size
        self._task: asyncio.Task[None] | None = None
        self._inboxes: dict[int, Inbox] = {}
        self._known = Known()
        self._read_ahead: deque[LogRow] = deque()
        self._owed = 1  # events the next batch applies before it may yield to waiting webhooks
        # Seconds the end of a batch takes per held customer message (their one insert, events, summaries), learnt
        # from each flush: the slice counts it, since webhooks wait for the connection until the batch commits.
        self._flush_cost = 0.0
        self.processed = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="inbound-processor")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._leader is not None:
            await self._leader.close()

    async def _run(self) -> None:
        while True:
            try:
                if self._leader is None or await self._leader.lead():
                    await self._drain()
                else:
                    await self._leader.nudge()  # another process applies the log: wake it
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be briefly unavailable: keep the loop alive, retry soon
                log.exception("inbound processing failed; retrying")
                await asyncio.sleep(1.0)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)
            except TimeoutError:
                pass
            self._wake.clear()

    async def _drain(self) -> None:
        """Apply the log until it is empty. While webhooks wait for their commit, acks come first: a batch stops
        after `SLICE_SECONDS` or once `CROWD` webhooks wait (having applied at least one event), and the next one
        waits until the webhooks waiting now have had their commit. Commits and batches take turns, so an ack waits
        for at most one slice, and the log keeps draining at whatever speed the machine has left (a step aside of
        fixed length throttled the log even with the CPU idle). While a crowd keeps coming, the log waits longer (at
        most `MAX_STEP_ASIDE`), then takes a turn of at least `OWED_EVENTS` events."""
        while True:
            arrived = self._acks_arrived()
            if not await self.process_pending():
                return
            self._owed = 1
            # A crowd is webhooks waiting now, or as many arriving during the turn: in a steady stream each one is
            # committed within a few ms, so at the moment the turn ends none may be waiting, yet more are on the way.
            crowd = self._acks_waiting() or self._acks_arrived() - arrived >= CROWD
            if crowd and not await self._step_aside(arrived):
                self._owed = OWED_EVENTS  # it waited out a whole step aside: make this turn worth its costs

    async def _step_aside(self, since: int) -> bool:
        """Wait for the webhooks waiting now to be committed, and for as long as a crowd keeps coming, at most
        `MAX_STEP_ASIDE`; True if they let up (the log's turn), False if the time ran out (its turn anyway). A crowd
        is `CROWD` webhooks waiting, or as many arriving in a round of at least `LULL_SECONDS` (the first round
        counts from `since`, the writer's arrivals when the turn began): a steady stream is committed as fast as it
        comes, so at any one moment none of it may be waiting."""
        deadline = time.monotonic() + MAX_STEP_ASIDE
        while (remaining := deadline - time.monotonic()) > 0:
            started = time.monotonic()
            if not await self._acks_committed(remaining):
                return False
            if (rest := LULL_SECONDS - (time.monotonic() - started)) > 0:
                await asyncio.sleep(rest)
            arrived = self._acks_arrived()
            if self._acks_waiting() < CROWD and arrived - since < CROWD:
                return True
            since = arrived
        return False

    async def _acks_committed(self, within: float) -> bool:
        """Wait until the webhooks waiting now have had their commit; False if `within` seconds ran out first
        (bounded: a stuck commit must not stall the log)."""
        try:
            await asyncio.wait_for(self._acks_caught_up(), within)
        except TimeoutError:
            return False
        return True

    async def _inbox(self, inbox_id: int) -> Inbox:
        inbox = self._inboxes.get(inbox_id)
        if inbox is None:
            inbox = self._inboxes[inbox_id] = await Inbox.get(id=inbox_id)
        return inbox

    async def _next_rows(self) -> list[LogRow]:
        """The oldest unprocessed rows, read ahead in one raw query and handed out a batch at a time: under load a
        batch may end after one event (acks first), and re-reading the whole window each time cost more than the
        events themselves."""
        if not self._read_ahead:
            conn = db.connection()
            sql = Sql(conn.capabilities.dialect)
            rows = await conn.execute_query_dict(
                "SELECT id, inbox_id, record FROM inbound_events WHERE processed = "
                f"{sql.p(False)} ORDER BY id LIMIT {READ_AHEAD}",
                sql.params,
            )
            self._read_ahead.extend(LogRow(r["id"], r["inbox_id"], as_json(r["record"])) for r in rows)
        return [self._read_ahead.popleft() for _ in range(min(self._batch_size, len(self._read_ahead)))]

    async def process_pending(self) -> int:
        rows = await self._next_rows()
        if not rows:
            return 0
        self._before_apply([row.record for row in rows])
        try:
            out, count = await self._apply_batch(rows)
        except Exception:
            log.info("batch of %s inbound events failed; applying them one by one", len(rows), exc_info=True)
            self._known = Known()  # a cached id may be what went stale (merged or erased customer)
            out, count = await self._apply_isolated(rows), len(rows)
        self.processed += count
        if self._acks_waiting():
            # The pipeline's statements (NLP results, routing) would queue for the connection ahead of the webhooks
            # that arrived during the batch: a second wait for them. Their commit first.
            await self._acks_committed(MAX_STEP_ASIDE)
        await self._after_commit(out)
        return count

    async def _apply_batch(self, rows: list[InboundEvent]) -> tuple[Outcome, int]:
        """The whole batch in one transaction without savepoints: the fast, common case."""
        out, learnt = Outcome(), Known()
        done: list[int] = []
        deferred = Deferred(finished_analyses=self._finished_analyses)
        async with in_transaction() as conn:
            # The slice starts once the connection is ours: waiting for a commit to finish is not time spent here.
            started = time.monotonic()
            rows = await claim_rows(conn, rows)
            loaded = 0  # rows whose conversations have been read
            for index, row in enumerate(rows):
                if len(done) >= self._owed and self._slice_over(started, len(deferred.messages)):
                    break  # webhooks are waiting to commit on the same database: let them in
                if index == loaded:
                    # Conversations are read a step at a time while acks wait: a slice applies only a few events,
                    # and reading the whole batch's conversations first cost more than applying them.
                    step = rows[index : index + (LOAD_STEP if self._acks_waiting() else len(rows))]
                    wanted = self._known_conversations(step) - deferred.conversations.keys()
                    deferred.conversations.update(await load_conversations(conn, wanted))
                    loaded = index + len(step)
                await apply_event(conn, await self._inbox(row.inbox_id), row, out, self._known, learnt, deferred)
                done.append(row.id)
            held, flush_started = len(deferred.messages), time.monotonic()
            marked: list[Statement] = []  # the log rows marked processed, with the batch's last writes
            if done:
                sql = Sql(conn.capabilities.dialect)
                update = f"UPDATE inbound_events SET processed = {sql.p(True)} WHERE id IN ({sql.marks(done)})"
                marked.append(Statement(update, sql.params))
            await deferred.flush(conn, also=marked, commit=True)  # the batch's COMMIT in the same hand-off
            if held:
                per_message = (time.monotonic() - flush_started) / held
                self._flush_cost = per_message if not self._flush_cost else 0.8 * self._flush_cost + 0.2 * per_message
        self._known.learn(learnt)  # only ids that are committed
        applied = set(done)
        self._read_ahead.extendleft(reversed([row for row in rows if row.id not in applied]))  # next time, in order
        return out, len(done)

    def _slice_over(self, started: float, held: int) -> bool:
        waiting = self._acks_waiting()
        return bool(waiting) and (
            waiting >= CROWD or time.monotonic() - started + self._flush_cost * held > SLICE_SECONDS
        )

    def _known_conversations(self, rows: list[LogRow]) -> set[int]:
        """The conversations a batch's customer messages go to, where committed batches taught us their ids: read
        in one query instead of one per message."""
        ids = set()
        for row in rows:
            record = row.record
            if record.get("kind") != "message" or record.get("direction") != "in":
                continue
            contact = self._known.identities.get((row.inbox_id, record.get("contact_external_id")))
            if contact is not None:
                conv_id = self._known.conversations.get((row.inbox_id, contact[0], record.get("thread_key") or "dm"))
                if conv_id is not None:
                    ids.add(conv_id)
        return ids

    async def _apply_isolated(self, rows: list[InboundEvent]) -> Outcome:
        """Each event in its own savepoint: a bad one is marked with its error and the rest still land."""
        out = Outcome()
        failures: dict[int, str] = {}
        async with in_transaction() as conn:
            rows = await claim_rows(conn, rows)
            for row in rows:
                inbox = await self._inbox(row.inbox_id)
                event_out = Outcome()
                try:
                    async with in_transaction() as savepoint:
                        # No cached ids here (one may be what failed); ids learnt are dropped with the savepoint.
                        deferred = Deferred(hold_messages=False)
                        await apply_event(savepoint, inbox, row, event_out, Known(), Known(), deferred)
                        await deferred.flush(savepoint)
                except Exception as exc:  # one malformed record must not block the log
                    log.exception("could not apply inbound event %s", row.id)
                    failures[row.id] = f"{type(exc).__name__}: {exc}"
                else:
                    out.merge(event_out)
            ok_ids = [r.id for r in rows if r.id not in failures]
            if ok_ids:
                await InboundEvent.filter(id__in=ok_ids).using_db(conn).update(processed=True)
            for row_id, error in failures.items():
                await InboundEvent.filter(id=row_id).using_db(conn).update(processed=True, error=error)
        return out
