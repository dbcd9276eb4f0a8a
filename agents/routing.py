"""Routing: who gets a conversation once it waits for a person.

Per inbox (`Inbox.settings["routing"]`, see `validate`): `manual` (conversations wait unassigned until a person
assigns them), `round_robin` among online members (the one assigned longest ago goes next, so 1,000 assignments
spread within ±1), or `least_busy` (fewest open conversations). Each agent has a capacity (open conversations at
once: the agent's own, else the team's, else the inbox's). When nobody has room the conversation waits in the
**queue**: highest priority first (VIP 8, human_handoff 4, complaint 2, negative sentiment 1, summed), then first
come first served; the queue drains whenever capacity frees (a resolution, an unassignment, an agent coming online)
and on every tick.

The capacity check is atomic across processes: a claim first bumps the agent's `agent_states.claims` (which locks
that row until commit, in SQLite and Postgres alike), then counts the agent's open conversations, then takes the
conversation with a conditional UPDATE (`… WHERE assignee_id IS NULL`). Two claims for one agent are serialised by
the row lock, so two conversations arriving at once never both go over capacity, and one conversation is never
taken twice.

Every decision is an `assigned` (or `queued`) conversation event with its `reason`: `round_robin`, `least_busy`,
`previous_agent`, `reply_timeout`, `agent_offline`, `manual`. Reassignment: when the assignee has not answered a
waiting customer within `reassign_after_minutes`, or has been offline longer than `offline_grace_seconds`, the
conversation goes back to the queue (ahead of newer ones: it keeps its waiting time) and to someone else. A
conversation a person unassigns goes back to the queue too (`reroute`), and to someone other than its last agent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from aiohttp import web
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from agents import bots
from agents import presence as presence_rules
from agents.metrics import derive, rows_to_events
from agents.models import Team
from contacts.models import Contact
from inbox import db
from inbox.bus import Event, EventBus
from inbox.http import MAX_ID
from inbox.models import Conversation, ConversationEvent, Inbox, Message
from inbox.processing import record
from inbox.serialize import conversation_json
from inbox.sql import Sql, as_datetime, as_json

MAX_CAPACITY = 10_000_000  # conversations per agent, seconds of grace: far beyond any shop, within int64

log = logging.getLogger(__name__)

POLICIES = ("manual", "round_robin", "least_busy")
PRIORITY = {"vip": 8, "human_handoff": 4, "complaint": 2, "negative": 1}
VIP_SEGMENTS = frozenset({"vip", "champions"})
SETTINGS_CACHE_SECONDS = 5.0
DRAIN_BATCH = 50


class Router(Protocol):
    async def route(self, conversations: list[Conversation], messages: Sequence[Message] = ()) -> list[Event]:
        """Assign what the policy assigns; return the events to publish about it."""
        ...


class ManualRouting:
    async def route(self, conversations: list[Conversation], messages: Sequence[Message] = ()) -> list[Event]:
        return []


@dataclass(frozen=True)
class RoutingSettings:
    policy: str = "manual"
    capacity: int = 10
    reassign_after_minutes: int | None = None
    reassign_on_offline: bool = True
    offline_grace_seconds: int = 120
    previous_agent: bool = False
    team_id: int | None = None  # route this inbox's conversations to one team's members

    @property
    def automatic(self) -> bool:
        return self.policy != "manual"


class InvalidRouting(ValueError):
    pass


def validate(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidRouting("routing must be an object")
    unknown = set(raw) - set(RoutingSettings.__dataclass_fields__)
    if unknown:
        raise InvalidRouting(f"unknown routing settings: {', '.join(sorted(unknown))}")
    clean = {**RoutingSettings().__dict__, **raw}
    if clean["policy"] not in POLICIES:
        raise InvalidRouting(f"policy must be one of {', '.join(POLICIES)}")
    for name, low in (("capacity", 1), ("offline_grace_seconds", 0)):
        if not _is_int(clean[name]) or clean[name] < low or clean[name] > MAX_CAPACITY:
            raise InvalidRouting(f"{name} must be an integer from {low} to {MAX_CAPACITY:,}")
    # Bounded: the worker adds these to the clock, and an overflow there would stop routing for every inbox.
    for name, high in (("reassign_after_minutes", 525_600), ("team_id", MAX_ID)):
        if clean[name] is not None and (not _is_int(clean[name]) or not 1 <= clean[name] <= high):
            raise InvalidRouting(f"{name} must be an integer from 1 to {high:,} or null")
    for name in ("reassign_on_offline", "previous_agent"):
        if not isinstance(clean[name], bool):
            raise InvalidRouting(f"{name} must be true or false")
    return clean


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def settings_of(inbox_settings: dict[str, Any] | None) -> RoutingSettings:
    raw = (inbox_settings or {}).get("routing") or {}
    try:
        return RoutingSettings(**validate(raw))
    except InvalidRouting:
        log.warning("invalid routing settings %r: using manual", raw)
        return RoutingSettings()


def priority_of(reasons: Iterable[str]) -> int:
    return sum(PRIORITY.get(r, 0) for r in set(reasons))


def is_vip(contact: dict[str, Any] | None, labels: Iterable[str] = ()) -> bool:
    """The VIP hook: a `vip` label or tag, a truthy `vip` attribute, or a VIP segment (contacts' RFM names)."""
    if any(str(label).lower() == "vip" for label in labels):
        return True
    if not contact:
        return False
    tags = as_json(contact.get("tags")) or []
    attributes = as_json(contact.get("attributes")) or {}
    if any(str(tag).lower() == "vip" for tag in tags) or attributes.get("vip") is True:
        return True
    segment = attributes.get("segment") or attributes.get("rfm_segment")
    return isinstance(segment, str) and segment.lower() in VIP_SEGMENTS


@dataclass(slots=True)
class Candidate:
    user_id: int
    load: int
    capacity: int
    last_assigned_at: datetime | None

    @property
    def room(self) -> bool:
        return self.load < self.capacity


def now() -> datetime:
    return datetime.now(UTC)


class QueueRouter:
    """The routing service: `route` on the post-commit path, `drain` when capacity frees, `maintain` per tick."""

    def __init__(
        self,
        bus: EventBus,
        *,
        clock: Callable[[], datetime] = now,
        away_after: timedelta = presence_rules.DEFAULT_AWAY_AFTER,
        vip: Callable[[dict[str, Any] | None, Iterable[str]], bool] = is_vip,
    ) -> None:
        self.bus = bus
        self.clock = clock
        self.away_after = away_after
        self.vip = vip
        self._settings: dict[int, tuple[float, RoutingSettings]] = {}
        self._teams: dict[int, tuple[float, dict[str, Any]]] = {}

    # ------------------------------------------------------------------------------------------ settings

    def forget(self, inbox_id: int | None = None) -> None:
        if inbox_id is None:
            self._settings.clear()
            self._teams.clear()
        else:
            self._settings.pop(inbox_id, None)

    async def settings(self, inbox_id: int) -> RoutingSettings:
        cached = self._settings.get(inbox_id)
        if cached and time.monotonic() - cached[0] < SETTINGS_CACHE_SECONDS:
            return cached[1]
        inbox = await Inbox.get_or_none(id=inbox_id).only("id", "settings")
        value = settings_of(inbox.settings if inbox else None)
        self._settings[inbox_id] = (time.monotonic(), value)
        return value

    async def team_settings(self, team_id: int) -> dict[str, Any]:
        cached = self._teams.get(team_id)
        if cached and time.monotonic() - cached[0] < SETTINGS_CACHE_SECONDS:
            return cached[1]
        team = await Team.get_or_none(id=team_id).only("id", "settings")
        value = dict(team.settings or {}) if team else {}
        self._teams[team_id] = (time.monotonic(), value)
        return value

    # ------------------------------------------------------------------------------------------ route

    async def route(self, conversations: list[Conversation], messages: Sequence[Message] = ()) -> list[Event]:
        """Queue every waiting conversation of an automatic inbox, then hand out what capacity allows."""
        events: list[Event] = []
        reasons_by_conv: dict[int, set[str]] = {}
        for msg in messages:
            reasons = reasons_by_conv.setdefault(msg.conversation_id, set())
            if msg.sentiment == "negative":
                reasons.add("negative")
            if msg.intent in ("complaint", "human_handoff"):
                reasons.add(msg.intent)
        todo: list[tuple[Conversation, RoutingSettings]] = []
        for conv in conversations:
            if conv.assignee_id is not None or conv.status != "open":
                continue
            routing = await self.settings(conv.inbox_id)
            team_policy = (await self.team_settings(conv.team_id)).get("policy") if conv.team_id else None
            if routing.automatic or team_policy in ("round_robin", "least_busy"):
                todo.append((conv, routing))
        if not todo:
            return []
        # Whole contacts: the VIP check reads them, and the assignment events carry their summary.
        contacts = {c.id: c for c in await Contact.filter(id__in=list({c.contact_id for c, _ in todo}))}
        inboxes: set[int] = set()  # inboxes whose queue got entries: drained at the end
        pools: dict[tuple[int, int | None], list[tuple[Conversation, list[str]]]] = {}
        for conv, routing in todo:
            reasons = self._reasons(conv, contacts.get(conv.contact_id), reasons_by_conv.get(conv.id, set()))
            pools.setdefault((conv.inbox_id, conv.team_id or routing.team_id), []).append((conv, reasons))
        batch = {c.id: c for c, _ in todo}
        for (inbox_id, team_id), items in pools.items():
            leftovers = items
            # Nobody waiting ahead in this inbox: assign now where someone has room (one transaction for all).
            if inbox_id not in inboxes and not await _queue_has(inbox_id):
                leftovers = await self._assign_batch(inbox_id, team_id, items, batch, events, contacts)
            if leftovers:
                async with in_transaction() as conn:
                    for conv, reasons in leftovers:
                        await self.enqueue(conv, reasons, team_id=team_id, conn=conn)
                inboxes.add(inbox_id)
        for inbox_id in inboxes:
            events += await self.drain(inbox_id, batch=batch)
        return events

    def _reasons(self, conv: Conversation, contact: Contact | None, reasons: set[str]) -> list[str]:
        """The conversation's priority reasons: its messages' (`reasons`), its summary's and a VIP customer."""
        if conv.sentiment == "negative":
            reasons.add("negative")
        if conv.intent in ("complaint", "human_handoff"):
            reasons.add(conv.intent)
        vip_data = {"tags": contact.tags, "attributes": contact.attributes} if contact else None
        if self.vip(vip_data, conv.labels or []):
            reasons.add("vip")
        return sorted(reasons)

    async def _assign_batch(
        self,
        inbox_id: int,
        team_id: int | None,
        items: list[tuple[Conversation, list[str]]],
        batch: dict[int, Conversation],
        events: list[Event],
        contacts: dict[int, Contact],
    ) -> list[tuple[Conversation, list[str]]]:
        """Plan who gets each conversation (in order, as the policy rotates), claim them all in one transaction;
        returns what must wait in the queue."""
        routing = await self.settings(inbox_id)
        policy, capacity = await self._policy(routing, team_id)
        if policy == "manual":
            return items
        pool = await self.candidates(inbox_id, team_id, capacity)
        plan: list[tuple[Conversation, Candidate, str, list[str]]] = []
        base = datetime.now(UTC)
        for index, (conv, reasons) in enumerate(items):
            choice = await self._choose(conv.id, pool, policy, routing, set())
            if choice is None:
                break
            agent, reason = choice
            agent.load += 1
            agent.last_assigned_at = base + timedelta(microseconds=index)  # the rotation within the batch
            plan.append((conv, agent, reason, reasons))
        outcomes = await self.claim_many(plan, policy, team_id) if plan else []
        waiting = [(conv, reasons) for (conv, _, _, reasons), out in zip(plan, outcomes, strict=True) if out == "full"]
        for (conv, _, _, _), outcome in zip(plan, outcomes, strict=True):
            if outcome == "taken":  # built from what is in hand: no read per conversation
                events.append(
                    Event("conversation.assigned", conversation_json(conv, contacts.get(conv.contact_id)),
                          inbox_id=conv.inbox_id, team_id=conv.team_id)
                )  # fmt: skip
        return waiting + items[len(plan) :]

    async def claim_many(
        self, plan: list[tuple[Conversation, Candidate, str, list[str]]], policy: str, team_id: int | None
    ) -> list[str]:
        """Several claims in one transaction (one commit): every agent involved is locked first, loads are counted
        under the locks, so the capacity check holds across processes as in `claim`."""
        at = self.clock()
        outcomes: list[str] = []
        async with in_transaction() as conn:
            dialect = conn.capabilities.dialect
            agents = sorted({agent.user_id for _, agent, _, _ in plan})
            lock = Sql(dialect)
            marks = lock.marks(agents)
            await conn.execute_query(
                f"UPDATE agent_states SET claims = claims + 1 WHERE user_id IN ({marks})", lock.params
            )
            count = Sql(dialect)
            marks = count.marks(agents)
            loads = {
                r["assignee_id"]: r["n"]
                for r in await conn.execute_query_dict(
                    f"SELECT assignee_id, COUNT(*) AS n FROM conversations WHERE assignee_id IN ({marks})"
                    " AND status = 'open' GROUP BY assignee_id",
                    count.params,
                )
            }
            stamps: dict[int, datetime] = {}
            for conv, agent, reason, reasons in plan:
                load = loads.get(agent.user_id, 0)
                if load >= agent.capacity:
                    agent.load = load
                    outcomes.append("full")
                    continue
                new_team = conv.team_id if conv.team_id is not None else team_id
                take = Sql(dialect)
                changed = await conn.execute_query(
                    f"UPDATE conversations SET assignee_id = {take.p(agent.user_id)}, team_id = {take.p(new_team)}"
                    f" WHERE id = {take.p(conv.id)} AND assignee_id IS NULL AND status = 'open'",
                    take.params,
                )
                if not _affected(changed):
                    outcomes.append("gone")
                    continue
                loads[agent.user_id] = load + 1
                await record(
                    conn, conv, "assigned", "system", None, at, agent_id=agent.user_id, team_id=new_team,
                    previous={"agent_id": None, "team_id": conv.team_id}, reason=reason, policy=policy,
                    load=load + 1, capacity=agent.capacity, priority_reasons=reasons,
                )  # fmt: skip
                conv.assignee_id, conv.team_id = agent.user_id, new_team
                if agent.last_assigned_at is not None:
                    stamps[agent.user_id] = agent.last_assigned_at
                outcomes.append("taken")
            for user_id, stamp in stamps.items():
                update = Sql(dialect)
                await conn.execute_query(
                    f"UPDATE agent_states SET last_assigned_at = {update.p(stamp)} WHERE user_id = {update.p(user_id)}",
                    update.params,
                )
        return outcomes

    async def _policy(self, routing: RoutingSettings, team_id: int | None) -> tuple[str, int]:
        policy, capacity = routing.policy, routing.capacity
        if team_id is not None:
            team = await self.team_settings(team_id)
            policy = team.get("policy") or policy
            capacity = team.get("capacity") or capacity
        return policy, capacity

    async def enqueue(
        self,
        conv: Conversation,
        reasons: list[str],
        *,
        team_id: int | None = None,
        since: datetime | None = None,
        conn: BaseDBAsyncClient | None = None,
    ) -> bool:
        """Put the conversation in the queue (or raise its priority); True when it was not queued before."""
        conn = conn or db.connection()
        at = self.clock()
        priority = priority_of(r for r in reasons if not r.startswith("not:"))
        sql = Sql(conn.capabilities.dialect)
        values = {
            "conversation_id": conv.id,
            "inbox_id": conv.inbox_id,
            "team_id": team_id,
            "priority": priority,
            "reasons": orjson_dumps(reasons),
            "enqueued_at": since or at,
        }
        inserted = await conn.execute_query_dict(
            sql.insert(
                "routing_queue", values, on_conflict="(conversation_id) DO NOTHING", returning="conversation_id"
            ),
            sql.params,
        )
        if inserted:
            await record(conn, conv, "queued", "system", None, at, priority=priority, reasons=reasons, team_id=team_id)
            return True
        if priority:
            update = Sql(conn.capabilities.dialect)
            await conn.execute_query(
                f"UPDATE routing_queue SET priority = {update.p(priority)}, reasons = {update.p(orjson_dumps(reasons))}"
                f" WHERE conversation_id = {update.p(conv.id)} AND priority < {update.p(priority)}",
                update.params,
            )
        return False

    async def drain(self, inbox_id: int, batch: dict[int, Conversation] | None = None) -> list[Event]:
        """Assign queued conversations of the inbox, in queue order, while someone has room."""
        events: list[Event] = []
        routing = await self.settings(inbox_id)
        conn = db.connection()
        while True:
            sql = Sql(conn.capabilities.dialect)
            head = await conn.execute_query_dict(
                "SELECT conversation_id, team_id, reasons FROM routing_queue"
                f" WHERE inbox_id = {sql.p(inbox_id)} ORDER BY priority DESC, enqueued_at, conversation_id"
                f" LIMIT {DRAIN_BATCH}",
                sql.params,
            )
            if not head:
                return events
            pools: dict[int | None, list[Candidate]] = {}
            progressed = False
            for entry in head:
                team_id = entry["team_id"]
                policy, capacity = await self._policy(routing, team_id)
                if policy == "manual":
                    continue
                if team_id not in pools:
                    pools[team_id] = await self.candidates(inbox_id, team_id, capacity)
                pool = pools[team_id]
                reasons = as_json(entry["reasons"]) or []
                excluded = {int(r[4:]) for r in reasons if r.startswith("not:")}
                # Released because its agent went offline: anyone else first, but that agent again when they are
                # back and nobody else is (a one-person shop). A reply timeout excludes its agent for good.
                fallback = "agent_offline" in reasons and "reply_timeout" not in reasons
                choice = await self._choose(entry["conversation_id"], pool, policy, routing, excluded, fallback)
                if choice is None:
                    continue
                agent, reason = choice
                conv = (batch or {}).get(entry["conversation_id"])
                outcome = await self.claim(
                    entry["conversation_id"],
                    agent,
                    reason,
                    conv=conv,
                    policy=policy,
                    team_id=team_id,
                    reasons=as_json(entry["reasons"]) or [],
                )
                if outcome == "taken":
                    agent.load += 1
                    events.append(await self._assigned_event(entry["conversation_id"], batch))
                    progressed = True
                elif outcome == "full":
                    agent.load = agent.capacity  # someone else filled them meanwhile
                else:
                    progressed = True  # stale entry dropped
            if not progressed or len(head) < DRAIN_BATCH:
                return events

    async def _choose(
        self,
        conv_id: int,
        pool: list[Candidate],
        policy: str,
        routing: RoutingSettings,
        excluded: set[int],
        fallback: bool = False,
    ) -> tuple[Candidate, str] | None:
        free = [c for c in pool if c.room and c.user_id not in excluded]
        if not free and fallback:
            free = [c for c in pool if c.room]
        if not free:
            return None
        if routing.previous_agent:
            previous = await self.previous_agent(conv_id)
            for candidate in free:
                if candidate.user_id == previous:
                    return candidate, "previous_agent"
        epoch = datetime.min.replace(tzinfo=UTC)
        if policy == "least_busy":
            best = min(free, key=lambda c: (c.load, c.last_assigned_at or epoch, c.user_id))
        else:
            best = min(free, key=lambda c: (c.last_assigned_at or epoch, c.user_id))
        return best, policy

    async def candidates(self, inbox_id: int, team_id: int | None, default_capacity: int) -> list[Candidate]:
        """Available members (online, connected, not away) with their open load and capacity."""
        conn = db.connection()
        sql = Sql(conn.capabilities.dialect)
        if team_id is not None:
            members = f"SELECT user_id FROM team_members WHERE team_id = {sql.p(team_id)}"
        else:
            members = f"SELECT user_id FROM inbox_members WHERE inbox_id = {sql.p(inbox_id)}"
        away_cutoff = self.clock() - self.away_after
        rows = await conn.execute_query_dict(
            "SELECT s.user_id, s.capacity, s.last_assigned_at, s.last_active_at FROM agent_states s"
            f" JOIN users u ON u.id = s.user_id WHERE s.user_id IN ({members}) AND u.is_active"
            " AND s.status = 'online' AND s.connections > 0",
            sql.params,
        )
        rows = [r for r in rows if (as_datetime(r["last_active_at"]) or away_cutoff) >= away_cutoff]
        if not rows:
            return []
        loads = await self.loads([r["user_id"] for r in rows])
        return [
            Candidate(
                r["user_id"],
                loads.get(r["user_id"], 0),
                r["capacity"] or default_capacity,
                as_datetime(r["last_assigned_at"]),
            )
            for r in rows
        ]

    async def loads(self, user_ids: list[int]) -> dict[int, int]:
        if not user_ids:
            return {}
        conn = db.connection()
        sql = Sql(conn.capabilities.dialect)
        ids = sql.marks(user_ids)
        rows = await conn.execute_query_dict(
            f"SELECT assignee_id, COUNT(*) AS n FROM conversations WHERE assignee_id IN ({ids}) AND status = 'open'"
            " GROUP BY assignee_id",
            sql.params,
        )
        return {r["assignee_id"]: r["n"] for r in rows}

    async def previous_agent(self, conv_id: int) -> int | None:
        """The agent who last held any conversation of this customer (this one included)."""
        conn = db.connection()
        sql = Sql(conn.capabilities.dialect)
        rows = await conn.execute_query_dict(
            "SELECT e.data FROM conversation_events e JOIN conversations c ON c.id = e.conversation_id"
            f" WHERE c.contact_id = (SELECT contact_id FROM conversations WHERE id = {sql.p(conv_id)})"
            " AND e.kind = 'assigned' ORDER BY e.id DESC LIMIT 20",
            sql.params,
        )
        for row in rows:
            agent = (as_json(row["data"]) or {}).get("agent_id")
            if agent is not None:
                return agent
        return None

    async def claim(
        self,
        conv_id: int,
        agent: Candidate,
        reason: str,
        *,
        conv: Conversation | None = None,
        policy: str = "",
        team_id: int | None = None,
        reasons: list[str] | None = None,
    ) -> str:
        """Give the conversation to the agent if they still have room: "taken", "full" or "gone"."""
        at = self.clock()
        async with in_transaction() as conn:
            sql = Sql(conn.capabilities.dialect)
            locked = await conn.execute_query(
                f"UPDATE agent_states SET claims = claims + 1 WHERE user_id = {sql.p(agent.user_id)}", sql.params
            )
            if not _affected(locked):
                return "full"
            count = Sql(sql.dialect)
            rows = await conn.execute_query_dict(
                f"SELECT COUNT(*) AS n FROM conversations WHERE assignee_id = {count.p(agent.user_id)}"
                " AND status = 'open'",
                count.params,
            )
            load = rows[0]["n"]
            if load >= agent.capacity:
                agent.load = load
                return "full"
            current = await Conversation.filter(id=conv_id).using_db(conn).only("id", "inbox_id", "team_id").first()
            if current is None:
                return "gone"
            take = Sql(sql.dialect)
            team_id = current.team_id if current.team_id is not None else team_id
            changed = await conn.execute_query(
                f"UPDATE conversations SET assignee_id = {take.p(agent.user_id)}, team_id = {take.p(team_id)}"
                f" WHERE id = {take.p(conv_id)} AND assignee_id IS NULL AND status = 'open'",
                take.params,
            )
            gone = Sql(sql.dialect)
            await conn.execute_query(
                f"DELETE FROM routing_queue WHERE conversation_id = {gone.p(conv_id)}", gone.params
            )
            if not _affected(changed):
                return "gone"  # assigned by someone else, resolved or snoozed meanwhile: no longer queued
            # Round-robin order: the wall clock (strictly increasing between two claims), not the injected one.
            agent.last_assigned_at = datetime.now(UTC)
            stamp = Sql(sql.dialect)
            await conn.execute_query(
                f"UPDATE agent_states SET last_assigned_at = {stamp.p(agent.last_assigned_at)}"
                f" WHERE user_id = {stamp.p(agent.user_id)}",
                stamp.params,
            )
            await record(
                conn,
                current,
                "assigned",
                "system",
                None,
                at,
                agent_id=agent.user_id,
                team_id=team_id,
                previous={"agent_id": None, "team_id": current.team_id},
                reason=reason,
                policy=policy or reason,
                load=load + 1,
                capacity=agent.capacity,
                priority_reasons=[r for r in reasons or [] if not r.startswith("not:")],
            )
        if conv is not None:
            conv.assignee_id, conv.team_id = agent.user_id, team_id
        return "taken"

    async def _assigned_event(self, conv_id: int, batch: dict[int, Conversation] | None) -> Event:
        conv = await Conversation.get(id=conv_id).select_related("contact")
        if batch and conv_id in batch:
            batch[conv_id].assignee_id = conv.assignee_id
        return Event(
            "conversation.assigned",
            conversation_json(conv, conv.contact),
            inbox_id=conv.inbox_id,
            team_id=conv.team_id,
        )

    async def reroute(self, conv_id: int) -> list[Event]:
        """A conversation a person left unassigned (given up, or moved to a team without an agent), where routing is
        automatic: queued and offered to the next available agent, as a new one would be, but never straight back
        to the agent who just gave it up (they may still take it by hand). Not while the bot answers it."""
        conv = await Conversation.get_or_none(id=conv_id)
        if conv is None or conv.assignee_id is not None or conv.status != "open":
            return []
        routing = await self.settings(conv.inbox_id)
        team_id = conv.team_id or routing.team_id
        policy, _ = await self._policy(routing, team_id)
        if policy == "manual" or await bots.holds(conv):
            return []
        contact = await Contact.get_or_none(id=conv.contact_id)
        reasons = self._reasons(conv, contact, set())
        giver = await _given_up_by(conv_id)
        if giver is not None:
            reasons.append(f"not:{giver}")
        await self.enqueue(conv, reasons, team_id=team_id)
        return await self.drain(conv.inbox_id)

    # ------------------------------------------------------------------------------------------ reassignment

    async def release(self, conv_id: int, from_agent: int, reason: str, since: datetime | None) -> bool:
        """Take the conversation back from `from_agent` and queue it (ahead of newer ones) for someone else."""
        at = self.clock()
        async with in_transaction() as conn:
            conv = await Conversation.filter(id=conv_id).using_db(conn).first()
            if conv is None:
                return False
            changed = (
                await Conversation.filter(id=conv_id, assignee_id=from_agent, status="open")
                .using_db(conn)
                .update(assignee_id=None)
            )
            if not changed:
                return False
            routing = await self.settings(conv.inbox_id)
            await record(
                conn,
                conv,
                "assigned",
                "system",
                None,
                at,
                agent_id=None,
                team_id=conv.team_id,
                previous={"agent_id": from_agent, "team_id": conv.team_id},
                reason=reason,
            )
            conv.assignee_id = None
            await self.enqueue(
                conv, [reason, f"not:{from_agent}"], team_id=conv.team_id or routing.team_id, since=since, conn=conn
            )
        return True

    async def maintain(self) -> list[Event]:
        """One tick: reassign timed-out and offline agents' conversations, then drain every automatic queue."""
        events: list[Event] = []
        inboxes = await Inbox.all().only("id", "settings")
        automatic = {i.id: settings_of(i.settings) for i in inboxes}
        for inbox_id, routing in automatic.items():
            self._settings[inbox_id] = (time.monotonic(), routing)
        released: list[tuple[int, int]] = []
        # Only where the router assigns: in a manual inbox nobody would take a released conversation again.
        released += await self._timeouts(
            {k: v for k, v in automatic.items() if v.reassign_after_minutes and v.automatic}
        )
        released += await self._offline({k: v for k, v in automatic.items() if v.reassign_on_offline and v.automatic})
        for conv_id, _ in released:
            conv = await Conversation.get(id=conv_id).select_related("contact")
            events.append(
                Event(
                    "conversation.assigned",
                    conversation_json(conv, conv.contact),
                    inbox_id=conv.inbox_id,
                    team_id=conv.team_id,
                )
            )
        queued = await _queued_inboxes()
        for inbox_id in queued:
            events += await self.drain(inbox_id)
        return events

    async def _timeouts(self, inboxes: dict[int, RoutingSettings]) -> list[tuple[int, int]]:
        if not inboxes:
            return []
        at = self.clock()
        released = []
        shortest = min(r.reassign_after_minutes for r in inboxes.values() if r.reassign_after_minutes)
        cutoff = at - timedelta(minutes=shortest)
        # The customer wrote last (no reply since) and long enough ago: candidates, checked against the events.
        rows = await Conversation.filter(
            inbox_id__in=list(inboxes), status="open", assignee_id__isnull=False, last_incoming_at__lte=cutoff
        ).values("id", "inbox_id", "assignee_id", "last_incoming_at", "last_message_at")
        for row in rows[:500]:
            if row["last_message_at"] and row["last_incoming_at"] and row["last_message_at"] > row["last_incoming_at"]:
                continue
            limit = timedelta(minutes=inboxes[row["inbox_id"]].reassign_after_minutes or 0)
            state = await conversation_state(row["id"])
            wait = state.wait
            if wait is None or state.holder != row["assignee_id"]:
                continue
            held_since = max(wait.start, state.holder_since or wait.start)
            if at - held_since >= limit and await self.release(
                row["id"], row["assignee_id"], "reply_timeout", wait.start
            ):
                released.append((row["id"], row["assignee_id"]))
        return released

    async def _offline(self, inboxes: dict[int, RoutingSettings]) -> list[tuple[int, int]]:
        if not inboxes:
            return []
        at = self.clock()
        released = []
        grace = min(r.offline_grace_seconds for r in inboxes.values())
        gone = await presence_rules.offline_agents(at - timedelta(seconds=grace))
        if not gone:
            return []
        rows = await Conversation.filter(inbox_id__in=list(inboxes), status="open", assignee_id__in=list(gone)).values(
            "id", "inbox_id", "assignee_id", "last_incoming_at"
        )
        for row in rows:
            since_offline = gone[row["assignee_id"]]
            if at - since_offline < timedelta(seconds=inboxes[row["inbox_id"]].offline_grace_seconds):
                continue
            if await self.release(row["id"], row["assignee_id"], "agent_offline", row["last_incoming_at"]):
                released.append((row["id"], row["assignee_id"]))
        return released


ROUTER = web.AppKey("router", QueueRouter)


async def _queue_has(inbox_id: int) -> bool:
    conn = db.connection()
    sql = Sql(conn.capabilities.dialect)
    rows = await conn.execute_query_dict(
        f"SELECT 1 AS x FROM routing_queue WHERE inbox_id = {sql.p(inbox_id)} LIMIT 1", sql.params
    )
    return bool(rows)


async def _given_up_by(conv_id: int) -> int | None:
    """The agent a person just took the conversation from (by hand), if its last assignment event says so."""
    last = await ConversationEvent.filter(conversation_id=conv_id, kind="assigned").order_by("-id").only("data").first()
    data = last.data if last is not None else {}
    if data.get("reason") != "manual" or data.get("agent_id") is not None:
        return None
    return (data.get("previous") or {}).get("agent_id")


async def _queued_inboxes() -> list[int]:
    rows = await db.connection().execute_query_dict("SELECT DISTINCT inbox_id FROM routing_queue")
    return [r["inbox_id"] for r in rows]


async def conversation_state(conv_id: int, hours: Any = None) -> Any:
    """The metrics state machine replayed over one conversation's events: its current wait, holder, cycle."""
    conn = db.connection()
    sql = Sql(conn.capabilities.dialect)
    rows = await conn.execute_query_dict(
        "SELECT id, kind, actor_type, actor_id, occurred_at, data FROM conversation_events"
        f" WHERE conversation_id = {sql.p(conv_id)}",
        sql.params,
    )
    for row in rows:
        row["occurred_at"] = as_datetime(row["occurred_at"])
        row["data"] = as_json(row["data"])
    return derive(rows_to_events(rows), hours)


def _affected(result: Any) -> int:
    """Rows changed by `execute_query` (tortoise returns (rowcount, rows) for both dialects)."""
    if isinstance(result, tuple):
        return int(result[0] or 0)
    return int(result or 0)


def orjson_dumps(value: Any) -> str:
    import orjson

    return orjson.dumps(value).decode()
