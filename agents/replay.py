"""Where each conversation's replay stopped, so the projector goes on from there instead of replaying it whole.

`derive` is a fold: a fact comes from one event and the state before it, and is never changed afterwards. So
when every new event of a conversation sorts after the last one replayed (`occurred_at`, then `id`), going on
from the kept state gives exactly the facts a full replay would give for them, and the older facts stand. A
conversation with hundreds of events that gets one more message costs one event, not hundreds, each tick.

The kept state is only a shortcut, checked before each use; anything it cannot vouch for is replayed in full:
- an event that sorts before the last one replayed (a late `occurred_at`, or a late commit on Postgres): the
  conversation's event count then differs from the events replayed plus the new ones, or the order check fails;
- changed business hours (every `_bh` figure of the conversation changes);
- a process that never replayed the conversation (a restart, another server process, an entry let go).
The facts of the new events are deleted before they are written (`end_event_id` is the event that made each), so
a step repeated, or one another process already did, changes nothing.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from agents.business_hours import Hours
from agents.metrics import EventRow, State, derive_from
from inbox import db

# Conversations whose state is kept (≈ 650 bytes each, ≈ 13 MB in all), the least recently used let go first: far
# more than the conversations that change within a few ticks, which are the ones that gain.
KEPT = 20_000


@dataclass(slots=True)
class Stop:
    state: State  # without facts: those are in `metric_facts`
    hours: Hours
    events: int  # events replayed
    last_id: int  # the highest event id replayed
    last_at: datetime  # the latest `occurred_at` replayed


@dataclass(slots=True)
class Replayed:
    """What one step replayed of a conversation: kept once the step's transaction has committed."""

    conv_id: int
    state: State
    hours: Hours
    events: list[EventRow]  # all its events, or those after `before`
    before: Stop | None


class Stops:
    """Each conversation's `Stop`, least recently used first."""

    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self._stops: OrderedDict[int, Stop] = OrderedDict()
        self._generation = db.generation()

    def get(self, conv_id: int, hours: Hours) -> Stop | None:
        stop = self._current().get(conv_id)
        if stop is None or stop.hours != hours:
            return None
        self._stops.move_to_end(conv_id)
        return stop

    def replayed_events(self, conv_id: int) -> int:
        """How many of the conversation's events a kept state has replayed already (0 if none is kept)."""
        stop = self._current().get(conv_id)
        return stop.events if stop is not None else 0

    def _current(self) -> OrderedDict[int, Stop]:
        if self._generation != db.generation():  # another database: its conversations share the ids only
            self.forget()
            self._generation = db.generation()
        return self._stops

    def keep(self, replayed: Iterable[Replayed]) -> None:
        """Remember where each replay left its conversation (only after its facts are committed: a kept state
        whose facts were rolled back would skip them for good)."""
        for r in replayed:
            before = r.before
            if not r.events and before is None:  # a conversation with no events (deleted)
                self._stops.pop(r.conv_id, None)
                continue
            r.state.facts = []  # written already; keeping them would grow with the conversation
            ids, times = [e.id for e in r.events], [e.occurred_at for e in r.events]
            if before is not None:
                ids.append(before.last_id)
                times.append(before.last_at)
            count = len(r.events) + (before.events if before is not None else 0)
            self._stops[r.conv_id] = Stop(r.state, r.hours, count, max(ids), max(times))
            self._stops.move_to_end(r.conv_id)
        while len(self._stops) > self.kept:
            self._stops.popitem(last=False)

    def forget(self) -> None:
        self._stops.clear()

    def __len__(self) -> int:
        return len(self._stops)


def go_on(stop: Stop, new: list[EventRow], total: int) -> State | None:
    """The state after `new` (the conversation's events with ids above `stop.last_id`), or None when the kept
    state cannot vouch for them: `total` (the conversation's event count, read with them) is not the events
    replayed plus the new ones, or one of them sorts before the last one replayed."""
    if stop.events + len(new) != total or any(e.occurred_at < stop.last_at for e in new):
        return None
    state = copy.copy(stop.state)  # the kept one stays as it was if this step's transaction fails
    state.wait = copy.copy(state.wait)
    state.facts = []
    return derive_from(state, new, stop.hours)
