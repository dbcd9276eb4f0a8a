"""The event bus across server processes: one Redis stream gives the whole deployment one `seq` order.

Publishing never waits for Redis: `publish` queues the event and a flusher appends queued events with one Lua
script call (INCR the deployment's seq, XADD with that seq as the stream id), so a Redis outage never stops
ingest or processing (the database is the source of truth). Every process reads the stream (XREAD BLOCK) and
delivers each event, with the seq Redis gave it, to its own subscribers and its replay buffer (`LocalFanout`).
After an outage the reader resumes from the last id it read and the flusher sends what was queued meanwhile, so
connected agents get what they missed without reloading.

If Redis comes back *empty* (restarted without persistence), the script starts a new epoch above every earlier
seq; each process then sends its recent events again, and readers skip what they already delivered (events carry
their origin process and a per-origin counter), so nothing read-but-lost is missed and nothing is doubled. A
per-origin gap that nobody can fill (a queue that overflowed, a reader left behind the stream's cap) makes every
client of that process resync explicitly: never silence.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from inbox.bus import Event, LocalFanout, Subscription, clock_seq

log = logging.getLogger(__name__)

# KEYS: seq, stream, epoch. ARGV: the epoch the caller knows, the floor for a new epoch, the stream cap, payloads.
# Returns {1, epoch, last seq} when the payloads were appended, {0, epoch, 0} when the caller's epoch is stale.
PUBLISH_LUA = """
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[2]
  redis.call('SET', KEYS[3], epoch)
  redis.call('SET', KEYS[1], ARGV[2])
end
if epoch ~= ARGV[1] then return {0, epoch, 0} end
local last = 0
for i = 4, #ARGV do
  last = redis.call('INCR', KEYS[1])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], string.format('%d-1', last), 'e', ARGV[i])
