"""Page comments, after the commit: hide those that show a phone number or an address, and fill in the post.

Competitors read public comments and call the customers who left their number. A per-inbox setting
(`settings.comment_auto_hide`, on by default) hides such comments as soon as they arrive; a hidden comment stays
visible to its author (and their friends), so the customer notices nothing. The message is marked for the agent
(`extra.comment.auto_hidden`, with what was found). Graph calls run in a worker, never on the ack path.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from channels.base import SendError
from channels.facebook import GraphClient
from inbox.bus import Event, EventBus
from inbox.db import connection
from inbox.models import Conversation, Inbox, Message
from inbox.phones import find_phones
from inbox.serialize import conversation_json, message_json
from inbox.sql import merge_into_json

log = logging.getLogger(__name__)
COMMENTS = web.AppKey("comments", "CommentWorker")
SETTING = "comment_auto_hide"
MAX_ATTEMPTS = 4

try:  # the NLP entity extractor finds addresses too; the phone pattern below is the fallback
    from nlp.entities import extract as _extract_entities
except ImportError:  # pragma: no cover - depends on the NLP package being present
    _extract_entities = None

# Without the extractor: a house number and a street word, or two administrative words (ward + district…).
_ADMIN = re.compile(r"\b(phường|xã|thị trấn|quận|huyện|thị xã|tỉnh|thành phố|tp\.?|p\.\s?\d|q\.\s?\d)", re.I)
_STREET = re.compile(r"\b(số\s*)?\d{1,4}[a-z]?(/\d{1,4})*\s+(đường|phố|ngõ|ngách|hẻm|kiệt)?\s*[A-ZĐ][\wÀ-ỹ]+", re.U)


def sensitive(text: str | None, entities: list[dict] | None = None) -> list[dict]:
    """Phones and addresses in a comment, as entity dicts ({type, value, normalized, start, end}).

    `entities`: what the NLP enricher already found in this text (None when it has not run), so the
    extractor (~0.5 ms a comment) runs once per message, not twice."""
    if not text:
        return []
    found: list[dict] = []
    if entities is not None:
        found = [e for e in entities if isinstance(e, dict) and e.get("type") in ("phone", "address")]
    elif _extract_entities is not None:
        try:
            found = [e for e in _extract_entities(text) if e.get("type") in ("phone", "address")]
        except Exception:  # the extractor is best effort here: the pattern still catches phones
            log.exception("entity extraction failed; using the phone pattern")
    if not any(e["type"] == "phone" for e in found) and sum(ch.isdigit() for ch in text) >= 8:
        found += find_phones(text)  # the phone pattern, whatever the extractor said
    if _extract_entities is None and not any(e["type"] == "address" for e in found):
        if len(_ADMIN.findall(text)) >= 2 or (_STREET.search(text) and _ADMIN.search(text)):
            found.append({"type": "address", "value": text, "normalized": text, "start": 0, "end": len(text)})
    return found


@dataclass(frozen=True, slots=True)
class _Job:
    kind: str  # hide | post
    inbox_id: int
    message_id: int | None = None
    conversation_id: int | None = None
    attempt: int = 1
    found: tuple[str, ...] = ()


class CommentWorker:
    """Post-commit enricher (auto-hide) and a worker that makes the Graph calls, with a few retries."""

    def __init__(self, bus: EventBus, graph: GraphClient, *, retry_delay: float = 2.0) -> None:
        self._bus = bus
        self._graph = graph
        self._retry_delay = retry_delay
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._inboxes: dict[int, tuple[float, Inbox]] = {}
        self._posts_asked: set[int] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="comments")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def idle(self) -> None:
        await self._queue.join()

    async def __call__(self, messages: list[Message]) -> None:
        """Enricher: queue a hide for every new customer comment that shows a phone or an address."""
        for msg in messages:
            comment = (msg.extra or {}).get("comment")
            if not comment or msg.direction != "in":
                continue
            if msg.conversation_id not in self._posts_asked:  # show the post's text and link with the thread
                self._posts_asked.add(msg.conversation_id)
                self.fetch_post(msg.inbox_id, msg.conversation_id)
            if comment.get("hidden"):
                continue
            inbox = await self._inbox(msg.inbox_id)
            if not (inbox.settings or {}).get(SETTING, True):
                continue
            analysed = msg.sentiment is not None  # the NLP enricher ran first and stored its entities
            found = sorted({e["type"] for e in sensitive(msg.text, msg.entities if analysed else None)})
            if found:
                comment["auto_hide"] = {"state": "pending", "found": found}
                self._queue.put_nowait(_Job("hide", inbox.id, message_id=msg.id, found=tuple(found)))

    def fetch_post(self, inbox_id: int, conversation_id: int) -> None:
        self._queue.put_nowait(_Job("post", inbox_id, conversation_id=conversation_id))

    async def _inbox(self, inbox_id: int) -> Inbox:
        now = asyncio.get_running_loop().time()
        cached = self._inboxes.get(inbox_id)
        if cached is None or now - cached[0] > 30:  # settings change rarely; a short cache keeps up
            cached = self._inboxes[inbox_id] = (now, await Inbox.get(id=inbox_id))
        return cached[1]

    async def _run(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await (self._hide(job) if job.kind == "hide" else self._post(job))
            except SendError as error:
                if error.retryable and job.attempt < MAX_ATTEMPTS:
                    asyncio.get_running_loop().call_later(
                        self._retry_delay * job.attempt, self._queue.put_nowait,
                        _Job(job.kind, job.inbox_id, job.message_id, job.conversation_id, job.attempt + 1, job.found),
                    )  # fmt: skip
                elif job.kind == "hide":
                    await self._mark(job, "failed", error.reason)
            except Exception:
                log.exception("comment job %s failed", job)
            finally:
                self._queue.task_done()

    async def _hide(self, job: _Job) -> None:
        msg = await Message.get_or_none(id=job.message_id)
        if msg is None or msg.removed_at is not None:
            return
        inbox = await Inbox.get(id=job.inbox_id)
        await self._graph.set_comment_hidden(inbox.credentials["page_token"], msg.external_id or "", True)
        await self._mark(job, "hidden", None)

    async def _mark(self, job: _Job, state: str, reason: str | None) -> None:
        msg = await Message.get_or_none(id=job.message_id)
        if msg is None:
            return
        auto_hide = {"state": state, "found": list(job.found), **({"reason": reason} if reason else {})}
        changes: dict = {"auto_hide": auto_hide}
        if state == "hidden":
            changes.update(hidden=True, auto_hidden=True, hidden_at=datetime.now(UTC).isoformat())
        # In place, field by field: an agent's hide, delete or private reply meanwhile stays.
        extra = await merge_into_json(connection(), "messages", "extra", msg.id, changes, key="comment")
        if extra is None:
            return
        msg.extra = extra
        conv = await Conversation.get(id=msg.conversation_id)
        await self._bus.publish(
            Event("message.updated", message_json(msg), inbox_id=conv.inbox_id, team_id=conv.team_id)
        )

    async def _post(self, job: _Job) -> None:
        conv = await Conversation.get_or_none(id=job.conversation_id)
        context = dict(conv.thread_context or {}) if conv else {}
        if conv is None or not context.get("post_id") or context.get("post_text"):
            return
        inbox = await Inbox.get(id=job.inbox_id)
        post = await self._graph.fetch_post(inbox.credentials["page_token"], context["post_id"])
        context |= {k: v for k, v in post.items() if v}
        await Conversation.filter(id=conv.id).update(thread_context=context)
        conv.thread_context = context
        contact = await conv.contact
        event = Event(
            "conversation.updated", conversation_json(conv, contact), inbox_id=conv.inbox_id, team_id=conv.team_id
        )
        await self._bus.publish(event)
