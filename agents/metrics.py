"""Agent metrics derived from the append-only `conversation_events`, never from live state.

`derive(events)` replays one conversation's events in order (`occurred_at`, then `id`) and yields facts: each is a
number with the agent it belongs to and the two events that produced it. The projector (agents/reports.py) stores
them in `metric_facts`, which is only a cache: deleting it and replaying the events gives the same rows.

Events read (kind — fields used):
- `opened` — a new conversation: a new cycle starts.
- `reopened` — the customer wrote to a resolved or snoozed conversation (`data.previous`); after `resolved` a new
  cycle starts (its own first response and resolution), after `snoozed` the cycle goes on.
- `message_in` — a customer message (`occurred_at` is the platform's time).
- `message_out` — `actor_type` `agent` (a person: `actor_id` is the user; an echo of a message written in the
  platform's own tools has `actor_id` null and `data.origin == "platform"`) or `bot` (`data.bot_kind`: `welcome`,
  `away`, `faq`, `fallback`, `handoff`; absent in events written before 2026-11-28). `data.refused`: a reply the
  platform's window forbade, stored as failed and never sent: ignored, the customer got nothing.
- `note` — a private note: never a reply, never ends a wait.
- `assigned` — `data.agent_id`, `data.team_id`, `data.reason`: who holds the conversation from then on.
- `status_changed` — `data.status`, `data.previous`: `resolved` closes the cycle; leaving `resolved` opens one;
  `data.reason == "csat_answer"` closes the cycle that the customer's rating reopened, without any figure.
- `message_out` with `actor_type` `system` (the CSAT survey) is neither a human nor a bot reply: ignored.
- `handoff` — the bot hands the conversation to people: the customer waits for a human from this moment.
- `sla_breached` — `data.target` (`first_response|next_response|resolution`), written by agents/sla.py.
- `csat_answered` — `data.rating` (1–5), `data.agent_id` (who held it at resolution), from agents/csat.py.

Rules:
- A *wait* starts at the first customer message that nobody has answered yet (several customer messages before one
  reply are one wait, from the first), or at a hand-off. It ends at the next human reply: `first_response` for the
  first wait of a cycle, `reply` for the later ones (disjoint, so no wait is counted twice).
- A bot's welcome or away message ("we will answer soon") answers nothing: the wait goes on, and the bot does not
  hold the conversation because of it.
- Bot time is excluded: a customer message the bot answers is not a wait; while the bot holds the conversation
  customer messages do not start waits; a hand-off starts one. Bot messages after the hand-off (e.g. "I am
  transferring you") do not end it. A person writing during bot mode takes over (no sample: nobody waited for them).
- Each number belongs to the agent who held the conversation during that interval: `held` is the part of the wait
  since the current holder got it (a reassignment mid-wait starts the new holder's clock; the earlier holder gets
  a `reassigned` fact instead). `value` is the customer's whole wait, used for inbox/team/channel/day figures.
  An unassigned wait belongs to whoever answers it.
- Echoes (`origin="platform"`: the page answered from Facebook's own inbox or phone app) are human replies: the
  customer got an answer, so the wait ends and inbox-level figures count it. hopthu cannot know which person typed
  them, so they belong to no agent (`agent_id` null, shown as "outside hopthu"); the holder gets no sample.
- `resolution`: from the first moment a person was involved in the cycle (first wait or first human message) to
  `resolved`, for the holder at resolution (else the agent who resolved). A cycle no person touched gives
  `bot_resolution` instead.
- `message` (one per human reply, for the sender), `reassigned` (for the agent who lost the conversation to another
  agent, or to the queue by `reply_timeout`/`agent_offline`),
  `sla_breach` (for the holder when the target passed), `csat` (value = rating).
- Business hours: every duration also has a `_bh` twin counting only the inbox's business hours.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agents.business_hours import BusinessHours, Hours

DURATION_KINDS = ("first_response", "reply", "resolution")
COUNT_KINDS = ("message", "reassigned", "sla_breach", "bot_resolution")
FACT_KINDS = (*DURATION_KINDS, *COUNT_KINDS, "csat")
# Routing takes a conversation away (to queue it for someone else) with these reasons: a reassignment even when
# it passes through "unassigned"; an agent giving a conversation up by hand is not one.
REASSIGN_REASONS = frozenset({"reply_timeout", "agent_offline"})
COURTESY_KINDS = frozenset({"welcome", "away"})  # bot messages that answer nothing


def answers_nothing(data: dict[str, Any]) -> bool:
    """A `message_out` the customer got no answer from: never sent (refused by the window) or a bot's courtesy
    message. The reports, the live dashboard and the conversation's last message read it alike."""
    return bool(data.get("refused")) or data.get("bot_kind") in COURTESY_KINDS


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    kind: str
    actor_type: str
    actor_id: int | None
    occurred_at: datetime
    data: dict[str, Any]


