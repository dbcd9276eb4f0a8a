"""Routing: round-robin fairness, capacity (also under concurrency), the priority queue, reassignment on timeout and
on going offline, previous agent, teams, and the reason of every decision."""

# ruff: noqa: F811 — pytest fixtures imported from tests/test_routing_helpers.py

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

from aiohttp.test_utils import TestClient

from agents.metrics import derive
from agents.models import AgentState, BotSession, Team, TeamMember
from agents.presence import PRESENCE
from agents.routing import Candidate, QueueRouter, priority_of
from contacts.models import Contact, ContactIdentity
from inbox import db
from inbox.models import Conversation, ConversationEvent, Inbox
from inbox.processing import record
from tests.conftest import Staff, eventually, quick_user
from tests.test_routing_helpers import (  # noqa: F401
    Clock,
    client,
    clock,
    conversation,
    online_agent,
    open_load,
    router,
    set_routing,
)


async def assigned_to(conv_id: int) -> int | None:
    return (await Conversation.get(id=conv_id)).assignee_id


async def decisions(conv_id: int) -> list[tuple[int | None, str]]:
    events = await ConversationEvent.filter(conversation_id=conv_id, kind="assigned").order_by("id")
    return [(e.data["agent_id"], e.data["reason"]) for e in events]


async def bulk_conversations(inbox: Inbox, count: int) -> list[Conversation]:
    """Many waiting conversations at once (bulk inserts: the fairness test needs a thousand)."""
    at = datetime.now(UTC)
    contacts = await Contact.bulk_create([Contact(name=f"K{i}", first_seen_at=at) for i in range(count)])
    contacts = await Contact.filter(name__startswith="K").order_by("id")
    identities = [
        ContactIdentity(contact_id=c.id, inbox_id=inbox.id, channel="facebook", external_id=f"bulk-{c.id}")
        for c in contacts
    ]
    await ContactIdentity.bulk_create(identities)
    identities = await ContactIdentity.filter(external_id__startswith="bulk-").order_by("id")
    await Conversation.bulk_create(
        [
            Conversation(
                inbox_id=inbox.id,
                contact_id=i.contact_id,
                identity_id=i.id,
                channel="facebook",
                status="open",
                last_activity_at=at,
                last_incoming_at=at,
                last_message_at=at,
            )
            for i in identities
        ]
    )
    return await Conversation.filter(inbox_id=inbox.id).order_by("id")


async def test_round_robin_is_fair_over_a_thousand_assignments(
    client: TestClient, inbox: Inbox, router: QueueRouter
) -> None:
    await set_routing(inbox, router, capacity=10_000)
    agents = [await online_agent(inbox) for _ in range(3)]
    busy = await online_agent(inbox, status="busy")
    away = await online_agent(inbox, at=router.clock() - timedelta(hours=2))
    offline = await quick_user("agent", inboxes=[inbox])  # never connected
    convs = await bulk_conversations(inbox, 1000)
    for start in range(0, len(convs), 100):
        await router.route(convs[start : start + 100])
    counts = Counter(await Conversation.filter(inbox_id=inbox.id).values_list("assignee_id", flat=True))
    spread = [counts[a.user.id] for a in agents]
    assert sum(spread) == 1000
    assert max(spread) - min(spread) <= 1, spread
    assert counts[busy.user.id] == counts[away.user.id] == counts[offline.user.id] == 0
    reasons = Counter(
        e["reason"] for e in await ConversationEvent.filter(kind="assigned").values_list("data", flat=True)
    )
    assert reasons == {"round_robin": 1000}


async def test_least_busy_fills_the_emptiest_agent(client: TestClient, inbox: Inbox, router: QueueRouter) -> None:
    await set_routing(inbox, router, policy="least_busy", capacity=5)
    heavy, light = await online_agent(inbox), await online_agent(inbox)
    for _ in range(3):
        conv = await conversation(inbox)
        await Conversation.filter(id=conv.id).update(assignee_id=heavy.user.id)
    new = [await conversation(inbox) for _ in range(5)]
    await router.route(new)
    assert (await open_load(heavy.user.id), await open_load(light.user.id)) == (4, 4)
    assert {reason for conv in new for _, reason in await decisions(conv.id)} == {"least_busy"}


