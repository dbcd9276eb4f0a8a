"""Sending replies: the platform's window rules, then the outbox with retries and backoff.

A reply is stored together with its outbox row in one transaction, so a platform that is down loses nothing.
The worker sends due rows, records the platform's message id, and on a retryable failure tries again with
exponential backoff and jitter until `max_attempts`, then marks the message failed with a readable reason.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from channels.base import SendError, SendResult
from contacts.models import Contact, ContactIdentity
from inbox.bus import Event, EventBus
from inbox.metrics import OUTBOX_SENDS
from inbox.models import Conversation, Inbox, Message, OutboxItem
from inbox.processing import confirmed_status, take_early_receipt
from inbox.serialize import conversation_json, message_json
from inbox.sql import as_datetime

log = logging.getLogger(__name__)

MESSENGER_STANDARD_WINDOW = timedelta(hours=24)
MESSENGER_HUMAN_AGENT_WINDOW = timedelta(days=7)
PENDING_LOOKED_AT = 2_000  # pending replies read per pass to find each conversation's oldest
RECORD_ATTEMPTS = 5  # writing down a send that went through: tried again this often (0.2 s, 0.4 s, … apart)
CLAIM_LEASE = timedelta(seconds=60)  # longer than any platform call (the HTTP client times out at 20 s)
_CONFIRMED = ("sent", "delivered", "read")  # the platform has the message


class WindowClosed(Exception):
    """The platform will not accept this message now; `reason` is shown to the agent on the message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SendPlan:
    messaging_type: str = "RESPONSE"
    tag: str | None = None


def _unconfirmed(message_id: int) -> Q:
    return Q(id=message_id) & (Q(delivery_status__isnull=True) | Q(delivery_status__in=["pending", "failed"]))


def messenger_plan(last_incoming_at: datetime | None, at: datetime, *, human: bool) -> SendPlan:
    """Messenger: 24 h standard window; up to 7 days with HUMAN_AGENT, for human replies only."""
    if last_incoming_at is None:
        raise WindowClosed("Khách chưa nhắn tin nên chưa thể trả lời (the customer has not written yet)")
    age = at - last_incoming_at
    if age <= MESSENGER_STANDARD_WINDOW:
        return SendPlan("RESPONSE")
    if human and age <= MESSENGER_HUMAN_AGENT_WINDOW:
        return SendPlan("MESSAGE_TAG", "HUMAN_AGENT")
    if human:
        raise WindowClosed(
            "Đã quá 7 ngày kể từ tin nhắn cuối của khách, Messenger không cho gửi "
            "(more than 7 days since the customer's last message)"
        )
    raise WindowClosed(
        "Đã quá 24 giờ kể từ tin nhắn cuối của khách, tin tự động không được gửi "
        "(outside Messenger's 24-hour window for automated messages)"
    )


class ChannelSender(Protocol):
    def plan(self, conv: Conversation, msg: Message, at: datetime) -> SendPlan: ...

    async def send(self, inbox: Inbox, identity: ContactIdentity, msg: Message, plan: SendPlan) -> SendResult: ...