@dataclass(slots=True)
class Fact:
    kind: str
    agent_id: int | None
    team_id: int | None
    value: float
    held: float | None
    value_bh: float | None
    held_bh: float | None
    at: datetime
    start_event_id: int | None
    end_event_id: int | None


@dataclass(slots=True)
class Wait:
    start: datetime
    kind: str  # first_response | reply
    event_id: int
    from_handoff: bool = False


@dataclass(slots=True)
class State:
    """Where the conversation stands after its last event: used by SLA checks and reassignment too."""

    holder: int | None = None
    holder_since: datetime | None = None
    team_id: int | None = None
    status: str = "open"
    cycle_open: bool = False
    first_done: bool = False
    human_start: datetime | None = None
    human_start_event: int | None = None
    bot_mode: bool = False
    handed_off: bool = False
    wait: Wait | None = None
    last_human_reply_at: datetime | None = None
    facts: list[Fact] = field(default_factory=list)

    def new_cycle(self) -> None:
        self.cycle_open, self.first_done = True, False
        self.human_start = self.human_start_event = None
        self.bot_mode = self.handed_off = False
        self.wait = None


def derive(events: Iterable[EventRow], hours: Hours | None = None) -> State:
    return derive_from(State(), events, hours or BusinessHours())


def derive_from(state: State, events: Iterable[EventRow], hours: Hours) -> State:
    """Go on from `state` with `events`, which must all sort after those that made it (agents/replay.py)."""
    for event in sorted(events, key=lambda e: (e.occurred_at, e.id)):
        _apply(state, event, hours)
    return state


def _duration(hours: Hours, start: datetime, end: datetime) -> tuple[float, float]:
    return (end - start).total_seconds(), hours.seconds_between(start, end)


