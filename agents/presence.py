"""Presence: online / busy / away / offline, from live connections, the agent's own switch and idle time.

- `offline` when the agent has no open socket in any server process, or switched themselves offline;
- `busy` when they chose busy (connected, but routing gives them nothing new);
- `away` when connected and online but idle (no request, no socket frame) for `away_after` (default 15 minutes,
  `HOPTHU_AWAY_AFTER_MINUTES`);
- `online` otherwise. Only `online` agents receive routed conversations.

State lives in `agent_states` (connections are counted with SQL increments, so several processes add up); every
change of the effective presence is published as a `presence` frame `{user_id, status}` to the staff.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from inbox import db
from inbox.bus import Event, EventBus
from inbox.sql import Sql, as_datetime

log = logging.getLogger(__name__)
CHOICES = ("online", "busy", "offline")
DEFAULT_AWAY_AFTER = timedelta(minutes=15)
TOUCH_EVERY = 30.0  # seconds between two activity writes for one agent


def away_after_from_env() -> timedelta:
    raw = os.environ.get("HOPTHU_AWAY_AFTER_MINUTES", "")
    try:
        return timedelta(minutes=float(raw)) if raw else DEFAULT_AWAY_AFTER
    except ValueError:
        return DEFAULT_AWAY_AFTER


def effective(
    chosen: str, connections: int, last_active_at: datetime | None, at: datetime, away_after: timedelta
) -> str:
    if connections <= 0 or chosen == "offline":
        return "offline"
    if chosen == "busy":
        return "busy"
    if last_active_at is not None and at - last_active_at >= away_after:
        return "away"
    return "online"


async def ensure_state(user_id: int) -> None:
    conn = db.connection()
    sql = Sql(conn.capabilities.dialect)
    await conn.execute_query(
        sql.insert(
            "agent_states",
            {"user_id": user_id, "status": "online", "connections": 0, "claims": 0},
            on_conflict="(user_id) DO NOTHING",
        ),
        sql.params,
    )


async def offline_agents(cutoff: datetime) -> dict[int, datetime]:
    """Agents offline since before `cutoff` (no socket, or switched offline) → since when."""
    conn = db.connection()
    sql = Sql(conn.capabilities.dialect)
    rows = await conn.execute_query_dict(
        "SELECT user_id, offline_since FROM agent_states WHERE (connections <= 0 OR status = 'offline')"
        f" AND offline_since IS NOT NULL AND offline_since <= {sql.p(cutoff)}",
        sql.params,
    )
    return {r["user_id"]: as_datetime(r["offline_since"]) for r in rows}


class Presence:
    def __init__(
        self,
        bus: EventBus,
        *,
        away_after: timedelta = DEFAULT_AWAY_AFTER,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.bus = bus
        self.away_after = away_after
        self.clock = clock
        self._published: dict[int, str] = {}
        self._touched: dict[int, float] = {}

    async def _row(self, user_id: int) -> dict[str, Any] | None:
        conn = db.connection()
        sql = Sql(conn.capabilities.dialect)
        rows = await conn.execute_query_dict(
            "SELECT user_id, status, connections, last_active_at, capacity FROM agent_states"
            f" WHERE user_id = {sql.p(user_id)}",
            sql.params,
        )
        return rows[0] if rows else None

    def _effective(self, row: dict[str, Any]) -> str:
        return effective(
            row["status"], row["connections"], as_datetime(row["last_active_at"]), self.clock(), self.away_after
        )

    async def _publish_if_changed(self, user_id: int, *, force: bool = False) -> str:
        row = await self._row(user_id)
        status = self._effective(row) if row else "offline"
        if force or self._published.get(user_id) != status:
            self._published[user_id] = status
            await self.bus.publish(Event("presence", {"user_id": user_id, "status": status}))
        return status

    async def _update(self, user_id: int, assignments: str, params: list[Any]) -> None:
        await ensure_state(user_id)
        conn = db.connection()
        placeholder = "?" if conn.capabilities.dialect == "sqlite" else f"${len(params) + 1}"
        await conn.execute_query(
            f"UPDATE agent_states SET {assignments} WHERE user_id = {placeholder}", [*params, user_id]
        )

    def _p(self, index: int) -> str:
        return "?" if db.dialect() == "sqlite" else f"${index}"

    async def connected(self, user_id: int) -> str:
        at = self.clock()
        self._touched[user_id] = time.monotonic()
        await self._update(
            user_id,
            f"connections = connections + 1, last_active_at = {self._p(1)}, offline_since = NULL",
            [at],
        )
        return await self._publish_if_changed(user_id)

    async def disconnected(self, user_id: int) -> str:
        at = self.clock()
        try:
            await self._update(
                user_id,
                "connections = CASE WHEN connections > 0 THEN connections - 1 ELSE 0 END,"
                f" offline_since = CASE WHEN connections <= 1 THEN {self._p(1)} ELSE offline_since END",
                [at],
            )
            return await self._publish_if_changed(user_id)
        except Exception:  # shutting down (database closed) or unreachable: the socket closes all the same
            log.warning("could not record that user %s disconnected", user_id, exc_info=True)
            return "offline"

    async def choose(self, user_id: int, status: str) -> str:
        """The agent's own switch; going offline starts the offline clock (reassignment after the grace)."""
        if status not in CHOICES:
            raise ValueError(f"status must be one of {', '.join(CHOICES)}")
        at = self.clock()
        self._touched[user_id] = time.monotonic()
        if status == "offline":
            await self._update(
                user_id, f"status = 'offline', offline_since = {self._p(1)}, last_active_at = {self._p(2)}", [at, at]
            )
        else:
            await self._update(
                user_id,
                f"status = {self._p(1)}, last_active_at = {self._p(2)},"
                " offline_since = CASE WHEN connections > 0 THEN NULL ELSE offline_since END",
                [status, at],
            )
        return await self._publish_if_changed(user_id, force=True)

    async def touch(self, user_id: int) -> None:
        """Activity (a request, a socket frame): throttled to one write per agent per TOUCH_EVERY seconds."""
        last = self._touched.get(user_id)
        if last is not None and time.monotonic() - last < TOUCH_EVERY and self._published.get(user_id) != "away":
            return
        self._touched[user_id] = time.monotonic()
        await self._update(user_id, f"last_active_at = {self._p(1)}", [self.clock()])
        if self._published.get(user_id) == "away":
            await self._publish_if_changed(user_id)

    async def tick(self) -> list[int]:
        """Publish presence that changed with time (idle → away); returns the agents who became available."""
        conn = db.connection()
        rows = await conn.execute_query_dict(
            "SELECT user_id, status, connections, last_active_at FROM agent_states WHERE connections > 0"
        )
        available = []
        for row in rows:
            status = self._effective(row)
            if self._published.get(row["user_id"]) != status:
                self._published[row["user_id"]] = status
                await self.bus.publish(Event("presence", {"user_id": row["user_id"], "status": status}))
                if status == "online":
                    available.append(row["user_id"])
        return available

    async def snapshot(self) -> dict[int, dict[str, Any]]:
        conn = db.connection()
        rows = await conn.execute_query_dict(
            "SELECT user_id, status, connections, last_active_at, capacity FROM agent_states"
        )
        return {
            r["user_id"]: {
                "status": self._effective(r),
                "chosen": r["status"],
                "connections": r["connections"],
                "last_active_at": as_datetime(r["last_active_at"]),
                "capacity": r["capacity"],
            }
            for r in rows
        }


PRESENCE = web.AppKey("presence", Presence)


@web.middleware
async def activity_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Any authenticated API request counts as activity (keeps the agent from turning away)."""
    response = await handler(request)
    from inbox.api.guard import AUTH_KEY

    auth = request.get(AUTH_KEY)
    presence = request.app.get(PRESENCE)
    if auth is not None and presence is not None and response.status < 400:
        await presence.touch(auth.user.id)
    return response
