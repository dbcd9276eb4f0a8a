"""Access-matrix cases for reports, routing settings, teams and presence (see tests/matrix.py)."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from agents.models import Team
from tests.matrix import Case, World


async def prepare(world: World, client: TestClient) -> None:
    team = await Team.create(name="Đội chăm sóc khách hàng")
    world.extra["routing"] = {"team": team.id}


def _inbox(world: World) -> dict[str, Any]:
    return {"id": world.inbox_a.id}


def _team(world: World) -> dict[str, Any]:
    return {"id": world.extra["routing"]["team"]}


def _member(world: World) -> dict[str, Any]:
    return {"id": world.staff["member"].user.id}


CASES = [
    Case("GET", "/api/reports/agents", "supervisor"),
    Case("GET", "/api/reports/summary", "supervisor"),
    Case("GET", "/api/reports/agents/conversations", "supervisor"),
    Case("GET", "/api/reports/summary/conversations", "supervisor"),
    Case("GET", "/api/reports/live", "supervisor"),
    Case("POST", "/api/reports/rebuild", "admin"),
    Case("GET", "/api/inboxes/{id}/routing", "supervisor", target=_inbox),
    Case(
        "PUT",
        "/api/inboxes/{id}/routing",
        "supervisor",
        body=lambda w, who: {"routing": {"policy": "round_robin", "capacity": 3}},
        target=_inbox,
    ),
    Case("GET", "/api/teams", "agent"),
    Case("POST", "/api/teams", "supervisor", 201, body=lambda w, who: {"name": f"Đội {who}", "members": []}),
    Case("PATCH", "/api/teams/{id}", "supervisor", body=lambda w, who: {"settings": {"capacity": 4}}, target=_team),
    Case("DELETE", "/api/teams/{id}", "admin", target=_team),
    Case("GET", "/api/agents", "agent"),
    Case("PUT", "/api/me/presence", "agent", body=lambda w, who: {"status": "busy"}),
    Case("PUT", "/api/agents/{id}/capacity", "supervisor", body=lambda w, who: {"capacity": 5}, target=_member),
]