async def test_capacity_is_never_exceeded_and_the_queue_drains_as_capacity_frees(
    client: TestClient, inbox: Inbox, router: QueueRouter
) -> None:
    await set_routing(inbox, router, capacity=2)
    a, b = await online_agent(inbox), await online_agent(inbox, capacity=1)  # b's own capacity wins
    convs = [await conversation(inbox) for _ in range(6)]
    await router.route(convs)
    assert (await open_load(a.user.id), await open_load(b.user.id)) == (2, 1)
    waiting = [c.id for c in convs if await assigned_to(c.id) is None]
    assert len(waiting) == 3
    # Every decision is an event: three assigned at once, three queued (with the reason they wait).
    assert await ConversationEvent.filter(kind="queued").count() == 3
    assert await ConversationEvent.filter(kind="assigned").count() == 3
    # a resolves one: the listener drains the queue, oldest first, into the freed place.
    mine = await Conversation.filter(assignee_id=a.user.id).first()
    response = await client.post(f"/api/conversations/{mine.id}/status", json={"status": "resolved"}, headers=a.headers)
    assert response.status == 200
    await eventually(lambda: assigned_to(waiting[0]))
    assert await assigned_to(waiting[0]) == a.user.id
    assert (await open_load(a.user.id), await open_load(b.user.id)) == (2, 1)
    assert [await assigned_to(c) for c in waiting[1:]] == [None, None]


async def test_queue_order_follows_priority_then_arrival(client: TestClient, inbox: Inbox, router: QueueRouter) -> None:
    await set_routing(inbox, router, capacity=100)
    start = datetime.now(UTC)
    plain = await conversation(inbox, at=start)
    negative = await conversation(inbox, at=start + timedelta(seconds=1), sentiment="negative")
    complaint = await conversation(inbox, at=start + timedelta(seconds=2), intent="complaint")
    handoff = await conversation(inbox, at=start + timedelta(seconds=3), intent="human_handoff")
    vip = await conversation(inbox, at=start + timedelta(seconds=4), tags=["VIP"])
    angry_complaint = await conversation(
        inbox, at=start + timedelta(seconds=5), sentiment="negative", intent="complaint"
    )
    later = await conversation(inbox, at=start + timedelta(seconds=6))
    order = [plain, negative, complaint, handoff, vip, angry_complaint, later]
    for conv in order:  # nobody online: all wait, in arrival order
        router.clock = lambda conv=conv: conv.last_incoming_at
        await router.route([conv])
    assert all([await assigned_to(c.id) is None for c in order])
    agent = await online_agent(inbox)
    events = await router.drain(inbox.id)
    assert [e.data["id"] for e in events] == [
        vip.id, handoff.id, angry_complaint.id, complaint.id, negative.id, plain.id, later.id
    ]  # fmt: skip
    assert {await assigned_to(c.id) for c in order} == {agent.user.id}
    assert priority_of(["negative", "complaint"]) == 3


async def test_two_conversations_at_once_never_overfill_an_agent(
    client: TestClient, inbox: Inbox, router: QueueRouter
) -> None:
    await set_routing(inbox, router, capacity=1)
    agent = await online_agent(inbox)
    first, second = await conversation(inbox), await conversation(inbox)
    # Two routers (as two server processes would be), each believing the agent is free.
    other = QueueRouter(router.bus, clock=router.clock)
    stale = [Candidate(agent.user.id, 0, 1, None), Candidate(agent.user.id, 0, 1, None)]
    outcomes = await asyncio.gather(
        router.claim(first.id, stale[0], "round_robin"), other.claim(second.id, stale[1], "round_robin")
    )
    assert sorted(outcomes) == ["full", "taken"]
    assert await open_load(agent.user.id) == 1
    # And through the whole path: many arrivals at once, several routers, one place.
    third = [await conversation(inbox) for _ in range(6)]
    await Conversation.filter(assignee_id=agent.user.id).update(status="resolved")
    await asyncio.gather(*(r.route([c]) for r, c in zip([router, other] * 3, third, strict=True)))
    assert await open_load(agent.user.id) == 1