def _apply(s: State, e: EventRow, hours: Hours) -> None:
    kind, at, data = e.kind, e.occurred_at, e.data or {}
    if kind == "message_out" and answers_nothing(data):
        return  # never sent, or a courtesy message: the customer still waits for an answer
    if kind == "opened":
        s.status = "open"
        s.new_cycle()
    elif kind == "reopened":
        previous, s.status = data.get("previous"), "open"
        if previous == "resolved" or not s.cycle_open:
            s.new_cycle()
    elif kind == "message_in":
        if not s.cycle_open:
            s.new_cycle()
        if s.bot_mode or s.wait is not None:
            return
        s.wait = Wait(at, "reply" if s.first_done else "first_response", e.id)
        _touch_human(s, at, e.id)
    elif kind == "handoff":
        if not s.cycle_open:
            s.new_cycle()
        already_human = s.handed_off  # a person took over before: the hand-off is only a formality then
        s.bot_mode, s.handed_off = False, True
        if not already_human and (s.wait is None or not s.wait.from_handoff):
            start_kind = "reply" if s.first_done else "first_response"
            s.wait = Wait(at, start_kind, e.id, from_handoff=True)
        _touch_human(s, at, e.id)
    elif kind == "message_out" and e.actor_type == "bot":
        if s.handed_off:
            return  # the bot's "transferring you" after the hand-off: the customer still waits for a person
        s.bot_mode = True
        if s.wait is not None and not s.wait.from_handoff:
            if s.human_start_event == s.wait.event_id:
                s.human_start = s.human_start_event = None  # nobody but the bot was involved after all
            s.wait = None  # the bot answered: not a wait for a person
    elif kind == "message_out" and e.actor_type == "agent":
        _human_reply(s, e, hours)
    elif kind == "assigned":
        agent_id = data.get("agent_id")
        taken_away = agent_id is not None or data.get("reason") in REASSIGN_REASONS
        if s.holder is not None and agent_id != s.holder and taken_away:
            s.facts.append(Fact("reassigned", s.holder, s.team_id, 1.0, None, None, None, at, None, e.id))
        if agent_id != s.holder:
            s.holder, s.holder_since = agent_id, at
        s.team_id = data.get("team_id")
    elif kind == "status_changed":
        status, previous = data.get("status"), data.get("previous", s.status)
        if status == "resolved" and data.get("reason") == "csat_answer":
            s.cycle_open, s.wait = False, None  # the customer only rated: that reopening was no new cycle
        elif status == "resolved" and s.status != "resolved":
            _resolve(s, e, hours)
        elif previous == "resolved" and status != "resolved":
            s.new_cycle()
        s.status = status or s.status
    elif kind == "sla_breached":
        s.facts.append(Fact("sla_breach", s.holder, s.team_id, 1.0, None, None, None, at, None, e.id))
    elif kind == "csat_answered":
        rating = data.get("rating")
        if isinstance(rating, int) and 1 <= rating <= 5:
            agent = data.get("agent_id", s.holder)
            s.facts.append(Fact("csat", agent, s.team_id, float(rating), None, None, None, at, None, e.id))


def _touch_human(s: State, at: datetime, event_id: int) -> None:
    if s.human_start is None:
        s.human_start, s.human_start_event = at, event_id


def _human_reply(s: State, e: EventRow, hours: Hours) -> None:
    at = e.occurred_at
    sender = e.actor_id  # None for an echo written outside hopthu
    if not s.cycle_open:
        s.new_cycle()
    s.facts.append(Fact("message", sender, s.team_id, 1.0, None, None, None, at, None, e.id))
    _touch_human(s, at, e.id)
    s.last_human_reply_at = at
    if s.bot_mode:
        s.bot_mode, s.handed_off = False, True  # a person took over from the bot
        s.first_done = True
        return
    wait, s.wait = s.wait, None
    s.first_done = True
    if wait is None:
        return
    value, value_bh = _duration(hours, wait.start, at)
    if sender is None:
        owner, held, held_bh = None, None, None  # an echo: nobody here to credit
    elif s.holder is not None:
        owner = s.holder
        since = max(wait.start, s.holder_since or wait.start)
        held, held_bh = _duration(hours, since, at)
    else:
        owner, held, held_bh = sender, value, value_bh
    s.facts.append(Fact(wait.kind, owner, s.team_id, value, held, value_bh, held_bh, at, wait.event_id, e.id))


def _resolve(s: State, e: EventRow, hours: Hours) -> None:
    at = e.occurred_at
    if s.human_start is None:
        s.facts.append(Fact("bot_resolution", None, s.team_id, 1.0, None, None, None, at, None, e.id))
    else:
        owner = s.holder if s.holder is not None else (e.actor_id if e.actor_type == "agent" else None)
        value, value_bh = _duration(hours, s.human_start, at)
        s.facts.append(
            Fact("resolution", owner, s.team_id, value, value, value_bh, value_bh, at, s.human_start_event, e.id)
        )
    s.cycle_open, s.wait = False, None


def rows_to_events(rows: Sequence[dict[str, Any]]) -> list[EventRow]:
    return [
        EventRow(r["id"], r["kind"], r["actor_type"], r["actor_id"], r["occurred_at"], r["data"] or {}) for r in rows
    ]
