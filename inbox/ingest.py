"""Durable ingest: what a webhook must do before it may answer 200.

A webhook hands its parsed events to `IngestWriter.store`. The writer appends them to the `inbound_events` log,
deduplicated by the unique key (inbox, dedupe key) with a raw insert that ignores conflicts, so a redelivery is a
no-op and never a check-then-insert race. Requests that arrive while a commit is in flight wait for the next one
and share it (group commit), so one fsync serves many webhooks. Only after the commit does `store` return;
`InboundProcessor` then turns the log into conversations and messages, off the ack path.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from channels.events import ChannelEvent, Unrecognized, to_record
from inbox import db
from inbox.metrics import INGESTED
from inbox.models import DeadLetter
from inbox.sql import insert_rows, json_param

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


class IngestWriter:
    def __init__(self, on_committed: asyncio.Event | None = None, max_batch: int = 1_000) -> None:
        self._queue: deque[tuple[list[Item], asyncio.Future[None]]] = deque()
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
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for _, future in self._queue:
            if not future.done():
                future.set_exception(StorageUnavailable("server shutting down"))
        self._settled += len(self._queue)
        self._queue.clear()
        self._progress.set()

    async def store(self, items: list[Item]) -> None:
        """Return once every item is committed (or was already stored); raise StorageUnavailable otherwise."""
        if not items:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._accepted += 1
        self._queue.append((items, future))
        self._wake.set()
        await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, size = [], 0
                while self._queue and size < self._max_batch:
                    items, future = self._queue.popleft()
                    batch.append((items, future))
                    size += len(items)
                try:
                    await self._commit(batch)
                finally:
                    self._settled += len(batch)
                    self._progress.set()
                    self._progress = asyncio.Event()

    async def _commit(self, batch: list[tuple[list[Item], asyncio.Future[None]]]) -> None:
        inbound: list[list[object]] = []
        channels: list[str] = []
        dead: list[DeadLetter] = []
        received = datetime.now(UTC)
        for items, _ in batch:
            for item in items:
                if isinstance(item, Accepted):
                    try:
                        row = [item.inbox_id, item.channel, item.event.dedupe_key(), json_param(to_record(item.event))]
                    except Exception as exc:  # an adapter bug must not kill the writer: keep it for admins
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
                    inbound.append([*row, False, received])
                    channels.append(item.channel)
                else:
                    dead.append(
                        DeadLetter(
                            channel=item.channel,
                            inbox_id=item.inbox_id,
                            account_id=item.event.account_id,
                            reason=item.event.reason,
                            payload=item.event.payload,
                        )
                    )
        try:
            if dead or len(inbound) > ROWS_PER_STATEMENT:  # rare: several statements in one transaction
                async with in_transaction() as conn:
                    for start in range(0, len(inbound), ROWS_PER_STATEMENT):
                        await conn.execute_query(*_insert(conn, inbound[start : start + ROWS_PER_STATEMENT]))
                    if dead:
                        await DeadLetter.bulk_create(dead, using_db=conn)
            elif inbound:  # the hot path: one statement, its own transaction, one round trip, no ORM objects
                conn = db.connection()
                await conn.execute_query(*_insert(conn, inbound))
        except Exception as exc:  # whatever the database says, the platform must hear 503 and retry
            log.error("ingest commit failed: %s", exc)
            for _, future in batch:
                if not future.done():
                    future.set_exception(StorageUnavailable(str(exc)))
            return
        self.commits += 1
        for channel, count in Counter(channels).items():
            INGESTED.labels(channel).inc(count)
        for _, future in batch:
            if not future.done():
                future.set_result(None)
        if inbound and self._on_committed is not None:
            self._on_committed.set()


_COLUMNS = ("inbox_id", "channel", "dedupe_key", "record", "processed", "received_at")


ROWS_PER_STATEMENT = 1_000  # 6,000 parameters: well within SQLite's and Postgres' limits


def _insert(conn: BaseDBAsyncClient, rows: list[list[object]]) -> tuple[str, list[object]]:
    """Deduplicated by the unique key (inbox, dedupe key): a redelivered event inserts nothing."""
    return insert_rows(
        conn.capabilities.dialect, "inbound_events", _COLUMNS, rows, on_conflict="(inbox_id, dedupe_key) DO NOTHING"
    )
