"""Presence: from live connections (several tabs count once), the agent's own switch, and idle → away."""

# ruff: noqa: F811 — pytest fixtures imported from tests/test_routing_helpers.py

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from agents.models import AgentState
from agents.presence import PRESENCE, effective
from inbox.api import routing_settings
from inbox.models import Inbox
from tests.conftest import eventually, quick_user, while_the_body_is_read
from tests.test_routing_helpers import client, clock, conversation, router, set_routing  # noqa: F401

T = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
AWAY = timedelta(minutes=15)


def test_effective_presence() -> None:
    assert effective("online", 1, T, T, AWAY) == "online"
    assert effective("online", 0, T, T, AWAY) == "offline"  # no socket anywhere
    assert effective("offline", 2, T, T, AWAY) == "offline"  # switched off while connected
    assert effective("busy", 1, T - timedelta(hours=3), T, AWAY) == "busy"  # busy is a choice, not idleness
    assert effective("online", 1, T - timedelta(minutes=16), T, AWAY) == "away"
    assert effective("online", 1, None, T, AWAY) == "online"


async def presence_frames(ws: Any, user_id: int, until: str) -> list[str]:
    seen = []
    while True:
        frame = await ws.receive_json(timeout=5)
        if frame["type"] == "presence" and frame["data"]["user_id"] == user_id:
            seen.append(frame["data"]["status"])
            if frame["data"]["status"] == until:
                return seen


async def state(user_id: int) -> AgentState:
    return await AgentState.get(user_id=user_id)


async def test_connections_tabs_and_the_switch(client: TestClient, inbox: Inbox) -> None:
    supervisor = await quick_user("supervisor")
    agent = await quick_user("agent", inboxes=[inbox])
    watcher = await client.ws_connect("/ws", params={"token": supervisor.token})
    first = await client.ws_connect("/ws", params={"token": agent.token})
    assert await presence_frames(watcher, agent.user.id, "online") == ["online"]
    second = await client.ws_connect("/ws", params={"token": agent.token})
    await eventually(lambda: AgentState.filter(user_id=agent.user.id, connections=2).exists())
    await first.close()
    await eventually(lambda: AgentState.filter(user_id=agent.user.id, connections=1).exists())

    busy = await client.put("/api/me/presence", json={"status": "busy"}, headers=agent.headers)
    assert (await busy.json()) == {"user_id": agent.user.id, "chosen": "busy", "status": "busy"}
    assert await presence_frames(watcher, agent.user.id, "busy") == ["busy"]  # a second tab said nothing
    listed = await (await client.get("/api/agents", headers=agent.headers)).json()
    me = next(a for a in listed["items"] if a["id"] == agent.user.id)
    assert (me["presence"], me["chosen"], me["load"]) == ("busy", "busy", 0)

    bad = await client.put("/api/me/presence", json={"status": "sleeping"}, headers=agent.headers)
    assert bad.status == 422
    await client.put("/api/me/presence", json={"status": "online"}, headers=agent.headers)
    await second.close()
    assert await presence_frames(watcher, agent.user.id, "offline") == ["online", "offline"]
    stored = await state(agent.user.id)
    assert (stored.connections, stored.offline_since is not None) == (0, True)
    await watcher.close()


async def test_idle_agents_turn_away_and_come_back(client: TestClient, inbox: Inbox, clock, router) -> None:
    presence = client.app[PRESENCE]
    presence.clock = clock
    agent = await quick_user("agent", inboxes=[inbox])
    supervisor = await quick_user("supervisor")
    watcher = await client.ws_connect("/ws", params={"token": supervisor.token})
    socket = await client.ws_connect("/ws", params={"token": agent.token})
    await presence_frames(watcher, agent.user.id, "online")
    await set_routing(inbox, router)
    clock.advance(minutes=16)
    await presence.tick()
    assert await presence_frames(watcher, agent.user.id, "away") == ["away"]
    # Routing skips the away agent: the conversation waits.
    conv = await conversation(inbox)
    await router.route([conv])
    assert (await conv.__class__.get(id=conv.id)).assignee_id is None
    # Any request is activity: back online, and the waiting conversation comes to them.
    assert (await client.get("/api/conversations", headers=agent.headers)).status == 200
    assert await presence_frames(watcher, agent.user.id, "online") == ["online"]
    await router.drain(inbox.id)
    assert (await conv.__class__.get(id=conv.id)).assignee_id == agent.user.id
    await socket.close()
    await watcher.close()


