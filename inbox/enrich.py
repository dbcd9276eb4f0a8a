"""NLP enrichment of inbound messages: sentiment, intent and entities, stored on the message and summarised on
the conversation (latest sentiment, worst sentiment, main intent).

Plugs into `PostCommitPipeline.enrichers`, so it runs after the ingest commit, off the webhook's ack path, once per
processed batch. The analysis (`analyze_batch` on the whole batch) never runs on the event loop: by default it runs
in a worker process of its own (`HOPTHU_NLP_WORKER=process`), because a worker thread computes under the server's
interpreter lock — at 1,000 messages/s the classifier took ≈ 15 % of the one core the server's Python code gets,
and every stretch it held the lock delayed webhook acknowledgements. `thread` keeps it in this process (tests that
install a backend with `nlp.reset_backend`). The classic model answers in about a millisecond, so the results are
normally in before the pipeline goes on: the bot and routing read `msg.intent`/`msg.sentiment`, and the pipeline
pushes `message.updated` frames with them. A slow backend (transformers on a large batch) goes past
`inline_seconds`: the pipeline then carries on without waiting, and this enricher stores the results when they
come and pushes `message.updated` and `conversation.updated` itself.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from contacts.models import Contact
from inbox.bus import Event, EventBus
from inbox.config import NLP_WORKERS
from inbox.models import Conversation, Message
from inbox.serialize import conversation_json, message_json
from inbox.sql import Sql, Statement, json_param, run_statements, update_many

log = logging.getLogger(__name__)
SENTIMENT_RANK = {"negative": 0, "neutral": 1, "positive": 2}
MAX_TEXT = 2000  # longer messages are analysed on their first 2,000 characters
MAX_AHEAD = 5_000  # texts analysed ahead of their batch, kept until the pipeline asks for them


def _analyze(texts: list[str]) -> list[dict]:
    from nlp import analyze_batch

    return [a.to_dict() for a in analyze_batch(texts)]


def _follow_parent(parent_pid: int) -> None:
    """In the worker process: exit once the server is gone. A server killed with SIGKILL never tells its worker,
    and the worker's own copy of its task pipe keeps it from ever reading end-of-file."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()


def _load_model() -> str | None:
    """Load the configured backend in the worker (thread or process); the reason it cannot be used, if any."""
    try:
        from nlp import get_backend

        get_backend()
    except Exception as exc:  # no model: messages are stored without NLP, and the reason is logged once
        return f"{type(exc).__name__}: {exc}"
    return None


