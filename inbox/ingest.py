"""Durable ingest: what a webhook must do before it may answer 200.

A webhook hands its parsed events to `IngestWriter.store`. The writer appends them to the `inbound_events` log,
deduplicated by the unique key (inbox, dedupe key) with a raw insert that ignores conflicts, so a redelivery is a
no-op and never a check-then-insert race. Requests that arrive while a commit is in flight wait for the next one
and share it (group commit), so one fsync serves many webhooks. Only after the commit does `store` return;
`InboundProcessor` then turns the log into conversations and messages, off the ack path.

On SQLite the commits run back to back on the database's own thread (`_drain`): a commit takes the webhooks that
arrived during the previous one without waiting for the event loop to come round between them, and the rows are
serialised in each webhook's handler, not on that serial path. With 32 webhooks in flight the event loop's
round trip between commits was half of each commit's 2–3 ms.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from channels.events import ChannelEvent, Unrecognized, record_json
from channels.payload import nul_free, nul_free_json
from inbox import db
from inbox.metrics import INGESTED
from inbox.models import DeadLetter
from inbox.sql import insert_rows

log = logging.getLogger(__name__)


class StorageUnavailable(Exception):
    """The database could not commit: the webhook answers 503 so the platform delivers again."""


@dataclass(slots=True)
class Accepted:
    inbox_id: int
    channel: str
    event: ChannelEvent


@dataclass(slots=True)
class Rejected:
    """A signed event kept raw in the dead-letter table."""

    channel: str
    inbox_id: int | None
    event: Unrecognized


Item = Accepted | Rejected


@dataclass(slots=True)
class Waiting:
    """One webhook's events, serialised in its handler, and the future its answer waits on."""

    rows: list[list[object]]  # inbound_events rows
    channels: list[str]  # each row's channel, for the metrics
    dead: list[DeadLetter]
    future: asyncio.Future[None]


BURST_SECONDS = 0.01  # back-to-back commits on the SQLite thread give the connection back this often


class IngestWriter:
    def __init__(
        self, on_committed: asyncio.Event | None = None, max_batch: int = 1_000, *, sqlite_thread: bool = False
    ) -> None:
        # Appended by handlers on the event loop; taken by `_run`, or by `_drain` on the SQLite thread (a deque's
        # append and popleft are atomic).
        self._queue: deque[Waiting] = deque()
        self._sqlite_thread = sqlite_thread
        self._closing = False  # tells `_drain` to stop between commits
        self._burst: asyncio.Future[None] | None = None
        self._wake = asyncio.Event()
        self._on_committed = on_committed
        self._max_batch = max_batch
        self._task: asyncio.Task[None] | None = None
        self.commits = 0
        self._accepted = 0  # webhooks handed to `store`, in order
        self._settled = 0  # of those, the ones whose commit is over (stored or refused)
        self._progress = asyncio.Event()  # set (and replaced) after each commit

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ingest-writer")

    def waiting(self) -> int:
        """How many webhooks are waiting for a commit, in flight or queued (the processor yields the database)."""
        return self._accepted - self._settled

    def arrived(self) -> int:
        """How many webhooks have been handed to `store` so far (the processor tells a steady stream by it)."""
        return self._accepted

    async def caught_up(self) -> None:
        """Return once every webhook waiting now has had its commit: the processor's turn comes after theirs."""
        target = self._accepted
        while self._settled < target:
            progress = self._progress
            await progress.wait()

    async def stop(self) -> None:
        self._closing = True
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._burst is not None:  # the commit in progress on the SQLite thread ends, and is answered
            await asyncio.wait([self._burst], timeout=10)
        for waiting in self._queue:
            if not waiting.future.done():
                waiting.future.set_exception(StorageUnavailable("server shutting down"))
        self._settled += len(self._queue)
        self._queue.clear()
        self._progress.set()

    async def store(self, items: list[Item]) -> None:
        """Return once every item is committed (or was already stored); raise StorageUnavailable otherwise."""
        if not items:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._accepted += 1
        self._queue.append(Waiting(*_serialise(items), future))
        self._wake.set()
        await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue and not self._closing:
                if self._sqlite_thread and _fits_one_statement(self._queue[0]):
                    try:
                        await self._commit_on_sqlite_thread()
                    except Exception as exc:  # no connection (closing, broken): 503 for the first, not a hang
                        if self._queue:
                            self._answer([self._queue.popleft()], exc)
                    continue
                batch, size = [], 0
                while self._queue and size < self._max_batch:
                    waiting = self._queue.popleft()
                    batch.append(waiting)
                    size += len(waiting.rows) + len(waiting.dead)
                try:
                    await self._commit(batch)
                finally:
                    self._settle_count(len(batch))

    def _settle_count(self, count: int) -> None:
        self._settled += count
        self._progress.set()
        self._progress = asyncio.Event()

    async def _commit_on_sqlite_thread(self) -> None:
        """Commit on aiosqlite's thread until nothing is waiting, a webhook needs the general path (dead letters,
        a huge batch), or `BURST_SECONDS` pass. Tortoise's lock is held meanwhile, so no other task's transaction
        is open on the connection when the rows are inserted in autocommit mode."""
        client = db.connection()
        async with client.acquire_connection() as connection:
            loop = asyncio.get_running_loop()
            # aiosqlite's `_execute` runs a function on its thread, where the sqlite3 connection lives.
            self._burst = asyncio.ensure_future(connection._execute(self._drain, loop, connection._conn))
            # Shielded: stopping the writer lets the commit in progress finish and answer its webhooks.
            await asyncio.shield(self._burst)

    def _drain(self, loop: asyncio.AbstractEventLoop, raw: sqlite3.Connection) -> None:
        """On the SQLite thread: insert what is waiting, answer it through the loop, and go on with what arrived
        meanwhile. Nothing here touches the loop's objects but the deque and `call_soon_threadsafe`."""
        deadline = time.perf_counter() + BURST_SECONDS
        queue = self._queue
        while not self._closing:
            batch: list[Waiting] = []
            rows: list[list[object]] = []
            while queue:
                waiting = queue[0]
                if not _fits_one_statement(waiting) or len(rows) + len(waiting.rows) > ROWS_PER_STATEMENT:
                    break
                batch.append(queue.popleft())
                rows.extend(waiting.rows)
            if not batch:
                return
            error: Exception | None = None
            if rows:
                try:
                    raw.execute(*_insert("sqlite", rows))
                except Exception as exc:  # whatever the database says, the platform must hear 503 and retry
                    error = exc
            try:
                loop.call_soon_threadsafe(self._answer, batch, error)
            except RuntimeError:  # the loop is closed (shutdown): nobody waits for an answer
                return
            if error is not None or time.perf_counter() > deadline:
                return

    def _answer(self, batch: list[Waiting], error: Exception | None) -> None:
        if error is not None:
            self._refused(batch, error)
        else:
            self._committed(batch)
        self._settle_count(len(batch))

    def _refused(self, batch: list[Waiting], error: Exception) -> None:
        """Whatever the database said, the platform hears 503 and delivers again."""
        log.error("ingest commit failed: %s", error)
        for waiting in batch:
            if not waiting.future.done():
                waiting.future.set_exception(StorageUnavailable(str(error)))

    def _committed(self, batch: list[Waiting]) -> None:
        self.commits += 1
        for channel, count in Counter(channel for waiting in batch for channel in waiting.channels).items():
            INGESTED.labels(channel).inc(count)
        for waiting in batch:
            if not waiting.future.done():
                waiting.future.set_result(None)
        if self._on_committed is not None and any(waiting.rows for waiting in batch):
            self._on_committed.set()

    async def _commit(self, batch: list[Waiting]) -> None:
        inbound = [row for waiting in batch for row in waiting.rows]
        dead = [letter for waiting in batch for letter in waiting.dead]
        try:
            if dead or len(inbound) > ROWS_PER_STATEMENT:  # rare: several statements in one transaction
                async with in_transaction() as conn:
                    for start in range(0, len(inbound), ROWS_PER_STATEMENT):
                        rows = inbound[start : start + ROWS_PER_STATEMENT]
                        await conn.execute_query(*_insert(conn.capabilities.dialect, rows))
                    if dead:
                        await DeadLetter.bulk_create(dead, using_db=conn)
            elif inbound:  # one statement, its own transaction, one round trip, no ORM objects (Postgres' hot path)
                conn = db.connection()
                await conn.execute_query(*_insert(conn.capabilities.dialect, inbound))
        except Exception as exc:  # whatever the database says, the platform must hear 503 and retry
            self._refused(batch, exc)
            return
        self._committed(batch)