async def test_a_conversation_is_never_taken_twice(client: TestClient, inbox: Inbox, router: QueueRouter) -> None:
    await set_routing(inbox, router, capacity=5)
    a, b = await online_agent(inbox), await online_agent(inbox)
    conv = await conversation(inbox)
    outcomes = await asyncio.gather(
        router.claim(conv.id, Candidate(a.user.id, 0, 5, None), "round_robin"),
        router.claim(conv.id, Candidate(b.user.id, 0, 5, None), "round_robin"),
    )
    assert sorted(outcomes) == ["gone", "taken"]
    assert len(await decisions(conv.id)) == 1


async def test_reassignment_when_the_assignee_does_not_reply_in_time(
    client: TestClient, inbox: Inbox, router: QueueRouter, clock: Clock
) -> None:
    await set_routing(inbox, router, capacity=5, reassign_after_minutes=5)
    first = await online_agent(inbox)
    conv = await conversation(inbox, at=clock())
    await router.route([conv])
    holder = await assigned_to(conv.id)
    assert holder == first.user.id
    second = await online_agent(inbox)
    clock.advance(minutes=4)
    await router.maintain()
    assert await assigned_to(conv.id) == holder  # not yet
    clock.advance(minutes=2)
    events = await router.maintain()
    assert await assigned_to(conv.id) == second.user.id
    assert await decisions(conv.id) == [
        (holder, "round_robin"), (None, "reply_timeout"), (second.user.id, "round_robin")
    ]  # fmt: skip
    assert {e.type for e in events} == {"conversation.assigned"}
    # The metrics see a reassignment for the first agent, and the second one's clock starts now.
    rows = await ConversationEvent.filter(conversation_id=conv.id).order_by("id")
    from agents.metrics import EventRow

    state = derive([EventRow(r.id, r.kind, r.actor_type, r.actor_id, r.occurred_at, r.data) for r in rows])
    assert [(f.kind, f.agent_id) for f in state.facts] == [("reassigned", holder)]
    assert state.holder == second.user.id and state.wait is not None


async def test_a_replied_conversation_is_not_reassigned(
    client: TestClient, inbox: Inbox, router: QueueRouter, clock: Clock
) -> None:
    await set_routing(inbox, router, reassign_after_minutes=5)
    agent = await online_agent(inbox)
    conv = await conversation(inbox, at=clock())
    await router.route([conv])
    await online_agent(inbox)
    reply_at = clock.advance(minutes=1)
    await record(db.connection(), conv, "message_out", "agent", agent.user.id, reply_at, origin="hopthu")
    await Conversation.filter(id=conv.id).update(last_message_at=reply_at)
    clock.advance(minutes=30)
    await router.maintain()
    assert await assigned_to(conv.id) == agent.user.id


async def test_reassignment_when_the_assignee_goes_offline(
    client: TestClient, inbox: Inbox, router: QueueRouter, clock: Clock
) -> None:
    await set_routing(inbox, router, offline_grace_seconds=60)
    presence = client.app[PRESENCE]
    presence.clock = clock
    leaving = await online_agent(inbox)
    conv = await conversation(inbox, at=clock())
    await router.route([conv])
    assert await assigned_to(conv.id) == leaving.user.id
    staying = await online_agent(inbox)
    await presence.disconnected(leaving.user.id)  # the last tab closed
    clock.advance(seconds=30)
    await router.maintain()
    assert await assigned_to(conv.id) == leaving.user.id  # a reload is not leaving
    clock.advance(seconds=31)
    await router.maintain()
    assert await assigned_to(conv.id) == staying.user.id
    assert (await decisions(conv.id))[-2:] == [(None, "agent_offline"), (staying.user.id, "round_robin")]