class NlpEnricher:
    """`await enricher(messages)` analyses, stores and summarises; see the module docstring."""

    def __init__(
        self,
        bus: EventBus,
        *,
        analyze: Callable[[list[str]], list[dict]] = _analyze,
        inline_seconds: float = 5.0,
        worker: str = "thread",
    ) -> None:
        if worker not in NLP_WORKERS:
            raise ValueError(f"worker must be one of {NLP_WORKERS}, not {worker!r}")
        self.bus = bus
        self.analyze = analyze  # in a process worker: a module-level function (it is pickled by name)
        self.inline_seconds = inline_seconds
        self.worker = worker
        self._executor: Executor | None = None
        self._loaded: asyncio.Future | None = None
        self._late: set[asyncio.Task[None]] = set()
        # Texts `prepare` sent ahead → their analysis (a future for the list they went in, and their place in it).
        self._ahead: dict[str, tuple[asyncio.Future, int]] = {}
        self.disabled_reason: str | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        if self.worker == "process":
            # spawn, not fork: this process has threads (aiosqlite's, the resolver's) that a fork would copy
            # mid-lock. The child inherits the environment, so it loads the same HOPTHU_NLP_* backend.
            context = multiprocessing.get_context("spawn")
            self._executor = ProcessPoolExecutor(
                max_workers=1, mp_context=context, initializer=_follow_parent, initargs=(os.getpid(),)
            )
        else:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nlp")
        # Load the model now, not on the first customer message.
        self._loaded = asyncio.get_running_loop().run_in_executor(self._executor, _load_model)
        self._loaded.add_done_callback(self._model_loaded)

    def _model_loaded(self, loaded: asyncio.Future) -> None:
        if loaded.cancelled():
            return
        failure = loaded.exception()
        reason = f"the NLP worker failed: {failure!r}" if failure is not None else loaded.result()
        if reason:
            self.disabled_reason = reason
            log.error("NLP enrichment disabled: %s", reason)

    async def stop(self) -> None:
        for task in list(self._late):
            task.cancel()
        await asyncio.gather(*self._late, return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)  # a process worker exits once told
            self._executor = None

    async def ready(self) -> bool:
        """Wait until the worker has loaded the model; False when NLP is disabled (the reason is logged)."""
        if self._loaded is not None and not self._loaded.done():
            await asyncio.wait([self._loaded])
        return self._loaded is not None and not self.disabled_reason

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
        if not await self.ready():  # waits once, at start-up: loading is not what the budget measures
            return
        texts = [(m.text or "")[:MAX_TEXT] for m in todo]
        for attempt in (1, 2):
            try:
                future = self._analysis(texts)
                results = await asyncio.wait_for(asyncio.shield(future), self.inline_seconds)
                break
            except BrokenProcessPool:
                if attempt == 2:
                    raise
                # The worker process died (killed, out of memory): a new one takes this batch again, once.
                log.error("the NLP worker process died; starting a new one")
                self._restart()
            except TimeoutError:
                task = asyncio.create_task(self._finish_late(todo, future), name="nlp-late")
                self._late.add(task)
                task.add_done_callback(self._late.discard)
                return
        await self._store(todo, results)

    def prepare(self, texts: list[str]) -> None:
        """Start on the customers' texts of the batch the processor is about to apply: the worker analyses them
        while the batch is written, and the pipeline finds the results ready instead of waiting for them. Each
        text is sent once: under load a batch may apply one event of the fifty it was shown."""
        if self.disabled_reason or self._executor is None or self._loaded is None or not self._loaded.done():
            return
        wanted = [t for t in dict.fromkeys(text[:MAX_TEXT] for text in texts if text.strip()) if t not in self._ahead]
        if not wanted:
            return
        if len(self._ahead) + len(wanted) > MAX_AHEAD:  # texts never applied (withheld by consent): start afresh
            self._ahead = {}
        future = self._submit(wanted)
        future.add_done_callback(_forget)  # unused, a failure is not worth a warning; users still see it
        for i, text in enumerate(wanted):
            self._ahead[text] = (future, i)

    def finished(self, texts: list[str]) -> dict[str, dict]:
        """The analyses `prepare` started for these texts that are already in, taken (each is used once). The
        processor stores them with the messages in the batch's one insert, so `message.created` carries them and
        no second write or `message.updated` frame follows; a text still being analysed goes the pipeline's way."""
        found: dict[str, dict] = {}
        for text in dict.fromkeys(text[:MAX_TEXT] for text in texts):
            ahead = self._ahead.get(text)
            if ahead is None or not ahead[0].done():
                continue
            future, index = ahead
            if future.cancelled() or future.exception() is not None:
                continue  # the pipeline asks again, and sees the failure
            del self._ahead[text]
            found[text] = future.result()[index]
        return found

    def _analysis(self, texts: list[str]) -> asyncio.Future:
        """The results for `texts`, in order: those `prepare` started, and the rest now."""
        found = {text: self._ahead.pop(text) for text in set(texts) if text in self._ahead}
        missing = [text for text in dict.fromkeys(texts) if text not in found]
        if missing:
            future = self._submit(missing)
            found.update((text, (future, i)) for i, text in enumerate(missing))
        return asyncio.ensure_future(_pick(found, texts))

    def _submit(self, texts: list[str]) -> asyncio.Future:
        return asyncio.get_running_loop().run_in_executor(self._executor, self.analyze, texts)

    def _restart(self) -> None:
        self._ahead = {}
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self.start()

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
            take_analysis(msg, res)
        async with in_transaction() as conn:
            # Raw statements, one per table: building an ORM update per message cost more than the NLP itself.
            stored = Statement(
                update_many(conn.capabilities.dialect, "messages", NLP_COLUMNS),
                [[*(nlp_value(msg, c) for c in NLP_COLUMNS), msg.id] for msg in todo],
                many=True,
            )
            return await write_and_summarise(conn, [stored], todo, commit=True)

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


async def _pick(found: dict[str, tuple[asyncio.Future, int]], texts: list[str]) -> list[dict]:
    for future in {id(f): f for f, _ in found.values()}.values():
        await future
    return [found[text][0].result()[found[text][1]] for text in texts]


