"""The inbox's bot: welcome and away messages, FAQ answers, and the hand-off to people.

It runs in the post-commit pipeline, after NLP enrichment and before routing, in two steps:
`decide` (which conversations the bot keeps away from routing, what it will say, which it hands to people) and,
after the customer's messages are published, `act` (send, through the same outbox as agents, as `sender_type=bot`).

Rules (issue 8): the bot answers only customers' own messages (never echoes, never other bots: no loops); it hands
the conversation to people when asked ("gặp nhân viên", the `human_handoff` intent), on negative sentiment or a
complaint, after two answers in a row below the confidence threshold, and as soon as a person writes or takes the
conversation; then it stays quiet. Each hand-off is a `handoff` conversation event with its reason, which is where
agent metrics start the customer's wait (agents/metrics.py). Bot messages are never sent with Messenger's
HUMAN_AGENT tag (the sender only uses it for `sender_type == "agent"`), and a per-conversation rate limit applies.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from agents.faq import FaqIndex, FaqItem
from agents.models import BotSession, FaqEntry
from contacts.models import Contact, Order
from inbox.bus import EventBus
from inbox.models import Conversation, Inbox, Message
from inbox.outbox import Outbox
from inbox.processing import Outcome, record
from inbox.search import fold

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.45
CACHE_SECONDS = 10.0  # FAQ and settings edits reach every process within this
AWAY_REPEAT = timedelta(hours=12)
HANDOFF_PHRASES = re.compile(
    r"\b(gap|noi chuyen voi|cho gap|can|muon gap|goi) (nhan vien|nguoi that|tu van vien|admin|chu shop|quan ly)\b"
    r"|\bnhan vien (oi|dau|tu van)\b|\bnguoi that\b|\btu van vien\b",
)
SILENT_HANDOFFS = frozenset({"assigned", "agent_replied"})
DEFAULTS: dict[str, Any] = {
    "faq_enabled": False,
    "threshold": DEFAULT_THRESHOLD,
    "welcome_message": None,
    "away_message": None,
    "handoff_message": "Dạ em chuyển cho nhân viên tư vấn hỗ trợ mình ngay, mình đợi một chút nhé ạ.",
    "fallback_message": "Dạ em chưa rõ ý mình lắm, mình nói rõ hơn giúp em được không ạ?",
    "variables": {},
    "order_status_message": "Dạ đơn {order.code} của {contact.name} hiện {order.status} ạ.",
    "max_replies_per_minute": 6,
    "max_replies_per_hour": 40,
}
BOT_KEYS = frozenset(DEFAULTS)
ORDER_STATUS_WORDS = {
    "draft": "đang chờ shop xác nhận",
    "confirmed": "đã được xác nhận và đang chuẩn bị hàng",
    "paid": "đã thanh toán, đang chuẩn bị giao",
    "shipped": "đang được giao",
    "completed": "đã giao thành công",
    "cancelled": "đã huỷ",
    "returned": "đã được hoàn trả",
}
_VARIABLE = re.compile(r"\{([a-z_]+(?:\.[a-z_]+)*)\}")

# Business hours come from the routing side (agents/business_hours.py); injected so tests control the clock.
HoursCheck = Callable[[Inbox, datetime], bool]


def bot_settings(inbox: Inbox) -> dict[str, Any]:
    return {**DEFAULTS, **(inbox.settings or {}).get("bot", {})}


async def holds(conv: Conversation) -> bool:
    """Whether the bot keeps this unassigned conversation away from routing, as `decide` would at the customer's
    next message: its FAQ answers in the inbox, the thread is private, it has not handed the conversation to people,
    and no person has written in it."""
    if (conv.thread_key or "dm") != "dm":
        return False
    if not await BotSession.filter(conversation_id=conv.id, state="bot").exists():
        return False
    inbox = await Inbox.get_or_none(id=conv.inbox_id).only("id", "settings")
    if inbox is None or not bot_settings(inbox)["faq_enabled"]:
        return False
    return await person_involved(conv) is None


async def person_involved(conv: Conversation) -> str | None:
    """Why people hold this conversation rather than the bot, if they do: one rule for `decide` and `holds`."""
    if conv.assignee_id is not None:
        return "assigned"
    if await Message.filter(conversation_id=conv.id, direction="out", sender_type="agent").exists():
        return "agent_replied"  # a person wrote (in hopthu or on the platform): the bot steps back
    return None


def render(template: str, variables: dict[str, str]) -> str:
    """Fill `{name}` variables; an unknown one is left out rather than shown to the customer as `{…}`."""
    return _VARIABLE.sub(lambda m: variables.get(m.group(1), ""), template).strip()


def _status_words(order: Order) -> str:
    return ORDER_STATUS_WORDS.get(order.status, order.status)


def handoff_requested(text: str | None, intent: str | None) -> bool:
    return intent == "human_handoff" or bool(HANDOFF_PHRASES.search(fold(text)))


@dataclass
class Reply:
    conv: Conversation
    inbox: Inbox
    text: str
    kind: str  # welcome | away | faq | fallback | handoff
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class BotPlan:
    held: set[int] = field(default_factory=set)  # conversations the bot keeps (not routed now)
    replies: list[Reply] = field(default_factory=list)
    sessions: dict[int, BotSession] = field(default_factory=dict)  # by conversation: act reuses what decide loaded


class BotResponder:
    def __init__(
        self, bus: EventBus, outbox: Outbox, hours_open: HoursCheck, clock: Callable[[], datetime] | None = None
    ):
        self.bus = bus
        self.outbox = outbox
        self.hours_open = hours_open
        self.clock = clock or (lambda: datetime.now(UTC))
        self._inboxes: dict[int, tuple[float, Inbox, FaqIndex | None]] = {}

    def forget(self, inbox_id: int | None = None) -> None:
        """Drop cached settings/FAQ (after an edit in this process; other processes refresh within seconds)."""
        if inbox_id is None:
            self._inboxes.clear()
        else:
            self._inboxes.pop(inbox_id, None)

    async def _inbox(self, inbox_id: int) -> tuple[Inbox, FaqIndex | None]:
        cached = self._inboxes.get(inbox_id)
        if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1], cached[2]
        inbox = await Inbox.get(id=inbox_id)
        index = None
        if bot_settings(inbox)["faq_enabled"]:
            entries = await FaqEntry.filter(inbox_id=inbox_id, enabled=True).values("id", "intent", "questions")
            index = FaqIndex(FaqItem(e["id"], e["intent"], tuple(e["questions"])) for e in entries)
        self._inboxes[inbox_id] = (time.monotonic(), inbox, index)
        return inbox, index

    async def decide(self, out: Outcome) -> BotPlan:
        plan = BotPlan()
        # One answer per conversation per batch: to the customer's latest message (a burst gets one reply).
        latest: dict[int, tuple[Conversation, Message]] = {}
        new_ids = {conv.id for conv in out.new_conversations}
        for conv, _, msg in out.new_messages:
            if msg.direction == "in" and msg.sender_type == "contact":
                latest[conv.id] = (conv, msg)
        for conv, msg in latest.values():
            try:
                await self._decide_one(plan, conv, msg, is_new=conv.id in new_ids)
            except Exception:  # the bot is best effort: the conversation still reaches people
                log.exception("bot failed on conversation %s", conv.id)
                plan.held.discard(conv.id)
        return plan

    async def _decide_one(self, plan: BotPlan, conv: Conversation, msg: Message, *, is_new: bool) -> None:
        inbox, index = await self._inbox(conv.inbox_id)
        settings = bot_settings(inbox)
        at = self.clock()
        if not (settings["faq_enabled"] or settings["welcome_message"] or settings["away_message"]):
            return
        session, _ = await BotSession.get_or_create(conversation_id=conv.id)
        plan.sessions[conv.id] = session
        if session.state == "human":
            return
        if (conv.thread_key or "dm") != "dm":
            return  # a comment thread is public: a welcome or an answer (an order's status) would show under the post
        person = await person_involved(conv)
        if person is not None:  # an agent holds it or answered: no welcome, no away message, no FAQ cutting in
            if settings["faq_enabled"]:
                await self._hand_off(conv, session, person, at)  # silently: a person is already there
            return
        variables = await self._variables(conv, inbox, settings)
        if settings["welcome_message"] and is_new and not session.welcomed:
            session.welcomed = True
            plan.replies.append(Reply(conv, inbox, render(settings["welcome_message"], variables), "welcome"))
        if settings["away_message"] and not self.hours_open(inbox, at):
            if session.away_sent_at is None or at - session.away_sent_at >= AWAY_REPEAT:
                session.away_sent_at = at
                plan.replies.append(Reply(conv, inbox, render(settings["away_message"], variables), "away"))
        if not settings["faq_enabled"]:
            await session.save()
            return
        reason = await self._handoff_reason(conv, msg)
        if reason is None:
            match = index.match(msg.text or "", msg.intent, msg.intent_confidence or 0.0) if index else None
            if match is not None and match.confidence >= settings["threshold"]:
                entry = await FaqEntry.get(id=match.entry_id)
                session.low_confidence_streak = 0
                session.answers += 1
                data = {"faq_id": entry.id, "confidence": match.confidence}
                answer = entry.answer
                order = (
                    await self._order_asked_about(conv, msg) if "order_status" in (entry.intent, msg.intent) else None
                )
                if order is not None:  # the customer gave one of their own order codes: answer with its status
                    answer, data["order_id"] = settings["order_status_message"], order.id
                    variables |= {
                        "order.code": order.external_id or str(order.id),
                        "order.status": _status_words(order),
                    }
                plan.replies.append(Reply(conv, inbox, render(answer, variables), "faq", data))
            elif session.low_confidence_streak >= 1:
                reason = "low_confidence"
            else:
                session.low_confidence_streak += 1
                confidence = match.confidence if match else 0.0
                plan.replies.append(
                    Reply(conv, inbox, settings["fallback_message"], "fallback", {"confidence": confidence})
                )
        if reason is not None:
            await self._hand_off(conv, session, reason, at)
            # A person is already there when they replied or took the chat: nothing to announce then.
            if settings["handoff_message"] and reason not in SILENT_HANDOFFS:
                plan.replies.append(Reply(conv, inbox, settings["handoff_message"], "handoff", {"reason": reason}))
            return
        plan.held.add(conv.id)
        await session.save()

    async def _handoff_reason(self, conv: Conversation, msg: Message) -> str | None:
        if handoff_requested(msg.text, msg.intent):
            return "requested"
        if msg.intent == "complaint":
            return "complaint"
        if msg.sentiment == "negative":
            return "negative_sentiment"
        return None

    async def _hand_off(self, conv: Conversation, session: BotSession, reason: str, at: datetime) -> None:
        session.state, session.handoff_reason = "human", reason
        async with in_transaction() as conn:
            await session.save(using_db=conn)
            await record(conn, conv, "handoff", "bot", None, at, reason=reason)

    async def _order_asked_about(self, conv: Conversation, msg: Message) -> Order | None:
        """An order of THIS customer named by a code in the message (never another customer's)."""
        codes = [e.get("normalized") or e.get("value") for e in msg.entities or [] if e.get("type") == "order_code"]
        for code in filter(None, map(str, codes)):
            lookup = Q(external_id=code) | Q(external_id=code.lstrip("#"))
            digits = code.upper().removeprefix("DH").removeprefix("#")
            if digits.isdigit():
                lookup |= Q(id=int(digits))
            order = await Order.filter(lookup, contact_id=conv.contact_id).order_by("-ordered_at").first()
            if order is not None:
                return order
        return None

    async def _variables(self, conv: Conversation, inbox: Inbox, settings: dict[str, Any]) -> dict[str, str]:
        contact = await Contact.get_or_none(id=conv.contact_id)
        name = (contact.name if contact else "") or "mình"
        return {**{k: str(v) for k, v in settings["variables"].items()}, "contact.name": name, "inbox.name": inbox.name}

    async def act(self, plan: BotPlan) -> None:
        from inbox.actions import send_outgoing  # actions imports the pipeline's neighbours; import late

        for reply in plan.replies:
            if not reply.text:
                continue
            if not await self._within_rate(reply, plan.sessions[reply.conv.id]):
                log.info("bot rate limit reached on conversation %s; %s reply dropped", reply.conv.id, reply.kind)
                continue
            try:
                await send_outgoing(
                    self.bus,
                    self.outbox,
                    reply.inbox,
                    reply.conv,
                    reply.text,
                    sender_type="bot",
                    user_id=None,
                    extra={"bot": {"kind": reply.kind, **reply.data}},
                )
            except Exception:  # one failed reply must not stop the pipeline for the other conversations
                log.exception("bot reply to conversation %s failed", reply.conv.id)

    async def _within_rate(self, reply: Reply, session: BotSession) -> bool:
        settings = bot_settings(reply.inbox)
        now = self.clock().timestamp()
        recent = [t for t in session.recent_replies if now - t < 3600]
        if (
            sum(now - t < 60 for t in recent) >= settings["max_replies_per_minute"]
            or len(recent) >= settings["max_replies_per_hour"]
        ):
            return False
        session.recent_replies = [*recent, now]
        await session.save(update_fields=["recent_replies", "updated_at"])
        return True
