"""The real-time event bus: every event gets an increasing `seq`; clients resume with `since`.

Events are published only after the database commit, by the action or pipeline that made the change, with an
explicit audience (an inbox, a team, or everyone on the staff). A bounded buffer of recent events serves
resumption; a client that asks for something already dropped gets an explicit resync, never silence.

`InProcessBus` serves one server process; `inbox.bus_redis.RedisBus` (several processes, chosen when
`HOPTHU_REDIS_URL` is set) keeps this interface. Both deliver through `LocalFanout`: the buffer for `since`, the
per-client subscriptions, and the explicit resync.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

STAFF_ROLES = ("agent", "supervisor", "admin")


@dataclass(slots=True)
class Event:
    type: str
    data: dict[str, Any]
    seq: int = 0
    inbox_id: int | None = None  # readers of this inbox (and of `team_id`); None: the whole staff
    team_id: int | None = None
    min_role: str = "agent"  # e.g. "supervisor" for live queue figures
    user_ids: frozenset[int] | None = None  # only these users, when set
    _frame: bytes | None = field(default=None, repr=False)
    _ws_frame: bytes | None = field(default=None, repr=False)
    # The variant for readers without `view_contact_pii` (contact phones/e-mails masked), also built once.
    _masked_frame: bytes | None = field(default=None, repr=False)
    _masked_ws_frame: bytes | None = field(default=None, repr=False)

    def frame_bytes(self) -> bytes:
        """The UTF-8 JSON sent to clients; encoded once per event, not once per client."""
        if self._frame is None:
            self._frame = orjson.dumps({"type": self.type, "seq": self.seq, "data": self.data})
        return self._frame

    def frame(self) -> str:
        return self.frame_bytes().decode()

    def ws_frame(self) -> bytes:
        """The whole WebSocket text frame (RFC 6455, unmasked as servers send), built once for every socket."""
        if self._ws_frame is None:
            self._ws_frame = ws_text_frame(self.frame_bytes())
        return self._ws_frame

    def frame_bytes_for(self, pii: bool) -> bytes:
        """The JSON for a reader who may (`pii`) or may not see contact phones/e-mails; each variant built once."""
        if pii:
            return self.frame_bytes()
        if self._masked_frame is None:
            from contacts.masking import masked_event_data

            masked = masked_event_data(self.type, self.data)
            self._masked_frame = (
                self.frame_bytes()
                if masked is None
                else orjson.dumps({"type": self.type, "seq": self.seq, "data": masked})
            )
        return self._masked_frame

    def ws_frame_for(self, pii: bool) -> bytes:
        if pii:
            return self.ws_frame()
        if self._masked_ws_frame is None:
            payload = self.frame_bytes_for(False)
            self._masked_ws_frame = self.ws_frame() if payload is self._frame else ws_text_frame(payload)
        return self._masked_ws_frame


def ws_text_frame(payload: bytes) -> bytes:
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


NOTHING: tuple[()] = ()


class Subscription:
    """One client's view of the bus: events it may read, in order, held until its writer sends them."""

    __slots__ = (
        "_accept", "_bus", "_pending", "_waiter", "after", "closed", "on_pending", "overflowed", "replay", "resync",
    )  # fmt: skip
    MAX_PENDING = 2_000  # a client this far behind is told to resync instead of growing memory

    def __init__(self, bus: LocalFanout, accept: Callable[[Event], bool]) -> None:
        self._bus = bus
        self._accept = accept
        # Nothing pending is the shared empty tuple, not an empty list per subscription (≈ 70 bytes each, times
        # thousands of idle sockets); a list (not a deque: 600 bytes empty) is made when events come.
        self._pending: list[Event] | tuple[()] = NOTHING
        self._waiter: asyncio.Future[None] | None = None
        self.replay: list[Event] | tuple[()] = NOTHING
        self.resync = False
        self.overflowed = False
        self.closed = False
        self.after = -1  # events up to this seq were already seen by the client (see RedisBus.subscribe)
        # Called when events become pending: lets a socket start a sender only when there is something to send.
        self.on_pending: Callable[[], None] | None = None

    def offer(self, event: Event) -> None:
        if self.closed or self.overflowed or event.seq <= self.after or not self._accept(event):
            return
        pending = self._pending
        if len(pending) >= self.MAX_PENDING:
            self.overflowed = True
            self._pending = NOTHING
        elif pending:
            pending.append(event)  # type: ignore[union-attr]
        else:
            self._pending = [event]
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if self.on_pending is not None:
            self.on_pending()

    def fall_behind(self) -> None:
        """Tell this client to resync (its writer sends `resync` and closes, as after an overflow)."""
        if self.closed:
            return
        self.overflowed = True
        self._pending = NOTHING
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if self.on_pending is not None:
            self.on_pending()

    def take(self) -> list[Event]:
        """What is pending now, without waiting ([] when nothing is, or after an overflow)."""
        if self.overflowed or self.closed or not self._pending:
            return []
        batch, self._pending = self._pending, NOTHING
        return batch  # type: ignore[return-value]

    async def next_batch(self) -> list[Event]:
        """Wait for events; returns [] when the subscription overflowed or closed."""
        while not self._pending and not self.overflowed and not self.closed:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self.overflowed or self.closed:
            return []
        batch, self._pending = self._pending, NOTHING
        return batch  # type: ignore[return-value]

    def close(self) -> None:
        self.closed = True
        self._bus._subscribers.discard(self)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class EventBus(Protocol):
    @property
    def last_seq(self) -> int: ...

    async def publish(self, event: Event) -> Event: ...

    def subscribe(self, since: int | None, accept: Callable[[Event], bool]) -> Subscription: ...

    async def close(self) -> None: ...


