"""What supervisors watch live, and the background work that keeps routing, presence, SLA and metrics moving.

`live_snapshot` answers `GET /api/reports/live` and is pushed to supervisors over the WebSocket as `queue.live`
frames whenever it changes (checked every tick): queue length, longest wait, the queue itself, agents online
with their load and capacity, and the open / unassigned / waiting / unanswered counts. This is live state on
purpose (it is about now); the performance reports come from events only (agents/reports.py).

`Supervision` runs in each server process: a tick (presence idle → away, reassignment on timeout or offline,
queue drains, SLA breaches, metric projection, the live push) and a listener on the bus that drains queues as soon
as capacity frees (a resolution, an unassignment, an agent coming online) and sends the CSAT survey on resolution.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from agents import reports
from agents.csat import Csat
from agents.presence import Presence
from agents.routing import QueueRouter
from agents.sla import SlaChecker
from inbox import db
from inbox.bus import Event, EventBus
from inbox.models import Conversation
from inbox.serialize import iso
from inbox.sql import Sql, as_datetime, as_json

log = logging.getLogger(__name__)
QUEUE_PREVIEW = 50


async def live_snapshot(presence: Presence, inbox_id: int | None = None, clock: Callable[[], datetime] | None = None):
    at = (clock or (lambda: datetime.now(UTC)))()
    conn = db.connection()
    sql = Sql(conn.capabilities.dialect)
    scope = f" AND inbox_id = {sql.p(inbox_id)}" if inbox_id is not None else ""
    queue = await conn.execute_query_dict(
        "SELECT conversation_id, inbox_id, team_id, priority, reasons, enqueued_at FROM routing_queue"
        f" WHERE 1 = 1{scope} ORDER BY priority DESC, enqueued_at, conversation_id",
        sql.params,
    )
    oldest = min((as_datetime(q["enqueued_at"]) for q in queue), default=None)
    counts_sql = Sql(sql.dialect)
    scope = f" AND c.inbox_id = {counts_sql.p(inbox_id)}" if inbox_id is not None else ""
    waiting = (
        "c.last_incoming_at IS NOT NULL AND (c.last_message_at IS NULL OR c.last_message_at <= c.last_incoming_at)"
    )
    no_reply = (
        "NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.direction = 'out'"
        " AND m.sender_type = 'agent' AND m.private = FALSE"
        " AND (m.delivery_status IS NULL OR m.delivery_status <> 'failed'))"  # a failed reply answered nothing
    )
    counts = (
        await conn.execute_query_dict(
            "SELECT COUNT(*) AS open,"
            " SUM(CASE WHEN c.assignee_id IS NULL THEN 1 ELSE 0 END) AS unassigned,"
            f" SUM(CASE WHEN {waiting} THEN 1 ELSE 0 END) AS waiting,"
            # Counted here, not from the preview list below, which stops at 200.
            f" SUM(CASE WHEN {waiting} AND {no_reply} THEN 1 ELSE 0 END) AS unanswered"
            f" FROM conversations c WHERE c.status = 'open'{scope}",
            counts_sql.params,
        )
    )[0]
    unanswered_sql = Sql(sql.dialect)
    scope = f" AND c.inbox_id = {unanswered_sql.p(inbox_id)}" if inbox_id is not None else ""
    unanswered = await conn.execute_query_dict(
        "SELECT c.id, c.inbox_id, c.assignee_id, c.last_incoming_at FROM conversations c"
        f" WHERE c.status = 'open' AND {waiting} AND {no_reply}{scope} ORDER BY c.last_incoming_at LIMIT 200",
        unanswered_sql.params,
    )
    states = await presence.snapshot()
    loads_sql = Sql(sql.dialect)
    scope = f" AND inbox_id = {loads_sql.p(inbox_id)}" if inbox_id is not None else ""
    loads = {
        r["assignee_id"]: r["n"]
        for r in await conn.execute_query_dict(
            "SELECT assignee_id, COUNT(*) AS n FROM conversations WHERE status = 'open' AND assignee_id IS NOT NULL"
            f"{scope} GROUP BY assignee_id",
            loads_sql.params,
        )
    }
    users = {
        r["id"]: r
        for r in await conn.execute_query_dict("SELECT id, name, role FROM users WHERE is_active ORDER BY id")
    }
    agents = []
    for user_id, user in users.items():
        state = states.get(user_id, {"status": "offline", "chosen": "online", "capacity": None})
        if state["status"] == "offline" and not loads.get(user_id):
            continue
        agents.append(
            {
                "id": user_id,
                "name": user["name"],
                "role": user["role"],
                "presence": state["status"],
                "load": loads.get(user_id, 0),
                "capacity": state["capacity"],
            }
        )
    return {
        "at": iso(at),
        "queue": {
            "length": len(queue),
            "longest_waiting_seconds": round((at - oldest).total_seconds(), 3) if oldest else 0,
            "items": [
                {
                    "conversation_id": q["conversation_id"],
                    "inbox_id": q["inbox_id"],
                    "team_id": q["team_id"],
                    "priority": q["priority"],
                    "reasons": [r for r in as_json(q["reasons"]) or [] if not r.startswith("not:")],
                    "waiting_seconds": round((at - as_datetime(q["enqueued_at"])).total_seconds(), 3),
                }
                for q in queue[:QUEUE_PREVIEW]
            ],
        },
        "online_agents": sum(1 for a in agents if a["presence"] == "online"),
        "agents": agents,
        "counts": {
            "open": counts["open"] or 0,
            "unassigned": counts["unassigned"] or 0,
            "waiting": counts["waiting"] or 0,
            "unanswered": counts["unanswered"] or 0,
        },
        "unanswered": [
            {
                "conversation_id": r["id"],
                "inbox_id": r["inbox_id"],
                "assignee_id": r["assignee_id"],
                "waiting_seconds": round((at - as_datetime(r["last_incoming_at"])).total_seconds(), 3),
            }
            for r in unanswered[:QUEUE_PREVIEW]
        ],
    }


def _fingerprint(snapshot: dict[str, Any]) -> Any:
    """What changes the picture (not the ever-growing waiting seconds)."""
    return (
        [(q["conversation_id"], q["priority"]) for q in snapshot["queue"]["items"]],
        snapshot["queue"]["length"],
        [(a["id"], a["presence"], a["load"], a["capacity"]) for a in snapshot["agents"]],
        tuple(snapshot["counts"].values()),
        [u["conversation_id"] for u in snapshot["unanswered"]],
    )


class Supervision:
    def __init__(
        self,
        bus: EventBus,
        router: QueueRouter,
        presence: Presence,
        sla: SlaChecker,
        csat: Csat,
        *,
        tick_seconds: float = 5.0,
        watched: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self.bus, self.router, self.presence, self.sla, self.csat = bus, router, presence, sla, csat
        self.tick_seconds = tick_seconds
        # Live frames go out only while a supervisor is connected to this process: nobody to tell otherwise.
        self.watched = watched
        self._tasks: list[asyncio.Task[None]] = []
        self._last_live: Any = None
        self._subscription: Any = None

    def start(self) -> None:
        self._subscription = self.bus.subscribe(None, self._interesting)
        self._tasks = [
            asyncio.create_task(self._ticker(), name="supervision-tick"),
            asyncio.create_task(self._listen(), name="supervision-listen"),
        ]

    async def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @staticmethod
    def _interesting(event: Event) -> bool:
        if event.type == "presence":
            return event.data.get("status") == "online"
        if event.type == "conversation.assigned":
            return True  # assigned by hand while queued: the queue row goes
        if event.type == "conversation.updated":
            return event.data.get("status") == "resolved" or event.data.get("assignee_id") is None
        return False

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick_seconds)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("supervision tick failed")

    async def tick(self) -> None:
        await self.presence.tick()
        for event in await self.router.maintain():
            await self.bus.publish(event)
        await self.sla.check()
        # `project` replays in short transactions (on SQLite a transaction holds the only connection, and webhooks
        # waiting for their commit must not wait behind thousands of conversations of a bulk job).
        for _ in range(2):  # bounded: a large backlog is caught up over several ticks
            if not await reports.project():
                break
        await self.push_live()

    async def push_live(self, force: bool = False) -> None:
        if self.watched is not None and not await self.watched():
            self._last_live = None  # whoever connects next gets the picture
            return
        snapshot = await live_snapshot(self.presence)
        fingerprint = _fingerprint(snapshot)
        if force or fingerprint != self._last_live:
            self._last_live = fingerprint
            await self.bus.publish(Event("queue.live", snapshot, min_role="supervisor"))

    async def _listen(self) -> None:
        subscription = self._subscription
        while True:
            batch = await subscription.next_batch()
            if not batch:
                if subscription.closed:
                    return
                subscription.overflowed = False  # a burst we could not follow: the next tick catches up
                continue
            try:
                await self.react(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("supervision reaction failed")

    async def react(self, batch: list[Event]) -> None:
        drain_all = False
        inboxes: set[int] = set()
        taken: list[int] = []
        resolved: list[tuple[int, int | None]] = []
        for event in batch:
            if event.type == "presence":
                drain_all = True
                continue
            data = event.data
            if data.get("assignee_id") is not None or data.get("status") in ("resolved", "snoozed"):
                taken.append(data["id"])  # assigned, or no longer waiting for an agent: out of the queue
            if data.get("status") == "resolved":
                resolved.append((data["id"], data.get("inbox_id")))
            if data.get("inbox_id") is not None:
                inboxes.add(data["inbox_id"])
            waiting = data.get("status") == "open" and data.get("assignee_id") is None
            if event.type == "conversation.assigned" and waiting:
                # Unassigned by hand (or moved to a team without an agent): the next available agent gets it.
                await _dequeue(taken)
                taken = []
                for routed in await self.router.reroute(data["id"]):
                    await self.bus.publish(routed)
            elif waiting and data.get("team_id"):
                conv = await Conversation.get_or_none(id=data["id"])
                if conv is not None and conv.assignee_id is None:
                    await _dequeue(taken)  # in order: an earlier assignment's row goes before this one is routed
                    taken = []
                    for routed in await self.router.route([conv]):
                        await self.bus.publish(routed)
        # A bulk job resolves thousands at once: one statement and one settings lookup per batch, not per event.
        await _dequeue(taken)
        await self.csat.on_resolved_many(resolved)
        if drain_all:
            inboxes |= set(await _queued())
        for inbox_id in inboxes:
            for routed in await self.router.drain(inbox_id):
                await self.bus.publish(routed)


SUPERVISION = web.AppKey("supervision", Supervision)


def supervisors_connected(sockets: Counter) -> Callable[[], Awaitable[bool]]:
    """Whether any supervisor or admin has a socket open to this process."""

    async def check() -> bool:
        ids = [user_id for user_id, count in sockets.items() if count > 0]
        if not ids:
            return False
        conn = db.connection()
        sql = Sql(conn.capabilities.dialect)
        marks = sql.marks(ids)
        rows = await conn.execute_query_dict(
            f"SELECT 1 FROM users WHERE id IN ({marks}) AND role IN ('supervisor', 'admin') LIMIT 1", sql.params
        )
        return bool(rows)

    return check


async def _dequeue(conv_ids: list[int]) -> None:
    if not conv_ids:
        return
    conn = db.connection()
    sql = Sql(conn.capabilities.dialect)
    marks = sql.marks(conv_ids)
    await conn.execute_query(f"DELETE FROM routing_queue WHERE conversation_id IN ({marks})", sql.params)


async def _queued() -> list[int]:
    rows = await db.connection().execute_query_dict("SELECT DISTINCT inbox_id FROM routing_queue")
    return [r["inbox_id"] for r in rows]