async def test_switching_offline_also_hands_conversations_over(
    client: TestClient, inbox: Inbox, router: QueueRouter, clock: Clock
) -> None:
    await set_routing(inbox, router, offline_grace_seconds=0)
    client.app[PRESENCE].clock = clock
    leaving = await online_agent(inbox)
    conv = await conversation(inbox, at=clock())
    await router.route([conv])
    staying = await online_agent(inbox)
    response = await client.put("/api/me/presence", json={"status": "offline"}, headers=leaving.headers)
    assert response.status == 200 and (await response.json())["status"] == "offline"
    await router.maintain()
    assert await assigned_to(conv.id) == staying.user.id


async def test_previous_agent_gets_the_returning_customer(
    client: TestClient, inbox: Inbox, router: QueueRouter
) -> None:
    await set_routing(inbox, router, previous_agent=True)
    first, second = await online_agent(inbox), await online_agent(inbox)
    old = await conversation(inbox)
    await router.route([old])
    before = await assigned_to(old.id)
    await Conversation.filter(id=old.id).update(status="resolved")
    contact = await Contact.get(id=old.contact_id)
    # Round-robin alone would now pick the other agent.
    new = await conversation(inbox, contact=contact, thread="post:1")
    await router.route([new])
    assert await assigned_to(new.id) == before
    assert (await decisions(new.id)) == [(before, "previous_agent")]
    assert {first.user.id, second.user.id} >= {before}


async def test_team_routing_assigns_only_team_members(client: TestClient, inbox: Inbox, router: QueueRouter) -> None:
    team = await Team.create(name="Đội đổi trả", settings={"policy": "least_busy"})
    outsider = await online_agent(inbox)
    member = await online_agent(inbox)
    await TeamMember.create(team=team, user_id=member.user.id)
    await set_routing(inbox, router, team_id=team.id)
    convs = [await conversation(inbox) for _ in range(3)]
    await router.route(convs)
    for conv in convs:
        stored = await Conversation.get(id=conv.id)
        assert (stored.assignee_id, stored.team_id) == (member.user.id, team.id)
    assert await open_load(outsider.user.id) == 0


async def test_supervisor_assigning_to_a_team_routes_inside_it(
    client: TestClient, inbox: Inbox, router: QueueRouter
) -> None:
    team = await Team.create(name="Đội VIP", settings={"policy": "round_robin"})
    member = await online_agent(inbox)
    await TeamMember.create(team=team, user_id=member.user.id)
    supervisor = await quick_user("supervisor")
    conv = await conversation(inbox)  # the inbox itself is manual
    response = await client.post(
        f"/api/conversations/{conv.id}/assign", json={"agent_id": None, "team_id": team.id}, headers=supervisor.headers
    )
    assert response.status == 200
    await eventually(lambda: assigned_to(conv.id))
    assert await assigned_to(conv.id) == member.user.id


async def test_manual_inboxes_are_left_alone(client: TestClient, inbox: Inbox, router: QueueRouter) -> None:
    await online_agent(inbox)
    conv = await conversation(inbox)
    assert await router.route([conv]) == []
    assert await assigned_to(conv.id) is None
    assert not await ConversationEvent.filter(kind="queued").exists()