class LocalFanout:
    """This process's share of the bus: recent events for replay and the subscriptions they are offered to."""

    def __init__(self, buffer_size: int = 10_000, start_seq: int | None = None) -> None:
        # Sequence numbers keep increasing across restarts (they start from the clock), so a client holding a
        # seq from before a restart is below the new buffer and is told to resync rather than miss events.
        self._seq = start_seq if start_seq is not None else clock_seq()
        self._buffer: deque[Event] = deque(maxlen=buffer_size)
        self._subscribers: set[Subscription] = set()
        self._complete_after = -1  # replay from a seq below this would miss events (see `lost`)

    @property
    def last_seq(self) -> int:
        return self._seq

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def deliver(self, event: Event) -> None:
        """Keep the event (its seq already set, above every earlier one) and offer it to every subscriber."""
        self._seq = event.seq
        self._buffer.append(event)
        for subscription in tuple(self._subscribers):
            subscription.offer(event)

    def lost(self) -> None:
        """Events may have been lost before the next one: every client is told to resync, never left with a gap."""
        self._complete_after = self._seq + 1  # a client at or before the last seq here missed something
        for subscription in tuple(self._subscribers):
            subscription.fall_behind()

    def subscribe(self, since: int | None, accept: Callable[[Event], bool]) -> Subscription:
        """Register first, then take the replay from the buffer: nothing published in between is lost."""
        subscription = Subscription(self, accept)
        self._subscribers.add(subscription)
        if since is None:
            return subscription
        oldest = self._buffer[0].seq if self._buffer else self._seq + 1
        if since > self._seq or since < oldest - 1 or since < self._complete_after:
            subscription.resync = True
            return subscription
        subscription.replay = [e for e in self._buffer if e.seq > since and accept(e)]
        return subscription

    async def start(self) -> None:
        """Connect to whatever carries events between processes (nothing, in one process)."""

    async def close(self) -> None:
        for subscription in tuple(self._subscribers):
            subscription.close()


def clock_seq() -> int:
    """A starting seq above any issued before: the clock in ms × 1000 outruns any real event rate."""
    return int(time.time() * 1000) * 1000


class InProcessBus(LocalFanout):
    async def publish(self, event: Event) -> Event:
        event.seq = self._seq + 1
        self.deliver(event)
        return event
