"""The report projection goes on from where each conversation's replay stopped (agents/replay.py): the figures are
always those of a rebuild from nothing, whether the new events come in order, late, or after the hours changed."""

# ruff: noqa: F811 — pytest fixtures imported from tests/test_routing_helpers.py

from __future__ import annotations

from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient

from agents import reports
from agents.live import SUPERVISION
from inbox import db
from inbox.models import Conversation, Inbox
from inbox.processing import record
from tests.conftest import quick_user
from tests.test_routing_helpers import client, conversation  # noqa: F401

DAY = reports.datetime(2026, 3, 2, 1, 0, tzinfo=reports.UTC)  # Monday 08:00 in Hồ Chí Minh City
END = DAY + timedelta(days=2)


async def facts() -> list[tuple]:
    rows = await db.connection().execute_query_dict(
        "SELECT conversation_id, agent_id, kind, value, held, value_bh, start_event_id, end_event_id"
        " FROM metric_facts ORDER BY conversation_id, end_event_id, kind"
    )
    return [tuple(r.values()) for r in rows]


async def matches_a_rebuild() -> list[tuple]:
    """The facts as projected, after checking that a rebuild from nothing gives the same."""
    projected = await facts()
    await reports.rebuild()
    assert await facts() == projected
    return projected


async def exchange(conv: Conversation, agent_id: int, customer_at, reply_after: float) -> None:
    conn = db.connection()
    await record(conn, conv, "message_in", "contact", conv.contact_id, customer_at)
    await record(conn, conv, "message_out", "agent", agent_id, customer_at + timedelta(seconds=reply_after))


@pytest.fixture
async def quiet(client: TestClient) -> TestClient:
    await client.app[SUPERVISION].stop()  # no tick projecting behind the test's back
    return client


async def test_new_events_in_order_are_replayed_alone_and_the_figures_match_a_rebuild(
    quiet: TestClient, inbox: Inbox
) -> None:
    agent = await quick_user("agent", inboxes=[inbox])
    conv = await conversation(inbox, at=DAY)
    conn = db.connection()
    await record(conn, conv, "assigned", "system", None, DAY, agent_id=agent.user.id, team_id=None, reason="manual")
    await record(conn, conv, "message_out", "agent", agent.user.id, DAY + timedelta(seconds=20))
    await reports.project_all()
    first = reports.STOPS.get(conv.id, reports.business_hours.BusinessHours())
    assert first is not None and first.events == 4

    await exchange(conv, agent.user.id, DAY + timedelta(minutes=5), 45)
    replayed = await reports.replace_facts(db.connection(), [conv.id])  # what the next step does
    (only,) = replayed
    assert only.before is first and [e.kind for e in only.events] == ["message_in", "message_out"]
    assert [f.kind for f in only.state.facts] == ["message", "reply"]

    await reports.project_all()
    figures = await reports.aggregate(DAY, END)
    assert figures[agent.user.id]["first_response_time"]["median"] == 20.0
    assert figures[agent.user.id]["reply_time"]["median"] == 45.0
    assert figures[agent.user.id]["messages_sent"] == 2
    assert len(await matches_a_rebuild()) == 4  # message, first_response, message, reply: none twice


async def test_an_event_that_sorts_before_the_last_one_replayed_replays_the_conversation_whole(
    quiet: TestClient, inbox: Inbox
) -> None:
    """A reply stored late, with an earlier platform time (an echo delivered late), ended the wait before the
    reply already counted: only a full replay gets that right."""
    agent = await quick_user("agent", inboxes=[inbox])
    conv = await conversation(inbox, at=DAY)
    conn = db.connection()
    await record(conn, conv, "message_out", "agent", agent.user.id, DAY + timedelta(seconds=30))
    await reports.project_all()
    assert (await reports.aggregate(DAY, END))[agent.user.id]["first_response_time"]["median"] == 30.0

    await record(conn, conv, "message_out", "agent", agent.user.id, DAY + timedelta(seconds=10))
    await reports.project_all()
    figures = (await reports.aggregate(DAY, END))[agent.user.id]
    assert figures["first_response_time"]["median"] == 10.0 and figures["messages_sent"] == 2
    await matches_a_rebuild()


async def test_hours_changed_by_a_supervisor_leave_past_figures_as_they_were(quiet: TestClient, inbox: Inbox) -> None:
    supervisor = await quick_user("supervisor")
    agent = await quick_user("agent", inboxes=[inbox])
    conv = await conversation(inbox, at=DAY)
    await exchange(conv, agent.user.id, DAY, 60)  # 08:00, always open then
    await reports.project_all()
    url = f"/api/inboxes/{inbox.id}/routing"
    hours = {"days": {"mon": [["08:30", "17:00"]]}}
    response = await quiet.put(url, json={"business_hours": hours}, headers=supervisor.headers)
    assert response.status == 200
    history = (await response.json())["business_hours_history"]
    assert [entry["hours"] for entry in history] == [None]
    # A new event makes the conversation replay: the wait at 08:00 still counts in full.
    await exchange(conv, agent.user.id, DAY + timedelta(hours=2), 30)
    await reports.project_all()
    projected = await matches_a_rebuild()
    first = next(f for f in projected if f[2] == "first_response")
    assert first[5] == 60.0  # value_bh: the hours in force at 08:00 (none set) counted it
    fresh = await (await quiet.get(url, headers=supervisor.headers)).json()
    assert fresh["business_hours"]["days"]["mon"] == [["08:30", "17:00"]]
    assert len(fresh["business_hours_history"]) == 1


