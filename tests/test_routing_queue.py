"""The queue router: a released conversation goes back to its agent when nobody else can take it, a resolved one
leaves the queue, and a manual inbox never takes a conversation from its agent."""

# ruff: noqa: F811 — pytest fixtures imported from tests/test_routing_helpers.py

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp.test_utils import TestClient

from agents.models import Team
from agents.presence import PRESENCE
from agents.routing import QueueRouter
from inbox.models import Conversation, Inbox
from tests.conftest import quick_user
from tests.test_routing_helpers import (  # noqa: F401
    Clock,
    client,
    clock,
    conversation,
    online_agent,
    router,
    set_routing,
)


async def _assignee_is(conv_id: int, user_id: int) -> bool:
    return (await Conversation.get(id=conv_id)).assignee_id == user_id


async def test_an_agent_back_online_gets_their_released_conversations_when_nobody_else_is_there(
    client: TestClient, inbox: Inbox, router: QueueRouter, clock: Clock
) -> None:
    await set_routing(inbox, router, offline_grace_seconds=60)
    presence = client.app[PRESENCE]
    presence.clock = clock
    only = await online_agent(inbox)  # a one-person shop
    conv = await conversation(inbox, at=clock())
    await router.route([conv])
    assert (await Conversation.get(id=conv.id)).assignee_id == only.user.id
    await presence.disconnected(only.user.id)  # lunch break
    clock.advance(minutes=30)
    await router.maintain()  # released to the queue: nobody else to give it to
    assert (await Conversation.get(id=conv.id)).assignee_id is None
    await presence.connected(only.user.id)  # back, with room for it
    clock.advance(seconds=5)
    await router.maintain()
    await router.drain(inbox.id)
    assert (await Conversation.get(id=conv.id)).assignee_id == only.user.id


async def test_a_conversation_resolved_while_queued_leaves_the_live_queue(
    client: TestClient, inbox: Inbox, router: QueueRouter
) -> None:
    await set_routing(inbox, router, capacity=1)
    await online_agent(inbox)
    busy = await conversation(inbox)
    waiting = await conversation(inbox)
    await router.route([busy, waiting])
    assert (await Conversation.get(id=waiting.id)).assignee_id is None  # queued: the agent is full
    supervisor = await quick_user("supervisor")
    r = await client.post(f"/api/conversations/{waiting.id}/status", json={"status": "resolved"},
                          headers=supervisor.headers)  # fmt: skip
    assert r.status == 200
    await router.maintain()
    live = await (await client.get("/api/reports/live", headers=supervisor.headers)).json()
    assert live["queue"]["length"] == 0, live["queue"]


async def test_a_manual_inbox_never_takes_a_conversation_from_its_agent(
    client: TestClient, inbox: Inbox, router: QueueRouter, clock: Clock
) -> None:
    clock.now = datetime.now(UTC)  # the manual assignment is stamped with the wall clock
    # e.g. an inbox switched from round_robin back to manual: the partial PUT keeps reassign_after_minutes
    await set_routing(inbox, router, policy="manual", reassign_after_minutes=5)
    agent = await online_agent(inbox)
    supervisor = await quick_user("supervisor")
    conv = await conversation(inbox, at=clock())
    r = await client.post(f"/api/conversations/{conv.id}/assign", json={"agent_id": agent.user.id},
                          headers=supervisor.headers)  # fmt: skip
    assert r.status == 200
    clock.advance(minutes=30)
    await router.maintain()
    assert (await Conversation.get(id=conv.id)).assignee_id == agent.user.id


async def test_an_inbox_routed_to_a_deleted_team_routes_to_its_agents_again(
    client: TestClient, inbox: Inbox, router: QueueRouter
) -> None:
    """An inbox whose conversations went to one team keeps routing when that team is deleted: to the inbox's own
    agents, with the queued conversations of that team among them."""
    admin = await quick_user("admin")
    team = await Team.create(name="Ca đêm")
    await set_routing(inbox, router, team_id=team.id)
    queued = await conversation(inbox)
    await router.route([queued])  # nobody in the team: it waits for the team
    assert (await Conversation.get(id=queued.id)).assignee_id is None
    assert (await client.delete(f"/api/teams/{team.id}", headers=admin.headers)).status == 200

    settings = await (await client.get(f"/api/inboxes/{inbox.id}/routing", headers=admin.headers)).json()
    assert settings["routing"]["team_id"] is None
    agent = await online_agent(inbox)
    router.forget(inbox.id)
    await router.drain(inbox.id)
    assert await _assignee_is(queued.id, agent.user.id)
    fresh = await conversation(inbox)
    await router.route([fresh])
    assert await _assignee_is(fresh.id, agent.user.id)
