"""The Redis event bus: one seq order across processes, `since` replay on any process, explicit resync, and an
outage that loses nothing (publishing never blocks; what was queued arrives when Redis is back, even empty).

Needs Redis: `HOPTHU_TEST_REDIS_URL` (the outage tests start their own `redis-server`). Each test uses its own
key prefix, so concurrent runs never share a stream.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from inbox.bus import Event, Subscription
from inbox.bus_redis import RedisBus

REDIS_URL = os.environ.get("HOPTHU_TEST_REDIS_URL", "")
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="HOPTHU_TEST_REDIS_URL is not set (needs a Redis server)")
needs_redis_server = pytest.mark.skipif(
    not os.access(REDIS_SERVER, os.X_OK), reason=f"no redis-server binary at {REDIS_SERVER} to stop and restart"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OwnRedis:
    """A `redis-server` of the test's own, without persistence: a restart brings it back empty."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("redis-server did not start") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # as abrupt as a crash: nothing is flushed to anyone
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def own_redis(tmp_path: Path) -> AsyncIterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def prefix() -> str:
    return f"hopthu-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def buses(prefix: str) -> AsyncIterator[list[RedisBus]]:
    """Buses as separate server processes would have them; started by the tests, all closed afterwards."""
    made: list[RedisBus] = []
    yield made
    for bus in made:
        await bus.close()
    if REDIS_URL:
        redis = Redis.from_url(REDIS_URL)
        keys = [k async for k in redis.scan_iter(match=f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def started(buses: list[RedisBus], url: str, prefix: str, **kwargs: object) -> RedisBus:
    bus = RedisBus(url, prefix=prefix, **kwargs)  # type: ignore[arg-type]
    await bus.start()
    buses.append(bus)
    return bus


async def receive(sub: Subscription, count: int, timeout: float = 10.0) -> list[Event]:
    events: list[Event] = []
    deadline = time.monotonic() + timeout
    while len(events) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"received {len(events)} of {count} events: {[e.data for e in events]}"
        try:
            batch = await asyncio.wait_for(sub.next_batch(), remaining)
        except TimeoutError:
            continue
        assert not sub.overflowed, "the subscriber was told to resync"
        events += batch
    return events


async def connected(*all_buses: RedisBus) -> None:
    deadline = time.monotonic() + 10
    while not all(b.connected for b in all_buses):
        assert time.monotonic() < deadline, "the bus never connected to redis"
        await asyncio.sleep(0.01)


async def stopped(task: asyncio.Task) -> None:
    """Cancel one of a bus's loops and wait until it has ended. redis-py may turn a cancel that lands as its blocking
    read times out into a TimeoutError, which the loop takes for an outage and goes on: cancel it again then."""
    deadline = time.monotonic() + 10
    while not task.done():
        assert time.monotonic() < deadline, "the bus's loop did not stop"
        task.cancel()
        await asyncio.wait([task], timeout=0.5)


def accept_all(event: Event) -> bool:
    return True


@needs_redis
async def test_processes_see_one_order_with_the_same_seqs(buses: list[RedisBus], prefix: str) -> None:
    a = await started(buses, REDIS_URL, prefix)
    b = await started(buses, REDIS_URL, prefix)
    await connected(a, b)
    on_a, on_b = a.subscribe(None, accept_all), b.subscribe(None, accept_all)
    for n in range(20):
        await (a if n % 3 else b).publish(Event("message.created", {"n": n}, inbox_id=1))
    seen_a, seen_b = await receive(on_a, 20), await receive(on_b, 20)
    assert [(e.seq, e.data["n"]) for e in seen_a] == [(e.seq, e.data["n"]) for e in seen_b]
    seqs = [e.seq for e in seen_a]
    assert seqs == sorted(seqs) and len(set(seqs)) == 20
    assert seqs[-1] - seqs[0] == 19  # no holes: one counter for the whole deployment
    # Each process's own events keep the order it published them in.
    assert [e.data["n"] for e in seen_a if e.data["n"] % 3] == [n for n in range(20) if n % 3]
    assert a.last_seq == b.last_seq == seqs[-1]


@needs_redis
async def test_audience_travels_with_the_event(buses: list[RedisBus], prefix: str) -> None:
    a = await started(buses, REDIS_URL, prefix)
    b = await started(buses, REDIS_URL, prefix)
    await connected(a, b)
    inbox_7 = b.subscribe(None, lambda e: e.inbox_id == 7)
    only_5 = b.subscribe(None, lambda e: e.user_ids is not None and 5 in e.user_ids)
    await a.publish(Event("message.created", {"n": 1}, inbox_id=3, team_id=4))
    await a.publish(Event("note", {"n": 2}, user_ids=frozenset({5, 6}), min_role="supervisor"))
    await a.publish(Event("message.created", {"n": 3}, inbox_id=7))
    [to_inbox] = await receive(inbox_7, 1)
    [personal] = await receive(only_5, 1)
    assert to_inbox.data == {"n": 3}
    assert (personal.user_ids, personal.min_role, personal.inbox_id) == (frozenset({5, 6}), "supervisor", None)


@needs_redis
async def test_a_process_started_later_replays_since_and_asks_for_resync_when_too_old(
    buses: list[RedisBus], prefix: str
) -> None:
    a = await started(buses, REDIS_URL, prefix, buffer_size=5)
    await connected(a)
    tap = a.subscribe(None, accept_all)
    for n in range(8):
        await a.publish(Event("message.created", {"n": n}))
    events = await receive(tap, 8)
    later = await started(buses, REDIS_URL, prefix, buffer_size=5)  # a second process, after the events
    await connected(later)
    resumed = later.subscribe(events[4].seq, accept_all)
    assert not resumed.resync
    assert [e.data["n"] for e in resumed.replay] == [5, 6, 7]
    assert [e.seq for e in resumed.replay] == [e.seq for e in events[5:]]
    assert later.subscribe(events[1].seq, accept_all).resync  # older than the 5 events kept for replay
    assert later.subscribe(events[-1].seq + 10**9, accept_all).resync  # a seq never issued


@needs_redis
async def test_a_client_a_little_ahead_of_this_process_continues_without_resync(
    buses: list[RedisBus], prefix: str
) -> None:
    a = await started(buses, REDIS_URL, prefix)
    b = await started(buses, REDIS_URL, prefix)
    await connected(a, b)
    on_a = a.subscribe(None, accept_all)
    await a.publish(Event("message.created", {"n": 0}))
    [first] = await receive(on_a, 1)
    # The client saw seq first.seq + 2 on process a (a's reader is ahead); it reconnects to b, which is behind.
    reconnected = b.subscribe(first.seq + 2, accept_all)
    assert not reconnected.resync and not reconnected.replay
    for n in range(1, 5):
        await a.publish(Event("message.created", {"n": n}))
    assert [e.data["n"] for e in await receive(reconnected, 2)] == [3, 4]  # only what it had not seen


async def test_publishing_never_waits_for_redis(buses: list[RedisBus], prefix: str) -> None:
    down = await started(buses, f"redis://127.0.0.1:{free_port()}/0", prefix)  # nothing listens there
    for n in range(1_000):
        publishing = down.publish(Event("message.created", {"n": n}))
        with pytest.raises(StopIteration):  # finished at its first step: it never waited for anything
            publishing.send(None)
    assert down.queued == 1_000


@needs_redis_server
async def test_after_an_outage_every_subscriber_gets_what_it_missed(
    buses: list[RedisBus], prefix: str, own_redis: OwnRedis
) -> None:
    a = await started(buses, own_redis.url, prefix)
    b = await started(buses, own_redis.url, prefix)
    await connected(a, b)
    on_a, on_b = a.subscribe(None, accept_all), b.subscribe(None, accept_all)
    for n in range(5):
        await a.publish(Event("message.created", {"n": n}))
    before = await receive(on_b, 5)
    # Both processes have read them before Redis goes: a reader that had not would get them again in the new
    # epoch, under new seqs, and a client resuming there from an old seq is rightly told to resync.
    assert [e.data["n"] for e in await receive(on_a, 5)] == list(range(5))

    own_redis.stop()
    for n in range(5, 25):  # ingest goes on while Redis is away
        await a.publish(Event("message.created", {"n": n}))
        await asyncio.sleep(0.01)
    own_redis.start()  # back, and empty

    after = await receive(on_b, 20, timeout=15)
    assert [e.data["n"] for e in before + after] == list(range(25))
    # The publishing process's own agents get them too (its reader may still be in its reconnect back-off).
    assert [e.data["n"] for e in await receive(on_a, 20, timeout=15)] == list(range(5, 25))
    seqs = [e.seq for e in before + after]
    assert seqs == sorted(seqs) and len(set(seqs)) == 25
    # A subscriber that reconnects to the other process with its last seq gets the same events.
    resumed = a.subscribe(before[-1].seq, accept_all)
    assert not resumed.resync and [e.data["n"] for e in resumed.replay] == list(range(5, 25))


@needs_redis
async def test_events_redis_lost_before_a_reader_saw_them_are_sent_again(buses: list[RedisBus], prefix: str) -> None:
    a = await started(buses, REDIS_URL, prefix)
    b = await started(buses, REDIS_URL, prefix)
    await connected(a, b)
    on_a, on_b = a.subscribe(None, accept_all), b.subscribe(None, accept_all)
    for n in range(3):
        await a.publish(Event("message.created", {"n": n}))
    await receive(on_a, 3)
    assert [e.data["n"] for e in await receive(on_b, 3)] == [0, 1, 2]

    await stopped(b._tasks[0])  # b's reader falls behind ...
    for n in range(3, 5):
        await a.publish(Event("message.created", {"n": n}))
    await receive(on_a, 2)
    redis = Redis.from_url(REDIS_URL)  # ... and Redis loses its data before b reads 3 and 4
    await redis.delete(*b._keys)
    await redis.aclose()
    b._tasks[0] = asyncio.create_task(b._read_loop())

    await a.publish(Event("message.created", {"n": 5}))
    assert [e.data["n"] for e in await receive(on_b, 3)] == [3, 4, 5]  # nothing twice, nothing missing
    assert [e.data["n"] for e in await receive(on_a, 1)] == [5]


@needs_redis
async def test_events_dropped_while_redis_was_away_make_clients_resync(buses: list[RedisBus], prefix: str) -> None:
    a = await started(buses, REDIS_URL, prefix)
    b = await started(buses, REDIS_URL, prefix)
    await connected(a, b)
    on_b = b.subscribe(None, accept_all)
    await a.publish(Event("message.created", {"n": 0}))
    [first] = await receive(on_b, 1)
    a.MAX_OUTGOING = 3  # a tiny queue, as if Redis had been away for very long
    await stopped(a._tasks[1])
    for n in range(1, 6):
        await a.publish(Event("message.created", {"n": n}))  # 1 and 2 are dropped
    a._tasks[1] = asyncio.create_task(a._flush_loop())

    deadline = time.monotonic() + 10
    while not on_b.overflowed:
        assert time.monotonic() < deadline, "the subscriber was never told to resync"
        await asyncio.sleep(0.01)
    assert await on_b.next_batch() == []  # the socket's writer sends `resync` and closes
    assert b.subscribe(first.seq, accept_all).resync  # replay across the hole is refused too
