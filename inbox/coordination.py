"""Primitives for work shared by several server processes: a lock, counters, sets — one interface, two homes.

`LocalCoordinator` keeps them in this process (one server, the default); `RedisCoordinator` keeps them in Redis
(several servers, when `HOPTHU_REDIS_URL` is set). `coordinator(settings)` picks one; the app keeps it under
`inbox.app.COORDINATOR`. Keys are plain strings; every value that must disappear when its owner does (an
agent's presence, a lock) carries a TTL, so a process that dies never leaves anything behind for long.

    async with coord.lock(f"token-refresh:{inbox.id}", ttl=30) as held:
        if held:              # single flight: one process refreshes, the others skip (or wait, `wait=`)
            ...
    await coord.set_add("online", str(user_id), ttl=60)          # presence: refreshed by each heartbeat
    if await coord.incr(f"rate:{user_id}:{minute}", ttl=60) > 30: # fixed-window rate limit
        ...

A lock is a lease: it expires after `ttl` seconds even if its holder dies, and is released only by its owner
(a token check), so keep the work well under `ttl`. Redis being unreachable raises `CoordinationUnavailable`;
callers decide whether to skip the work (presence) or fall back (a local lock is safe for idempotent work).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError


class CoordinationUnavailable(Exception):
    """The shared store cannot be reached."""


class Coordinator(Protocol):
    def lock(self, name: str, *, ttl: float = 30.0, wait: float = 0.0) -> AsyncIterator[bool]: ...

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int: ...

    async def get_count(self, key: str) -> int: ...

    async def set_add(self, key: str, member: str, *, ttl: float | None = None) -> None: ...

    async def set_remove(self, key: str, member: str) -> None: ...

    async def set_members(self, key: str) -> set[str]: ...

    async def close(self) -> None: ...


class LocalCoordinator:
    """One process: the same semantics (TTLs included) in memory."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[str, float]] = {}  # name → (owner token, expiry)
        self._counts: dict[str, tuple[int, float | None]] = {}
        self._sets: dict[str, dict[str, float | None]] = {}  # key → member → expiry

    @asynccontextmanager
    async def lock(self, name: str, *, ttl: float = 30.0, wait: float = 0.0) -> AsyncIterator[bool]:
        token = uuid.uuid4().hex
        deadline = time.monotonic() + wait
        while True:
            now = time.monotonic()
            holder = self._locks.get(name)
            if holder is None or holder[1] <= now:
                self._locks[name] = (token, now + ttl)
                break
            if now >= deadline:
                yield False
                return
            await asyncio.sleep(min(0.05, deadline - now))
        try:
            yield True
        finally:
            if self._locks.get(name, ("", 0.0))[0] == token:
                del self._locks[name]

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        value, expiry = self._live_count(key)
        if expiry is None and ttl is not None:  # like Redis INCR + EXPIRE NX: the window starts with the first hit
            expiry = time.monotonic() + ttl
        self._counts[key] = (value + amount, expiry)
        return value + amount

    async def get_count(self, key: str) -> int:
        return self._live_count(key)[0]

    def _live_count(self, key: str) -> tuple[int, float | None]:
        value, expiry = self._counts.get(key, (0, None))
        if expiry is not None and expiry <= time.monotonic():
            self._counts.pop(key, None)
            return 0, None
        return value, expiry

    async def set_add(self, key: str, member: str, *, ttl: float | None = None) -> None:
        self._sets.setdefault(key, {})[member] = time.monotonic() + ttl if ttl is not None else None

    async def set_remove(self, key: str, member: str) -> None:
        self._sets.get(key, {}).pop(member, None)

    async def set_members(self, key: str) -> set[str]:
        now = time.monotonic()
        members = self._sets.get(key, {})
        for member in [m for m, expiry in members.items() if expiry is not None and expiry <= now]:
            del members[member]
        return set(members)

    async def close(self) -> None:
        pass


# Release only what we still own: a lease that expired and was taken by another process is not ours to delete.
_RELEASE_LUA = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
# INCRBY, and start the window's expiry with the first hit only.
_INCR_LUA = """
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if ARGV[2] ~= '' and redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return value
"""