def _serialise(items: list[Item]) -> tuple[list[list[object]], list[str], list[DeadLetter]]:
    """A webhook's events as `inbound_events` rows (in its handler: off the writer's serial path), and dead
    letters for what is kept raw."""
    rows: list[list[object]] = []
    channels: list[str] = []
    dead: list[DeadLetter] = []
    received = datetime.now(UTC)
    for item in items:
        if isinstance(item, Accepted):
            try:  # a NUL in a signed payload as U+FFFD: PostgreSQL refused it, and every redelivery again
                key, record = nul_free(item.event.dedupe_key()), nul_free_json(record_json(item.event))
                row = [item.inbox_id, item.channel, key, record]
            except Exception as exc:  # an adapter bug must not lose the event: keep it for admins
                log.exception("could not serialise a %s event; kept as a dead letter", item.channel)
                dead.append(
                    DeadLetter(
                        channel=item.channel,
                        inbox_id=item.inbox_id,
                        account_id=getattr(item.event, "account_id", None),
                        reason=f"could not store the parsed event: {exc}"[:500],
                        payload={"event": repr(item.event)[:20000]},
                    )
                )
                continue
            rows.append([*row, False, received])
            channels.append(item.channel)
        else:
            dead.append(
                DeadLetter(
                    channel=item.channel,
                    inbox_id=item.inbox_id,
                    account_id=nul_free(item.event.account_id),
                    reason=nul_free(item.event.reason),
                    payload=nul_free(item.event.payload),
                )
            )
    return rows, channels, dead


def _fits_one_statement(waiting: Waiting) -> bool:
    """What the SQLite thread commits alone: rows only (dead letters are ORM objects) in one INSERT."""
    return not waiting.dead and len(waiting.rows) <= ROWS_PER_STATEMENT


_COLUMNS = ("inbox_id", "channel", "dedupe_key", "record", "processed", "received_at")


ROWS_PER_STATEMENT = 1_000  # 6,000 parameters: well within SQLite's and Postgres' limits


def _insert(dialect: str, rows: list[list[object]]) -> tuple[str, list[object]]:
    """Deduplicated by the unique key (inbox, dedupe key): a redelivered event inserts nothing."""
    return insert_rows(dialect, "inbound_events", _COLUMNS, rows, on_conflict="(inbox_id, dedupe_key) DO NOTHING")
