"""CSAT: after a resolution, a short 1–5 survey goes to the customer in the channel (through the outbox), and the
customer's next message is read as the answer: digits ("5", "4/5", "5 sao"), emoji (⭐⭐⭐⭐, 😡 … 😍) or words, in
Vietnamese with or without diacritics ("rất hài lòng", "tam duoc", "tệ") and in English.

Per inbox, `Inbox.settings["csat"] = {"enabled": true, "message": "…"}` (off by default: a message to every customer
is the shop's choice). A survey is sent only when a person took part in the conversation. The first customer message
after the survey decides: a rating is stored (a `csat_answered` event, for the agent who held the conversation at
resolution) and the conversation, which that message reopened, is resolved again (`status_changed`, reason
`csat_answer`: metrics see no new cycle); anything else expires the survey and the conversation stays open.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from agents.models import CsatSurvey
from contacts.models import Contact
from inbox.bus import Event, EventBus
from inbox.models import Conversation, ConversationEvent, Inbox, Message
from inbox.processing import Outcome, record
from inbox.search import fold
from inbox.serialize import conversation_json

log = logging.getLogger(__name__)

DEFAULT_MESSAGE = (
    "Dạ shop cảm ơn mình đã nhắn tin ạ. Mình chấm giúp shop mức độ hài lòng từ 1 (rất không hài lòng) "
    "đến 5 (rất hài lòng) nhé ⭐"
)
ANSWER_WINDOW = timedelta(days=7)
MAX_ANSWER_LENGTH = 40  # a longer message is a new question, not a rating

_EMOJI = {
    "😡": 1, "🤬": 1, "😠": 1, "😤": 1, "👎": 1,
    "😞": 2, "🙁": 2, "☹": 2, "😕": 2, "😢": 2, "😭": 2,
    "😐": 3, "😑": 3, "😶": 3,
    "🙂": 4, "😊": 4, "👌": 4, "👍": 4,
    "😍": 5, "🥰": 5, "🤩": 5, "😄": 5, "😁": 5, "❤": 5, "💯": 5, "👏": 5,
}  # fmt: skip
_STARS = re.compile(r"[⭐★🌟]")
_OUT_OF_FIVE = re.compile(r"(?<!\d)([1-5])\s*/\s*5(?!\d)")
_DIGIT = re.compile(r"(?<!\d)([1-5])(?!\d)")
_WORDS = [  # folded (no diacritics), most specific first
    (1, ("rat te", "qua te", "rat kem", "rat khong hai long", "rat that vong", "very bad", "terrible", "awful")),
    (2, ("khong hai long", "chua hai long", "te", "kem", "that vong", "bad", "poor")),
    (3, ("binh thuong", "tam duoc", "tam on", "tam", "trung binh", "average", "okay", "so so")),
    (5, ("rat hai long", "rat tot", "tuyet voi", "xuat sac", "qua tot", "hoan hao", "excellent", "perfect",
         "very good", "great")),
    (4, ("hai long", "tot", "on", "ok", "good", "duoc")),
    (1, ("mot",)), (2, ("hai",)), (3, ("ba",)), (4, ("bon",)), (5, ("nam",)),
]  # fmt: skip


_FILLER = frozenset(
    "a ah shop oi nha nhe nhen nhe a em minh ban cam on lam qua thi rat cua dich vu phuc vu tu van sao diem ne"
    " la voi hen".split()
)


def parse_rating(text: str | None) -> int | None:
    """A rating 1–5 from a short answer, or None when the message is not one."""
    if not text or len(text.strip()) > MAX_ANSWER_LENGTH:
        return None
    raw = text.strip()
    stars = len(_STARS.findall(raw))
    if 1 <= stars <= 5 and not re.search(r"\d", raw):
        return stars
    out_of_five = _OUT_OF_FIVE.search(raw)
    if out_of_five:
        return int(out_of_five.group(1))
    digits = _DIGIT.findall(fold(raw))
    if len(set(digits)) == 1:
        return int(digits[0])
    if re.search(r"\d", raw):
        return None  # other numbers (a phone, an order code): not a rating
    for emoji, value in _EMOJI.items():
        if emoji in raw:
            return value
    words = f" {fold(raw)} "
    for value, phrases in _WORDS:
        for phrase in phrases:
            if f" {phrase} " in words:
                rest = set(words.replace(f" {phrase} ", " ").split()) - _FILLER
                return None if rest else value  # "được" in a new question is no rating
    return None


def csat_settings(inbox: Inbox) -> dict[str, Any]:
    raw = (inbox.settings or {}).get("csat") or {}
    return {"enabled": bool(raw.get("enabled", False)), "message": raw.get("message") or DEFAULT_MESSAGE}


class Csat:
    def __init__(self, bus: EventBus, outbox: Any, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.bus = bus
        self.outbox = outbox
        self.clock = clock

    async def on_resolved_many(self, resolved: list[tuple[int, int | None]]) -> None:
        """`on_resolved` for each (conversation id, inbox id), looking only where the inbox wants surveys."""
        if not resolved:
            return
        inbox_ids = {inbox_id for _, inbox_id in resolved if inbox_id is not None}
        wanting = {i.id for i in await Inbox.filter(id__in=inbox_ids) if csat_settings(i)["enabled"]}
        for conv_id, inbox_id in resolved:
            if inbox_id is None or inbox_id in wanting:
                await self.on_resolved(conv_id)

    async def on_resolved(self, conv_id: int) -> CsatSurvey | None:
        """Send the survey for the conversation's latest resolution, once, if the inbox wants it."""
        conv = await Conversation.get_or_none(id=conv_id)
        if conv is None or conv.status != "resolved" or (conv.thread_key or "dm") != "dm":
            return None  # a comment thread is public: the survey would be a reply under the post
        inbox = await Inbox.get(id=conv.inbox_id)
        settings = csat_settings(inbox)
        if not settings["enabled"]:
            return None
        resolved = (
            await ConversationEvent.filter(conversation_id=conv.id, kind="status_changed").order_by("-id").first()
        )
        if resolved is None or (resolved.data or {}).get("status") != "resolved":
            return None
        if (resolved.data or {}).get("reason") == "csat_answer" or (resolved.data or {}).get("bulk_job"):
            return None  # a rating, or a clean-up of many conversations at once: no survey
        human = await Message.filter(conversation_id=conv.id, direction="out", sender_type="agent").exists()
        if not human and conv.assignee_id is None:
            return None  # nobody but the bot took part: nothing to rate for a person
        from inbox.actions import send_outgoing  # actions imports the pipeline's neighbours; import late

        # The rating is for the agent who held the conversation, else the one who resolved it.
        agent_id = conv.assignee_id or (resolved.actor_id if resolved.actor_type == "agent" else None)
        async with in_transaction() as conn:
            # Every server process hears of the resolution (the bus): the conversation's row lock (Postgres; SQLite
            # runs one transaction at a time) lets one of them record the survey, the others then find it.
            await Conversation.select_for_update().using_db(conn).get(id=conv.id)
            sent = CsatSurvey.filter(conversation_id=conv.id, sent_at__gte=resolved.occurred_at).using_db(conn)
            if await sent.exists():
                return None
            survey = await CsatSurvey.create(
                using_db=conn, conversation_id=conv.id, inbox_id=conv.inbox_id, agent_id=agent_id, sent_at=self.clock()
            )
        msg = await send_outgoing(
            self.bus,
            self.outbox,
            inbox,
            conv,
            settings["message"],
            sender_type="system",
            user_id=None,
            extra={"csat_survey": survey.id},
        )
        survey.message_id = msg.id
        await survey.save(update_fields=["message_id"])
        return survey

    async def absorb(self, out: Outcome) -> set[int]:
        """Read customers' answers to open surveys; returns the conversations that were only rating."""
        inbound = [(conv, msg) for conv, _, msg in out.new_messages if msg.direction == "in"]
        if not inbound:
            return set()
        open_surveys = {
            s.conversation_id: s
            for s in await CsatSurvey.filter(
                conversation_id__in=list({c.id for c, _ in inbound}), state="sent"
            ).order_by("id")
        }
        absorbed: set[int] = set()
        for conv, msg in inbound:
            survey = open_surveys.get(conv.id)
            if survey is None or survey.state != "sent" or msg.created_at < survey.sent_at:
                continue
            rating = parse_rating(msg.text)
            if rating is None or msg.created_at - survey.sent_at > ANSWER_WINDOW:
                survey.state = "expired"
                await survey.save(update_fields=["state"])
                continue
            await self._answer(conv, msg, survey, rating)
            absorbed.add(conv.id)
        return absorbed

    async def _answer(self, conv: Conversation, msg: Message, survey: CsatSurvey, rating: int) -> None:
        at = msg.created_at
        async with in_transaction() as conn:
            survey.state, survey.rating, survey.answered_at = "answered", rating, at
            await survey.save(using_db=conn, update_fields=["state", "rating", "answered_at"])
            await record(
                conn,
                conv,
                "csat_answered",
                "contact",
                conv.contact_id,
                at,
                msg.id,
                rating=rating,
                agent_id=survey.agent_id,
                survey_id=survey.id,
            )
            reopened = await Conversation.filter(id=conv.id, status="open").using_db(conn).update(status="resolved")
            if reopened:
                await record(
                    conn,
                    conv,
                    "status_changed",
                    "system",
                    None,
                    at,
                    previous="open",
                    status="resolved",
                    reason="csat_answer",
                )
                conv.status = "resolved"
        log.info("CSAT %s for conversation %s", rating, conv.id)


async def publish_conversation(bus: EventBus, conv: Conversation) -> None:
    contact = await Contact.get(id=conv.contact_id)
    await bus.publish(
        Event("conversation.updated", conversation_json(conv, contact), inbox_id=conv.inbox_id, team_id=conv.team_id)
    )