async def test_supervisor_sets_capacity(client: TestClient, inbox: Inbox) -> None:
    supervisor = await quick_user("supervisor")
    agent = await quick_user("agent", inboxes=[inbox])
    response = await client.put(
        f"/api/agents/{agent.user.id}/capacity", json={"capacity": 3}, headers=supervisor.headers
    )
    assert response.status == 200
    assert (await state(agent.user.id)).capacity == 3
    for bad in ({"capacity": 0}, {"capacity": "3"}, {"capacity": True}):
        refused = await client.put(f"/api/agents/{agent.user.id}/capacity", json=bad, headers=supervisor.headers)
        assert refused.status == 422, bad
    assert (await state(agent.user.id)).capacity == 3
    missing = await client.put("/api/agents/999999/capacity", json={"capacity": 3}, headers=supervisor.headers)
    assert missing.status == 404


async def test_routing_settings_are_validated_and_kept_apart(client: TestClient, inbox: Inbox) -> None:
    supervisor = await quick_user("supervisor")
    inbox.settings = {"bot": {"faq_enabled": True}}
    await inbox.save(update_fields=["settings"])
    url = f"/api/inboxes/{inbox.id}/routing"
    body = {
        "routing": {"policy": "least_busy", "capacity": 4, "reassign_after_minutes": 10},
        "business_hours": {"days": {"mon": [["08:00", "17:30"]]}, "holidays": ["2026-04-30"]},
        "sla": {"first_response_seconds": 300, "resolution_seconds": 86400, "business_hours": True},
    }
    saved = await client.put(url, json=body, headers=supervisor.headers)
    assert saved.status == 200, await saved.text()
    data = await saved.json()
    assert data["routing"]["policy"] == "least_busy" and data["routing"]["capacity"] == 4
    assert data["sla"]["first_response_seconds"] == 300
    assert data["business_hours"]["timezone"] == "Asia/Ho_Chi_Minh"
    await inbox.refresh_from_db()
    assert inbox.settings["bot"] == {"faq_enabled": True}  # another area's settings untouched
    for bad in (
        {"routing": {"policy": "random"}},
        {"routing": {"capacity": 0}},
        {"business_hours": {"days": {"mon": [["18:00", "08:00"]]}}},
        {"business_hours": {"timezone": "Mars/Olympus"}},
        {"sla": {"first_response_seconds": -5}},
        {"colour": "red"},
        {"routing": "least_busy"},  # not an object
        # Past any plan; the routing and SLA workers would overflow adding them to the clock, for every inbox.
        {"routing": {"reassign_after_minutes": 10**10}},
        {"sla": {"first_response_seconds": 10**11}},
    ):
        refused = await client.put(url, json=bad, headers=supervisor.headers)
        assert refused.status == 422, bad
        assert (await refused.json())["error"]["code"] == "invalid_settings"
    assert (await (await client.get(url, headers=supervisor.headers)).json())["routing"]["policy"] == "least_busy"


async def test_two_supervisors_changing_different_routing_fields_at_once_keep_both(
    client: TestClient, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = await quick_user("supervisor"), await quick_user("supervisor")
    url = f"/api/inboxes/{inbox.id}/routing"

    async def the_other_saves() -> None:
        # the first request: the other supervisor's save lands while it reads its body
        other = await client.put(url, json={"routing": {"previous_agent": True}}, headers=second.headers)
        assert other.status == 200

    while_the_body_is_read(monkeypatch, routing_settings, the_other_saves)
    saved = await client.put(url, json={"routing": {"capacity": 20}}, headers=first.headers)
    assert saved.status == 200, await saved.text()
    routing = (await (await client.get(url, headers=first.headers)).json())["routing"]
    assert (routing["capacity"], routing["previous_agent"]) == (20, True)


async def test_a_team_renamed_while_another_supervisor_changes_its_settings_keeps_both(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agents.models import Team

    first, second = await quick_user("supervisor"), await quick_user("supervisor")
    team = await Team.create(name="Bán lẻ", settings={"capacity": 3})
    url = f"/api/teams/{team.id}"

    async def the_other_saves() -> None:
        other = await client.patch(url, json={"settings": {"capacity": 8}}, headers=second.headers)
        assert other.status == 200

    while_the_body_is_read(monkeypatch, routing_settings, the_other_saves)
    renamed = await client.patch(url, json={"name": "Bán sỉ"}, headers=first.headers)
    assert renamed.status == 200, await renamed.text()
    body = await renamed.json()
    assert (body["name"], body["settings"]) == ("Bán sỉ", {"capacity": 8})
    stored = await Team.get(id=team.id)
    assert (stored.name, stored.settings) == ("Bán sỉ", {"capacity": 8})