end
return {1, epoch, last}
"""

BACKOFF_FIRST, BACKOFF_MAX = 0.05, 0.5  # seconds; well within the 5 s promised after an outage


class RedisBus(LocalFanout):
    MAX_OUTGOING = 200_000  # events queued while Redis is away; beyond that the oldest go and clients resync
    BATCH = 1_000  # payloads per script call
    REPUBLISH = 2_000  # recent events sent again when Redis comes back empty
    AHEAD_SLACK = 10_000  # a `since` up to this far above the last seq read here is another process being ahead

    def __init__(
        self, url: str, buffer_size: int = 10_000, *, prefix: str = "hopthu", stream_max: int = 20_000
    ) -> None:
        super().__init__(buffer_size, start_seq=0)
        self.url = url
        self._keys = [f"{prefix}:{{bus}}:seq", f"{prefix}:{{bus}}:events", f"{prefix}:{{bus}}:epoch"]
        self._stream_max = str(max(stream_max, buffer_size))
        self._origin = uuid.uuid4().hex[:16]
        self._counter = 0
        self._outgoing: deque[bytes] = deque()
        self._recent: deque[bytes] = deque(maxlen=self.REPUBLISH)
        self._epoch = ""  # as the flusher last saw it; "" before the first call
        self._republish: list[bytes] = []
        self._probe = True  # check the epoch even with nothing to send (after start and after an outage)
        self._seen: dict[str, int] = {}  # origin → highest counter delivered here
        self._last_id = b""  # the last stream id read; empty until primed
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._redis: Redis | None = None
        self.connected = False  # the reader's view, for health reporting
        self._closing = False
        self.published = 0

    # ------------------------------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        # One immediate retry covers a pooled connection that died with a Redis restart; repeats are harmless
        # (readers skip an (origin, counter) they have already delivered).
        self._redis = Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=1, retry=Retry(NoBackoff(), 1))
        self._script = self._redis.register_script(PUBLISH_LUA)
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="bus-reader"),
            asyncio.create_task(self._flush_loop(), name="bus-flusher"),
        ]

    async def close(self) -> None:
        self._closing = True  # redis-py may turn a cancelled blocking read into a timeout: the loops check this
        if self._tasks:
            self._tasks[1].cancel()  # the flusher first: what is still queued is sent from here, once
            await asyncio.wait([self._tasks[1]], timeout=2)
        if self._outgoing and self.connected:
            try:  # a clean shutdown hands on what is still queued
                await asyncio.wait_for(self._drain_outgoing(), 2.0)
            except (TimeoutError, RedisError, OSError):
                pass
        for task in self._tasks:
            task.cancel()
        # Bounded: a cancelled blocking XREAD may only notice when its connection is closed below.
        await asyncio.wait(self._tasks, timeout=2)
        if self._redis is not None:
            try:
                await asyncio.wait_for(self._redis.aclose(), 2)
            except (TimeoutError, RedisError, OSError):
                pass
        await super().close()

    # ------------------------------------------------------------------------------------------------ publish

    async def publish(self, event: Event) -> Event:
        """Queue the event for Redis and return at once; its `seq` is set when it comes back from the stream."""
        self._counter += 1
        payload = orjson.dumps(
            {
                "t": event.type,
                "d": event.data,
                "i": event.inbox_id,
                "m": event.team_id,
                "r": event.min_role,
                "u": sorted(event.user_ids) if event.user_ids is not None else None,
                "o": self._origin,
                "n": self._counter,
            }
        )
        if len(self._outgoing) >= self.MAX_OUTGOING:
            self._outgoing.popleft()  # the gap in this origin's counter makes every reader resync its clients
        self._outgoing.append(payload)
        self._wake.set()
        return event

    @property
    def queued(self) -> int:
        return len(self._outgoing)

    async def _flush_loop(self) -> None:
        backoff = BACKOFF_FIRST
        while not self._closing:
            if not self._outgoing and not self._probe:
                await self._wake.wait()
            self._wake.clear()
            try:
                await self._drain_outgoing()
                backoff = BACKOFF_FIRST
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if backoff == BACKOFF_FIRST:
                    log.warning("redis unavailable, %s events queued: %s", len(self._outgoing), exc)
                self._probe = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
            except Exception:
                log.exception("publishing to redis failed")
                await asyncio.sleep(BACKOFF_MAX)

    async def _drain_outgoing(self) -> None:
        while self._outgoing or self._probe or self._republish:
            batch = [self._outgoing[i] for i in range(min(len(self._outgoing), self.BATCH))]
            sent = await self._append(self._republish + batch)
            if not sent:
                continue  # a new epoch: the recent events go again first
            if self._republish:
                log.info("redis came back empty: sent %s recent events again", len(self._republish))
                self._republish = []
            for _ in batch:
                self._outgoing.popleft()
            self._recent.extend(batch)
            self._probe = False
            self.published += len(batch)

    async def _append(self, payloads: list[bytes]) -> bool:
        floor = max(clock_seq(), self._seq + 1)
        ok, epoch, _last = await self._script(keys=self._keys, args=[self._epoch, floor, self._stream_max, *payloads])
        epoch = epoch.decode() if isinstance(epoch, bytes) else str(epoch)
        if ok:
            return True
        if self._epoch:  # not this process's first call: Redis lost the stream, readers may have missed events
            self._republish = list(self._recent)
        self._epoch = epoch
        return False

    def subscribe(self, since: int | None, accept: Callable[[Event], bool]) -> Subscription:
        """As `LocalFanout.subscribe`, except for a client a little ahead of this process: it saw those events on
        another process whose reader is ahead of this one's. It gets what comes after its seq, not a resync."""
        if since is not None and self._seq < since <= self._seq + self.AHEAD_SLACK and self._last_id:
            subscription = super().subscribe(None, accept)
            subscription.after = since
            return subscription
        return super().subscribe(since, accept)

    # ------------------------------------------------------------------------------------------------ read

    async def _read_loop(self) -> None:
        backoff = BACKOFF_FIRST
        assert self._redis is not None
        while not self._closing:
            try:
                if not self._last_id:
                    await self._prime()
                self.connected = True
                response = await self._redis.xread({self._keys[1]: self._last_id}, count=self.BATCH, block=1000)
                backoff = BACKOFF_FIRST
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self.connected:
                    log.warning("redis bus reader disconnected: %s", exc)
                self.connected = False
                self._probe = True  # Redis may come back empty: the flusher checks the epoch
                self._wake.set()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            for _stream, entries in response or ():
                for entry_id, fields in entries:
                    self._last_id = entry_id
                    self._receive(entry_id, fields[b"e"])
            # Let the sockets' writers take this batch before the next: catching up after an outage reads batch
            # after batch without waiting, and a socket left with more than MAX_PENDING would have to resync.
            await asyncio.sleep(0)

    async def _prime(self) -> None:
        """Fill the replay buffer with the stream's tail, so a client may resume here after using another process."""
        assert self._redis is not None
        entries = await self._redis.xrevrange(self._keys[1], count=self._buffer.maxlen or 1)
        for entry_id, fields in reversed(entries):
            event = self._decode(entry_id, fields[b"e"])
            if event is not None:
                self._buffer.append(event)
                self._seq = event.seq
        self._last_id = entries[0][0] if entries else b"0-1"
        if not entries:
            self._seq = max(self._seq, int((await self._redis.get(self._keys[0])) or 0))

    def _decode(self, entry_id: bytes, payload: bytes) -> Event | None:
        data: dict[str, Any] = orjson.loads(payload)
        origin, n = data["o"], data["n"]
        seen = self._seen.get(origin)
        if seen is not None and n <= seen:
            return None  # sent again after Redis came back empty, and already delivered here
        self._seen[origin] = n
        if seen is not None and n > seen + 1:
            self.lost()  # this origin's events between seen and n are gone for good
        users = data["u"]
        return Event(
            data["t"],
            data["d"],
            seq=int(entry_id.split(b"-", 1)[0]),
            inbox_id=data["i"],
            team_id=data["m"],
            min_role=data["r"],
            user_ids=frozenset(users) if users is not None else None,
        )

    def _receive(self, entry_id: bytes, payload: bytes) -> None:
        event = self._decode(entry_id, payload)
        if event is not None:
            self.deliver(event)