async def test_a_new_customer_message_is_routed_end_to_end(client: TestClient, inbox: Inbox) -> None:
    from tests.conftest import send_text

    await set_routing(inbox, capacity=3)
    agent = await quick_user("agent", inboxes=[inbox])
    socket = await client.ws_connect("/ws", params={"token": agent.token})  # connected: online
    await eventually(lambda: AgentState.filter(user_id=agent.user.id, connections=1).exists())
    await send_text(client, "PSID-42", "mid.route.1", "Shop ơi áo này còn không ạ?")
    conv = await eventually(lambda: Conversation.filter(assignee_id=agent.user.id).first())
    assert await decisions(conv.id) == [(agent.user.id, "round_robin")]
    while True:
        frame = await socket.receive_json(timeout=5)
        if frame["type"] == "conversation.assigned":
            break
    assert frame["data"]["assignee_id"] == agent.user.id
    await socket.close()


async def unassign(client: TestClient, conv: Conversation, by: Staff) -> None:
    response = await client.post(f"/api/conversations/{conv.id}/assign", json={"agent_id": None}, headers=by.headers)
    assert response.status == 200, await response.text()


async def test_a_conversation_unassigned_by_hand_goes_to_the_next_available_agent(
    client: TestClient, inbox: Inbox, router: QueueRouter
) -> None:
    await set_routing(inbox, router, policy="least_busy")
    giver, busier = await online_agent(inbox), await online_agent(inbox)
    await Conversation.filter(id=(await conversation(inbox)).id).update(assignee_id=busier.user.id)
    conv = await conversation(inbox)
    await Conversation.filter(id=conv.id).update(assignee_id=giver.user.id)
    await unassign(client, conv, giver)  # the agent gives it up
    # The least busy agent is the one who just gave it up: it goes to the other one, never straight back.
    assert await eventually(lambda: assigned_to(conv.id)) == busier.user.id
    assert (await decisions(conv.id))[-2:] == [(None, "manual"), (busier.user.id, "least_busy")]
    await AgentState.filter(user_id=giver.user.id).update(status="offline")
    supervisor = await quick_user("supervisor")
    await unassign(client, conv, supervisor)  # nobody else is there: it waits in the queue

    async def queued() -> list[list[str]] | None:
        events = await ConversationEvent.filter(conversation_id=conv.id, kind="queued").order_by("id")
        return [e.data["reasons"] for e in events] if len(events) == 2 else None

    assert await eventually(queued) == [[f"not:{giver.user.id}"], [f"not:{busier.user.id}"]]
    assert await assigned_to(conv.id) is None
    third = await online_agent(inbox)
    await router.drain(inbox.id)
    assert await assigned_to(conv.id) == third.user.id


async def test_an_unassigned_conversation_stays_with_the_bot_or_in_a_manual_inbox(
    client: TestClient, inbox: Inbox, router: QueueRouter
) -> None:
    await set_routing(inbox, router)
    inbox.settings = {**inbox.settings, "bot": {"faq_enabled": True}}
    await inbox.save(update_fields=["settings"])
    agent, colleague = await online_agent(inbox), await online_agent(inbox)
    with_bot, resolved, other = await conversation(inbox), await conversation(inbox), await conversation(inbox)
    await BotSession.create(conversation_id=with_bot.id, state="bot")  # the bot answers this customer
    for conv in (with_bot, resolved, other):
        await Conversation.filter(id=conv.id).update(assignee_id=agent.user.id)
    await Conversation.filter(id=resolved.id).update(status="resolved")
    for conv in (with_bot, resolved, other):
        await unassign(client, conv, agent)
    # The bot keeps its conversation, a resolved one waits for nobody; `other`, unassigned last, shows that the
    # reactions to the first two have run.
    assert await eventually(lambda: assigned_to(other.id)) == colleague.user.id
    assert await assigned_to(with_bot.id) is None and await assigned_to(resolved.id) is None
    assert not await ConversationEvent.filter(conversation_id__in=[with_bot.id, resolved.id], kind="queued").exists()
    # In a manual inbox a person assigns it.
    await set_routing(inbox, router, policy="manual")
    await Conversation.filter(id=other.id).update(assignee_id=None)
    assert await router.reroute(other.id) == []
    assert await assigned_to(other.id) is None