async def test_hours_without_a_history_apply_to_every_period(quiet: TestClient, inbox: Inbox) -> None:
    """Hours written without a history (a database from before it, or a direct edit) count from the start."""
    agent = await quick_user("agent", inboxes=[inbox])
    conv = await conversation(inbox, at=DAY)
    await exchange(conv, agent.user.id, DAY + timedelta(minutes=1), 60)
    await reports.project_all()
    # Business hours from 08:30: the first 30 min of the morning no longer count.
    inbox.settings = {"business_hours": {"days": {"mon": [["08:30", "17:00"]]}}}
    await inbox.save()
    await exchange(conv, agent.user.id, DAY + timedelta(hours=2), 30)
    await reports.project_all()
    projected = await matches_a_rebuild()
    first = next(f for f in projected if f[2] == "first_response")
    assert first[5] == 0.0  # value_bh of the wait at 08:00–08:01, recomputed with the new hours


async def test_a_step_that_fails_keeps_nothing_and_the_next_one_writes_every_fact(
    quiet: TestClient, inbox: Inbox, monkeypatch
) -> None:
    agent = await quick_user("agent", inboxes=[inbox])
    conv = await conversation(inbox, at=DAY)
    await exchange(conv, agent.user.id, DAY, 10)
    await reports.project_all()
    kept = reports.STOPS.get(conv.id, reports.business_hours.BusinessHours())
    await exchange(conv, agent.user.id, DAY + timedelta(hours=1), 25)

    async def broken(conn, buckets) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(reports.digests, "mark_stale", broken)
    with pytest.raises(RuntimeError):
        await reports.project()
    assert reports.STOPS.get(conv.id, reports.business_hours.BusinessHours()) is kept
    monkeypatch.undo()
    await reports.project_all()
    assert (await reports.aggregate(DAY, END))[agent.user.id]["reply_time"]["median"] == 25.0
    await matches_a_rebuild()


async def test_another_process_projecting_meanwhile_changes_nothing(quiet: TestClient, inbox: Inbox) -> None:
    """Facts written by another server process (its own kept states) are replaced, never doubled: here the other
    process is this one with its kept states forgotten."""
    agent = await quick_user("agent", inboxes=[inbox])
    conv = await conversation(inbox, at=DAY)
    await exchange(conv, agent.user.id, DAY, 10)
    await reports.project_all()
    ours = reports.STOPS
    reports.STOPS = reports.Stops()  # the other process: nothing kept, so it replays in full …
    try:
        await exchange(conv, agent.user.id, DAY + timedelta(hours=1), 25)
        await reports.project_all()  # … and writes the new events' facts
    finally:
        reports.STOPS = ours
    assert ours.get(conv.id, reports.business_hours.BusinessHours()).events == 4  # opened, 2 in, 1 out
    await exchange(conv, agent.user.id, DAY + timedelta(hours=2), 35)
    await reports.replace_facts(db.connection(), [conv.id])  # this process goes on from its own older stop
    projected = await matches_a_rebuild()
    assert [f[2] for f in projected].count("reply") == 2


async def test_steps_count_only_the_events_left_to_replay(quiet: TestClient, inbox: Inbox, monkeypatch) -> None:
    """A long conversation with a kept state costs its step only its new events: one step replays it with others
    instead of a transaction of its own each tick."""
    agent = await quick_user("agent", inboxes=[inbox])
    convs = [await conversation(inbox, at=DAY) for _ in range(3)]
    for conv in convs:
        for minute in range(10):
            await exchange(conv, agent.user.id, DAY + timedelta(minutes=minute), 5)
    ids = [conv.id for conv in convs]
    monkeypatch.setattr(reports, "EVENTS_PER_STEP", 30)
    conn = db.connection()
    assert await reports._steps(conn, ids) == [[i] for i in ids]  # 22 events each: nothing kept yet
    await reports.project_all()
    for conv in convs:
        await exchange(conv, agent.user.id, DAY + timedelta(hours=1), 5)
    assert await reports._steps(conn, ids) == [ids]  # 2 new events each
    await reports.project_all()
    await matches_a_rebuild()


def test_the_kept_states_are_bounded() -> None:
    from agents.metrics import EventRow, State
    from agents.replay import Replayed, Stops

    hours = reports.business_hours.BusinessHours()
    stops = Stops(kept=3)
    for conv_id in range(1, 6):
        event = EventRow(conv_id, "opened", "contact", 1, DAY, {})
        stops.keep([Replayed(conv_id, State(), hours, [event], None)])
    assert len(stops) == 3 and stops.get(1, hours) is None and stops.get(5, hours).last_id == 5
