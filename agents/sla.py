"""SLA policies per inbox (first response, next response, resolution targets) and their breach events.

A periodic check replays each candidate conversation's events (agents.metrics.derive) to find its current wait
and cycle, and when a target has passed writes one `sla_breached` conversation event per wait (or per cycle, for
resolution) with `data.target`, `data.target_seconds` and the event that started the clock. The event's time is
the moment the target passed (not when the check ran), so reports and the holder at that moment are exact even
if the server was down. Targets counted in business hours use the inbox's hours. Breaches are published to the
inbox's readers as `sla.breached`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from agents import business_hours
from agents.metrics import State
from agents.models import SlaPolicy
from inbox.bus import Event, EventBus
from inbox.models import Conversation, ConversationEvent, Inbox
from inbox.processing import record

log = logging.getLogger(__name__)
TARGETS = ("first_response", "next_response", "resolution")
MAX_PER_CHECK = 1000
MAX_SECONDS = 366 * 86_400  # a target beyond a year means none; the worker adds it to the clock


def policy_json(policy: SlaPolicy | None, inbox_id: int) -> dict[str, Any]:
    return {
        "inbox_id": inbox_id,
        "first_response_seconds": policy.first_response_seconds if policy else None,
        "next_response_seconds": policy.next_response_seconds if policy else None,
        "resolution_seconds": policy.resolution_seconds if policy else None,
        "business_hours": policy.business_hours if policy else False,
    }


def validate(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValueError("an SLA policy is an object")
    clean: dict[str, Any] = {}
    for name in ("first_response_seconds", "next_response_seconds", "resolution_seconds"):
        value = raw.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SECONDS
        ):
            raise ValueError(f"{name} must be a number of seconds from 1 to {MAX_SECONDS:,} (a year) or null")
        clean[name] = value
    flag = raw.get("business_hours", False)
    if not isinstance(flag, bool):
        raise ValueError("business_hours must be true or false")
    clean["business_hours"] = flag
    unknown = set(raw) - set(clean) - {"inbox_id"}
    if unknown:
        raise ValueError(f"unknown SLA fields: {', '.join(sorted(unknown))}")
    return clean


def due_at(start: datetime, seconds: int, hours: business_hours.Hours | None) -> datetime:
    """When `seconds` of (business) time have passed since `start`."""
    if hours is None or hours.always_open:
        return start + timedelta(seconds=seconds)
    at, left = start, float(seconds)
    for _ in range(400):  # at most a year of days
        opens = hours.next_open(at)
        if opens is None:
            return start + timedelta(days=3650)
        # Walk to the end of this open stretch (or until the target is reached within it).
        step = timedelta(minutes=15)
        at = opens
        while hours.is_open(at):
            span = min(step, timedelta(seconds=left))
            inside = hours.seconds_between(at, at + span)
            if inside >= left:
                return at + timedelta(seconds=left)
            left -= inside
            at += span
    return at


def breaches_due(state: State, policy: SlaPolicy, at: datetime, hours: business_hours.Hours | None) -> list:
    """(target, seconds, due moment, clock-start event id) for every target passed by `at`."""
    found = []
    if state.wait is not None:
        target = "first_response" if state.wait.kind == "first_response" else "next_response"
        seconds = policy.first_response_seconds if target == "first_response" else policy.next_response_seconds
        if seconds:
            due = due_at(state.wait.start, seconds, hours)
            if due <= at:
                found.append((target, seconds, due, state.wait.event_id))
    if state.cycle_open and state.human_start is not None and policy.resolution_seconds:
        due = due_at(state.human_start, policy.resolution_seconds, hours)
        if due <= at:
            found.append(("resolution", policy.resolution_seconds, due, state.human_start_event))
    return found


# Waits and cycles that ended this recently are checked too: a tick runs every few seconds, and a wait that ended
# between two ticks (the agent answered after the target, or before the tick saw it waiting) still breached.
ENDED_LOOKBACK = timedelta(minutes=2)
ENDED_TARGETS = {"first_response": "first_response", "reply": "next_response", "resolution": "resolution"}


def breaches_ended(state: State, policy: SlaPolicy, since: datetime, hours: business_hours.Hours | None) -> list:
    """(target, seconds, due moment, clock-start event id) for waits and cycles that ended since `since` after
    their target had passed; the same keys as `breaches_due` gives while they run, so none is written twice."""
    found = []
    for fact in state.facts:
        target = ENDED_TARGETS.get(fact.kind)
        if target is None or fact.at < since or fact.start_event_id is None:
            continue
        seconds = getattr(policy, f"{target}_seconds")
        if not seconds:
            continue
        duration = fact.value_bh if hours is not None and fact.value_bh is not None else fact.value
        if duration > seconds:
            start = fact.at - timedelta(seconds=fact.value)
            found.append((target, seconds, due_at(start, seconds, hours), fact.start_event_id))
    return found


class SlaChecker:
    def __init__(self, bus: EventBus, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.bus = bus
        self.clock = clock

    async def check(self) -> int:
        from agents.routing import conversation_state  # routing imports metrics; keep this module light

        at = self.clock()
        written = 0
        for policy in await SlaPolicy.all():
            targets = [
                s for s in (policy.first_response_seconds, policy.next_response_seconds, policy.resolution_seconds) if s
            ]
            if not targets:
                continue
            inbox = await Inbox.get(id=policy.inbox_id)
            hours = business_hours.from_settings(inbox.settings) if policy.business_hours else None
            # Cheap prefilter: open conversations whose clock could have run out (a wait or a cycle started early
            # enough); the replay decides.
            waiting_long = Q(status__in=["open", "pending"], last_incoming_at__lte=at - timedelta(seconds=min(targets)))
            # The customer may have written again since the wait began (last_incoming_at is the latest message):
            # conversations active lately are replayed too, and their waits that ended late are breaches.
            active_lately = Q(last_activity_at__gte=at - ENDED_LOOKBACK)
            convs = (
                await Conversation.filter(waiting_long | active_lately, inbox_id=policy.inbox_id)
                .limit(MAX_PER_CHECK)
                .values("id", "team_id")
            )
            for row in convs:
                state = await conversation_state(row["id"], hours)
                due = breaches_due(state, policy, at, hours)
                due += breaches_ended(state, policy, at - ENDED_LOOKBACK, hours)
                if due:
                    written += await self._record(row["id"], row["team_id"], due)
        return written

    async def _record(self, conv_id: int, team_id: int | None, due: list) -> int:
        existing = {
            ((e.data or {}).get("target"), (e.data or {}).get("clock_event_id"))
            for e in await ConversationEvent.filter(conversation_id=conv_id, kind="sla_breached")
        }
        written = 0
        conv = await Conversation.get(id=conv_id)
        for target, seconds, moment, clock_event in due:
            if (target, clock_event) in existing:
                continue
            async with in_transaction() as conn:
                await record(
                    conn,
                    conv,
                    "sla_breached",
                    "system",
                    None,
                    moment,
                    target=target,
                    target_seconds=seconds,
                    clock_event_id=clock_event,
                )
            written += 1
            await self.bus.publish(
                Event(
                    "sla.breached",
                    {
                        "conversation_id": conv_id,
                        "target": target,
                        "target_seconds": seconds,
                        "assignee_id": conv.assignee_id,
                    },
                    inbox_id=conv.inbox_id,
                    team_id=team_id,
                )
            )
        return written