def _forget(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: an unused analysis that failed is not worth a warning


NLP_COLUMNS = ("sentiment", "sentiment_score", "intent", "intent_confidence", "entities")


def take_analysis(msg: Message, result: dict) -> None:
    """One analysis (`nlp.Analysis.to_dict()`) onto its message, as the columns it is stored in."""
    msg.sentiment = result["sentiment"]
    msg.sentiment_score = result["sentiment_score"]
    msg.intent = result["intent"]
    msg.intent_confidence = result["intent_confidence"]
    msg.entities = result["entities"]


def nlp_value(msg: Message, column: str) -> object:
    """The value stored in an NLP column (`NLP_COLUMNS`) of the message's row."""
    value = getattr(msg, column)
    return json_param(value) if column == "entities" else value


async def write_and_summarise(
    conn: BaseDBAsyncClient, statements: list[Statement], analysed: Sequence[Message], *, commit: bool = False
) -> dict[int, dict]:
    """Run `statements` (which store the analyses of `analysed`), then summarise the conversations of those
    messages: `sentiment` (of its newest analysed customer message), `worst_sentiment`, `intent` (its customers'
    most frequent intent other than "other"; ties go to the most recent). The summary is read in the same hand-off
    as the statements (`run_statements`) and written in a second; returns it per conversation. `commit`: these
    are the transaction's last writes, and its COMMIT goes with the last hand-off (`run_statements`)."""
    dialect = conn.capabilities.dialect
    conv_ids = sorted({msg.conversation_id for msg in analysed})
    summary_at = len(statements)
    if conv_ids:
        statements = [*statements, _summary_statement(dialect, conv_ids)]
    if not statements:
        return {}
    results = await run_statements(conn, statements, commit=commit and not conv_ids)
    if not conv_ids:
        return {}
    summaries = _summaries_from(results[summary_at] or [], conv_ids)
    await run_statements(conn, _summary_updates(dialect, summaries), commit=commit)
    return summaries


def _summary_statement(dialect: str, conv_ids: Sequence[int]) -> Statement:
    """The rows `_summaries_from` reads: one raw statement per batch (the ORM's two grouped queries cost more to
    build than to run)."""
    sql = Sql(dialect)
    return Statement(
        "SELECT conversation_id, sentiment, intent, COUNT(*) AS n, MAX(id) AS last FROM messages"
        f" WHERE conversation_id IN ({sql.marks(conv_ids)}) AND direction = {sql.p('in')}"
        " AND (sentiment IS NOT NULL OR intent IS NOT NULL) GROUP BY conversation_id, sentiment, intent",
        sql.params,
        fetch=True,
    )


def _summaries_from(rows: list[dict], conv_ids: Sequence[int]) -> dict[int, dict]:
    """`write_and_summarise`'s summary from `_summary_statement`'s rows. The latest sentiment is that of the
    conversation's newest analysed message, which is not always one analysed now (an edited older message)."""
    newest: dict[int, tuple[int, str]] = {}  # conversation → (newest analysed message, its sentiment)
    sentiments = [r for r in rows if r["sentiment"] is not None]
    for r in sentiments:
        if r["conversation_id"] not in newest or r["last"] > newest[r["conversation_id"]][0]:
            newest[r["conversation_id"]] = (r["last"], r["sentiment"])
    counts: dict[tuple[int, str], list[int]] = {}  # (conversation, intent) → [messages, newest id]
    for r in rows:
        if r["intent"] is not None:
            seen = counts.setdefault((r["conversation_id"], r["intent"]), [0, 0])
            seen[0] += r["n"]
            seen[1] = max(seen[1], r["last"])
    intents = [{"conversation_id": c, "intent": i, "n": n, "last": last} for (c, i), (n, last) in counts.items()]
    # Every column for every conversation: one left without analysed messages (its only one edited to no text)
    # has its summary cleared, not kept.
    out: dict[int, dict] = {cid: dict.fromkeys(("sentiment", "worst_sentiment", "intent")) for cid in conv_ids}
    for row in sentiments:
        cur = out[row["conversation_id"]]["worst_sentiment"]
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
    for cid, (_, sentiment) in newest.items():
        out[cid]["sentiment"] = sentiment
    return out


def _summary_updates(dialect: str, summaries: dict[int, dict]) -> list[Statement]:
    """One statement per set of columns, not one per conversation."""
    by_columns: dict[tuple[str, ...], list[list]] = {}
    for conv_id, fields in summaries.items():
        columns = tuple(sorted(fields))
        by_columns.setdefault(columns, []).append([*(fields[c] for c in columns), conv_id])
    return [
        Statement(update_many(dialect, "conversations", columns), rows, many=True)
        for columns, rows in by_columns.items()
    ]


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