class Outbox:
    def __init__(
        self,
        bus: EventBus,
        senders: dict[str, ChannelSender],
        *,
        base_delay: float = 2.0,
        max_delay: float = 600.0,
        max_attempts: int = 8,
    ) -> None:
        self._bus = bus
        self._senders = senders
        self._base_delay = base_delay
        self._max_delay = max_delay
        self.max_attempts = max_attempts
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._attempted: dict[int, asyncio.Future[None]] = {}

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def plan(self, inbox: Inbox, conv: Conversation, msg: Message, at: datetime) -> SendPlan:
        sender = self._senders.get(inbox.channel)
        if sender is None:
            raise WindowClosed(f"Kênh {inbox.channel} chưa hỗ trợ gửi tin (sending not supported)")
        return sender.plan(conv, msg, at)

    def notify(self) -> None:
        self._wake.set()

    async def wait_first_attempt(self, message_id: int, wait_seconds: float) -> None:
        """Let the reply API answer with the result of the first try when it comes quickly."""
        future = self._attempted.setdefault(message_id, asyncio.get_running_loop().create_future())
        try:
            await asyncio.wait_for(asyncio.shield(future), wait_seconds)
        except TimeoutError:
            pass
        finally:
            self._attempted.pop(message_id, None)

    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        delay = min(self._max_delay, self._base_delay * 2 ** (attempts - 1))
        delay = delay * (0.5 + random.random() / 2)  # jitter: retries from many conversations spread out
        return max(delay, retry_after or 0.0)

    async def _run(self) -> None:
        while True:
            try:
                delay = await self.send_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox pass failed")
                delay = 1.0
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            except TimeoutError:
                pass
            self._wake.clear()

    async def send_due(self) -> float:
        """Send the due items, one per conversation: the oldest pending reply of each. Later replies of the same
        conversation wait behind it (also while it backs off after an error), so the customer reads them in the
        order they were written, and a platform's per-conversation quota counts each one as it goes. Different
        conversations still go out at once. Returns how long until the next one is due (capped)."""
        now = datetime.now(UTC)
        pending = (
            await OutboxItem.filter(state="pending")
            .order_by("id")
            .limit(PENDING_LOOKED_AT)
            .values("id", "next_attempt_at", "message__conversation_id")
        )
        heads: dict[int, dict] = {}
        for row in pending:
            heads.setdefault(row["message__conversation_id"], row)
        due = [row["id"] for row in heads.values() if as_datetime(row["next_attempt_at"]) <= now][:100]
        items = await OutboxItem.filter(id__in=due).order_by("id") if due else []
        await asyncio.gather(*(self._attempt(item) for item in items))
        if items:
            return 0.05  # the next replies of these conversations may be due now
        waiting = [as_datetime(row["next_attempt_at"]) for row in heads.values()]
        if not waiting:
            return 5.0
        return max(0.05, min(5.0, (min(waiting) - datetime.now(UTC)).total_seconds()))

    async def _attempt(self, item: OutboxItem) -> None:
        try:
            if await self._claim(item):
                await self._deliver(item)
        finally:
            future = self._attempted.get(item.message_id)
            if future is not None and not future.done():
                future.set_result(None)

    async def _claim(self, item: OutboxItem) -> bool:
        """Take the item for one attempt. Several server processes share the outbox: the conditional update
        lets exactly one of them win; a process that dies mid-send leaves it due again after the lease."""
        now = datetime.now(UTC)
        lease = now + CLAIM_LEASE
        # `attempts` as read: a process holding a stale copy (another one already tried and rescheduled the item)
        # loses the claim instead of sending again with an old attempt count.
        won = await OutboxItem.filter(
            id=item.id, state="pending", attempts=item.attempts, next_attempt_at__lte=now
        ).update(next_attempt_at=lease)
        item.next_attempt_at = lease
        return bool(won)

    async def _deliver(self, item: OutboxItem) -> None:
        msg = await Message.get(id=item.message_id)
        conv = await Conversation.get(id=msg.conversation_id)
        if msg.delivery_status in _CONFIRMED:
            # The platform's echo already reported it sent (a failed try that did go through): never send twice.
            item.state = "sent"
            await item.save(update_fields=["state"])
            return
        inbox = await Inbox.get(id=conv.inbox_id)
        identity = await ContactIdentity.get(id=conv.identity_id)
        item.attempts += 1
        try:
            plan = self.plan(inbox, conv, msg, datetime.now(UTC))
            result = await self._senders[inbox.channel].send(inbox, identity, msg, plan)
        except WindowClosed as closed:
            await self._fail(item, msg, closed.reason)
        except SendError as error:
            if error.retryable and item.attempts < self.max_attempts:
                item.next_attempt_at = datetime.now(UTC) + timedelta(
                    seconds=self._backoff(item.attempts, error.retry_after)
                )
                item.last_error = error.reason
                await item.save(update_fields=["attempts", "next_attempt_at", "last_error"])
                OUTBOX_SENDS.labels("retry").inc()
                log.info("outbox: message %s attempt %s failed, retrying: %s", msg.id, item.attempts, error.reason)
            elif error.retryable:  # out of tries: say so, rather than a reason that promises another one
                n = item.attempts
                await self._fail(
                    item, msg, f"Không gửi được sau {n} lần thử (gave up after {n} attempts): {error.reason}"
                )
            else:
                await self._fail(item, msg, error.reason)
        except Exception as exc:
            # A sender's bug or an answer nobody foresaw: retried like a transient error, then given up with a
            # reason. Never left pending for good, which would also hold the conversation's later replies.
            log.exception("outbox: message %s attempt %s raised", msg.id, item.attempts)
            reason = f"Lỗi không mong đợi khi gửi (unexpected error while sending): {type(exc).__name__}"
            if item.attempts < self.max_attempts:
                item.next_attempt_at = datetime.now(UTC) + timedelta(seconds=self._backoff(item.attempts, None))
                item.last_error = reason
                await item.save(update_fields=["attempts", "next_attempt_at", "last_error"])
                OUTBOX_SENDS.labels("retry").inc()
            else:
                await self._fail(item, msg, reason)
        else:
            await self._record_sent(item, msg, result.external_id)
            OUTBOX_SENDS.labels("sent").inc()
            await msg.refresh_from_db(fields=["delivery_status", "external_id", "failure_reason"])
            after_sent = getattr(self._senders[inbox.channel], "after_sent", None)
            if after_sent is not None:  # e.g. a private reply to a comment learns the commenter's Messenger id
                try:
                    joined = await after_sent(inbox, identity, conv, msg, result) or conv
                except Exception:
                    log.exception("after-send step for message %s failed", msg.id)
                else:
                    if joined.id != conv.id:
                        await self._publish_move(conv, joined)
                    conv = joined
            await self._publish(conv, msg)

    async def _record_sent(self, item: OutboxItem, msg: Message, external_id: str | None) -> None:
        """The item and its message together: an item marked sent over a message left pending would show the reply
        pending for good, with nothing left to move it. The platform has the message now, so a database hiccup is
        tried again here rather than left to the lease, which would send it a second time."""
        for attempt in range(RECORD_ATTEMPTS):
            try:
                async with in_transaction() as conn:
                    # A delivery or read watermark applied while the request was in flight skipped the reply (still
                    # pending): it is "sent" no more if one covers it. First, as the row lock orders it with receipts.
                    status = await confirmed_status(conn, msg)
                    item.state = "sent"
                    await item.save(using_db=conn, update_fields=["attempts", "state"])
                    # An echo or a receipt may have moved the message on while the request was in flight (`msg`
                    # is what was read before it): only move forward, in the database itself.
                    unconfirmed = Message.filter(_unconfirmed(msg.id)).using_db(conn)
                    await unconfirmed.update(delivery_status=status, failure_reason=None)
                    without_id = Message.filter(id=msg.id, external_id__isnull=True).using_db(conn)
                    await without_id.update(external_id=external_id)
                    # "received"/"seen" may have come before this answer (the platform's id is the echo's too)
                    await take_early_receipt(conn, msg.inbox_id, msg.id, external_id)
                return
            except Exception:
                item.state = "pending"
                if attempt == RECORD_ATTEMPTS - 1:
                    raise
                log.warning("outbox: recording message %s as sent failed, trying again", msg.id, exc_info=True)
                await asyncio.sleep(0.2 * 2**attempt)

    async def _fail(self, item: OutboxItem, msg: Message, reason: str) -> None:
        OUTBOX_SENDS.labels("failed").inc()
        item.state, item.last_error = "failed", reason
        await item.save(update_fields=["attempts", "state", "last_error"])
        # Never over an echo that confirmed the message meanwhile.
        await Message.filter(_unconfirmed(msg.id)).update(delivery_status="failed", failure_reason=reason)
        await msg.refresh_from_db(fields=["delivery_status", "failure_reason"])
        conv = await Conversation.get(id=msg.conversation_id)
        await self._publish(conv, msg)

    async def _publish_move(self, left: Conversation, joined: Conversation) -> None:
        """The message moved to another conversation: agents see it there, and no longer see the one it left if
        that one was deleted (it held nothing else)."""
        contact = await Contact.get(id=joined.contact_id)
        data = conversation_json(joined, contact)
        await self._bus.publish(Event("conversation.updated", data, inbox_id=joined.inbox_id, team_id=joined.team_id))
        if not await Conversation.exists(id=left.id):
            gone = Event("conversation.deleted", {"id": left.id}, inbox_id=left.inbox_id, team_id=left.team_id)
            await self._bus.publish(gone)

    async def _publish(self, conv: Conversation, msg: Message) -> None:
        await self._bus.publish(
            Event("message.updated", message_json(msg), inbox_id=conv.inbox_id, team_id=conv.team_id)
        )