class RedisCoordinator:
    """Several processes: a lock is `SET NX PX` with an owner token; a set with per-member TTLs is a sorted set
    scored by expiry (members past it are ignored and pruned), so one dead process's members simply age out."""

    def __init__(self, url: str, *, prefix: str = "hopthu:coord:") -> None:
        self._redis = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=1)
        self._prefix = prefix
        self._release = self._redis.register_script(_RELEASE_LUA)
        self._incr = self._redis.register_script(_INCR_LUA)

    def _key(self, key: str) -> str:
        return self._prefix + key

    @asynccontextmanager
    async def lock(self, name: str, *, ttl: float = 30.0, wait: float = 0.0) -> AsyncIterator[bool]:
        key, token = self._key("lock:" + name), uuid.uuid4().hex
        if not await self._acquire(key, token, ttl, wait):
            yield False
            return
        try:
            yield True
        finally:
            try:
                await asyncio.shield(self._release(keys=[key], args=[token]))
            except RedisError:
                pass  # the lease expires by itself

    async def _acquire(self, key: str, token: str, ttl: float, wait: float) -> bool:
        deadline = time.monotonic() + wait
        try:
            while not await self._redis.set(key, token, nx=True, px=int(ttl * 1000)):
                if time.monotonic() >= deadline:
                    return False
                await asyncio.sleep(0.05)
        except RedisError as exc:
            raise CoordinationUnavailable(str(exc)) from exc
        return True

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        ttl_ms = str(int(ttl * 1000)) if ttl is not None else ""
        try:
            return int(await self._incr(keys=[self._key(key)], args=[amount, ttl_ms]))
        except RedisError as exc:
            raise CoordinationUnavailable(str(exc)) from exc

    async def get_count(self, key: str) -> int:
        try:
            return int(await self._redis.get(self._key(key)) or 0)
        except RedisError as exc:
            raise CoordinationUnavailable(str(exc)) from exc

    async def set_add(self, key: str, member: str, *, ttl: float | None = None) -> None:
        expiry = time.time() + ttl if ttl is not None else float("inf")
        try:
            await self._redis.zadd(self._key(key), {member: expiry})
        except RedisError as exc:
            raise CoordinationUnavailable(str(exc)) from exc

    async def set_remove(self, key: str, member: str) -> None:
        try:
            await self._redis.zrem(self._key(key), member)
        except RedisError as exc:
            raise CoordinationUnavailable(str(exc)) from exc

    async def set_members(self, key: str) -> set[str]:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.zremrangebyscore(self._key(key), "-inf", time.time())
                pipe.zrange(self._key(key), 0, -1)
                _, members = await pipe.execute()
        except RedisError as exc:
            raise CoordinationUnavailable(str(exc)) from exc
        return {m.decode() for m in members}

    async def close(self) -> None:
        await self._redis.aclose()


def coordinator(redis_url: str | None) -> LocalCoordinator | RedisCoordinator:
    """Redis when the deployment has it (several processes), this process's memory otherwise."""
    return RedisCoordinator(redis_url) if redis_url else LocalCoordinator()


class LogLeader:
    """One server process at a time applies the inbound log (PostgreSQL): the one holding a session-level advisory
    lock on a connection of its own. Its events then reach the bus in the log's order, whichever process took the
    webhook. The others only tell it that they stored something (NOTIFY, which wakes it at once), and keep trying
    the lock, so one of them takes over within a second when the leader's process or connection dies.
    (Each batch still takes a transaction-scoped lock and re-reads what is unprocessed: a brief overlap at a
    hand-over can never apply an event twice.)"""

    KEY = 0x686F7075  # "hopu"
    CHANNEL = "hopthu_inbound"

    def __init__(self, database_url: str, wake: asyncio.Event) -> None:
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(database_url)
        # asyncpg's own DSN: tortoise's pool options in the query string are not libpq parameters.
        self._dsn = urlunsplit(parts._replace(scheme="postgresql", query=""))
        self._wake = wake
        self._conn = None
        self.leading = False

    async def lead(self) -> bool:
        """True while this process holds the log; tries to take it otherwise."""
        import asyncpg

        try:
            if self._conn is None or self._conn.is_closed():
                self.leading = False
                self._conn = await asyncpg.connect(self._dsn, timeout=5)
            if not self.leading and await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self.KEY):
                await self._conn.add_listener(self.CHANNEL, self._notified)
                self.leading = True
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            self.leading = False
            await self._drop()
        return self.leading

    async def nudge(self) -> None:
        """Tell the leader this process stored events for it."""
        import asyncpg

        try:
            if self._conn is not None and not self._conn.is_closed():
                await self._conn.execute("SELECT pg_notify($1, '')", self.CHANNEL)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            await self._drop()

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def _drop(self) -> None:
        if self._conn is not None:
            try:
                await self._conn.close(timeout=2)
            except Exception:
                self._conn.terminate()
            self._conn = None

    async def close(self) -> None:
        self.leading = False
        await self._drop()  # closing the connection releases the lock
