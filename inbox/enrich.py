"""NLP enrichment of inbound messages: sentiment, intent and entities, stored on the message and summarised on
the conversation (latest sentiment, worst sentiment, main intent).

Plugs into `PostCommitPipeline.enrichers`, so it runs after the ingest commit, off the webhook's ack path, once per
processed batch. The analysis runs in a dedicated worker thread (`analyze_batch` on the whole batch), never on the
event loop. The classic model answers in about a millisecond, so the results are normally in before the pipeline
goes on: the bot and routing read `msg.intent`/`msg.sentiment`, and the pipeline pushes `message.updated` frames
with them. A slow backend (transformers on a large batch) goes past `inline_seconds`: the pipeline then carries on
without waiting, and this enricher stores the results when they come and pushes `message.updated` and
`conversation.updated` itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from tortoise.functions import Count, Max
from tortoise.transactions import in_transaction

from contacts.models import Contact
from inbox.bus import Event, EventBus
from inbox.models import Conversation, Message
from inbox.serialize import conversation_json, message_json
from inbox.sql import json_param, update_many

log = logging.getLogger(__name__)
SENTIMENT_RANK = {"negative": 0, "neutral": 1, "positive": 2}
MAX_TEXT = 2000  # longer messages are analysed on their first 2,000 characters


def _analyze(texts: list[str]) -> list[dict]:
    from nlp import analyze_batch

    return [a.to_dict() for a in analyze_batch(texts)]


class NlpEnricher:
    """`await enricher(messages)` analyses, stores and summarises; see the module docstring."""

    def __init__(
        self,
        bus: EventBus,
        *,
        analyze: Callable[[list[str]], list[dict]] = _analyze,
        inline_seconds: float = 5.0,
    ) -> None:
        self.bus = bus
        self.analyze = analyze
        self.inline_seconds = inline_seconds
        self._executor: ThreadPoolExecutor | None = None
        self._loaded: asyncio.Future | None = None
        self._late: set[asyncio.Task[None]] = set()
        self.disabled_reason: str | None = None
        self.analysed = 0

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nlp")
        # Load the model now, not on the first customer message.
        self._loaded = asyncio.get_running_loop().run_in_executor(self._executor, self._preload)

    def _preload(self) -> None:
        try:
            from nlp import get_backend

            get_backend()
        except Exception as exc:  # no model: messages are stored without NLP, and the reason is logged once
            self.disabled_reason = f"{type(exc).__name__}: {exc}"
            log.error("NLP enrichment disabled: %s", self.disabled_reason)

    async def stop(self) -> None:
        for task in list(self._late):
            task.cancel()
        await asyncio.gather(*self._late, return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def idle(self) -> None:
        """Wait until late (slow-backend) enrichments are stored and pushed."""
        while self._late:
            await asyncio.gather(*list(self._late), return_exceptions=True)

    # -- the pipeline seam --------------------------------------------------------------------------------------
    async def __call__(self, messages: list[Message]) -> None:
        todo = [m for m in messages if m.direction == "in" and (m.text or "").strip() and m.sentiment is None]
        if not todo or self.disabled_reason:
            return
        if self._executor is None:
            self.start()
        if self._loaded is not None and not self._loaded.done():
            await asyncio.shield(self._loaded)  # once, at start-up: loading is not what the budget measures
            if self.disabled_reason:
                return
        loop = asyncio.get_running_loop()
        texts = [(m.text or "")[:MAX_TEXT] for m in todo]
        future = loop.run_in_executor(self._executor, self.analyze, texts)
        try:
            results = await asyncio.wait_for(asyncio.shield(future), self.inline_seconds)
        except TimeoutError:
            task = asyncio.create_task(self._finish_late(todo, future), name="nlp-late")
            self._late.add(task)
            task.add_done_callback(self._late.discard)
            return
        await self._store(todo, results)

    async def _finish_late(self, todo: list[Message], future: asyncio.Future) -> None:
        try:
            results = await future
            summaries = await self._store(todo, results)
            await self._publish(todo, summaries)
        except Exception:
            log.exception("late NLP enrichment failed")

    # -- storage -------------------------------------------------------------------------------------------------
    async def _store(self, todo: Sequence[Message], results: Sequence[dict]) -> dict[int, dict]:
        for msg, res in zip(todo, results, strict=True):
            msg.sentiment = res["sentiment"]
            msg.sentiment_score = res["sentiment_score"]
            msg.intent = res["intent"]
            msg.intent_confidence = res["intent_confidence"]
            msg.entities = res["entities"]
        conv_ids = sorted({m.conversation_id for m in todo})
        async with in_transaction() as conn:
            # Raw statements, one per table: building an ORM update per message cost more than the NLP itself.
            dialect = conn.capabilities.dialect
            await conn.execute_many(
                update_many(dialect, "messages", _NLP_COLUMNS),
                [[*(_nlp_value(msg, c) for c in _NLP_COLUMNS), msg.id] for msg in todo],
            )
            summaries = await conversation_summaries(conv_ids, todo, conn)
            by_columns: dict[tuple[str, ...], list[list]] = {}
            for conv_id, fields in summaries.items():
                columns = tuple(sorted(fields))
                by_columns.setdefault(columns, []).append([*(fields[c] for c in columns), conv_id])
            for columns, rows in by_columns.items():
                await conn.execute_many(update_many(dialect, "conversations", columns), rows)
        self.analysed += len(todo)
        return summaries

    async def _publish(self, todo: Sequence[Message], summaries: dict[int, dict]) -> None:
        convs = {c.id: c for c in await Conversation.filter(id__in=list(summaries))}
        contacts = {c.id: c for c in await Contact.filter(id__in=[c.contact_id for c in convs.values()])}
        for msg in todo:
            conv = convs.get(msg.conversation_id)
            if conv is not None:
                await self.bus.publish(
                    Event("message.updated", message_json(msg), inbox_id=conv.inbox_id, team_id=conv.team_id)
                )
        for conv in convs.values():
            data = conversation_json(conv, contacts.get(conv.contact_id))
            await self.bus.publish(Event("conversation.updated", data, inbox_id=conv.inbox_id, team_id=conv.team_id))


_NLP_COLUMNS = ("sentiment", "sentiment_score", "intent", "intent_confidence", "entities")


def _nlp_value(msg: Message, column: str) -> object:
    value = getattr(msg, column)
    return json_param(value) if column == "entities" else value


async def conversation_summaries(conv_ids: Sequence[int], latest: Sequence[Message], conn=None) -> dict[int, dict]:
    """Per conversation: `sentiment` (of its newest analysed customer message), `worst_sentiment`, `intent`
    (its customers' most frequent intent other than "other"; ties go to the most recent)."""
    if not conv_ids:
        return {}
    newest: dict[int, Message] = {}
    for msg in latest:
        if msg.sentiment and (msg.conversation_id not in newest or msg.id > newest[msg.conversation_id].id):
            newest[msg.conversation_id] = msg
    base = Message.filter(conversation_id__in=list(conv_ids), direction="in")
    if conn is not None:
        base = base.using_db(conn)
    sentiments = await (
        base.filter(sentiment__not_isnull=True)
        .annotate(n=Count("id"))
        .group_by("conversation_id", "sentiment")
        .values("conversation_id", "sentiment", "n")
    )
    intents = await (
        base.filter(intent__not_isnull=True)
        .annotate(n=Count("id"), last=Max("id"))
        .group_by("conversation_id", "intent")
        .values("conversation_id", "intent", "n", "last")
    )
    out: dict[int, dict] = {cid: {} for cid in conv_ids}
    for row in sentiments:
        cur = out[row["conversation_id"]].get("worst_sentiment")
        if row["sentiment"] in SENTIMENT_RANK and (
            cur is None or SENTIMENT_RANK[row["sentiment"]] < SENTIMENT_RANK[cur]
        ):
            out[row["conversation_id"]]["worst_sentiment"] = row["sentiment"]
    best: dict[int, tuple] = {}
    for row in intents:
        key = (row["intent"] != "other", row["n"], row["last"])
        if row["conversation_id"] not in best or key > best[row["conversation_id"]][0]:
            best[row["conversation_id"]] = (key, row["intent"])
    for cid, (_, intent) in best.items():
        out[cid]["intent"] = intent
    for cid, msg in newest.items():
        out[cid]["sentiment"] = msg.sentiment
    return {cid: fields for cid, fields in out.items() if fields}


async def refresh_conversations(convs: Sequence[Conversation]) -> None:
    """Copy the stored NLP summary onto in-memory conversations (the pipeline publishes them next)."""
    if not convs:
        return
    rows = await Conversation.filter(id__in=[c.id for c in convs]).values(
        "id", "sentiment", "worst_sentiment", "intent"
    )
    by_id = {r["id"]: r for r in rows}
    for conv in convs:
        row = by_id.get(conv.id)
        if row is not None:
            conv.sentiment, conv.worst_sentiment, conv.intent = row["sentiment"], row["worst_sentiment"], row["intent"]
