"""Acks first, but the log still drains: while webhooks keep waiting for their commits, the processor yields the
database to them after a short slice, yet every slice applies at least one event, so customers' messages still
reach the inbox during a long burst instead of only after it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from channels.events import InboundMessage
from inbox import processing
from inbox.ingest import Accepted, IngestWriter
from inbox.keys import PROCESSOR
from inbox.models import InboundEvent, Message
from inbox.processing import InboundProcessor, Outcome
from tests.conftest import send_text

PSIDS = [f"71300422188990{n:02d}" for n in range(6)]


@pytest.fixture
async def stored_burst(client, inbox) -> list[str]:
    """Six customers' messages acknowledged and stored, none applied yet (the app's own processor is stopped)."""
    await client.app[PROCESSOR].stop()
    mids = []
    for n, psid in enumerate(PSIDS):
        mid = f"m_burst_{n}"
        await send_text(client, psid, mid, f"Shop ơi còn size M không {n}")
        mids.append(mid)
    assert await InboundEvent.filter(processed=False).count() == len(PSIDS)
    return mids


async def test_each_slice_applies_an_event_while_webhooks_keep_waiting(stored_burst, monkeypatch) -> None:
    monkeypatch.setattr(processing, "SLICE_SECONDS", 0.0)  # every slice is already over when it starts
    applied: list[Outcome] = []

    async def after_commit(out: Outcome) -> None:
        applied.append(out)

    processor = InboundProcessor(after_commit, asyncio.Event(), acks_waiting=lambda: True)
    counts = [await processor.process_pending() for _ in range(len(PSIDS))]

    assert counts == [1] * len(PSIDS)  # one event per slice: never an empty transaction that drains nothing
    assert await processor.process_pending() == 0
    assert not await InboundEvent.filter(processed=False).exists()
    stored = await Message.filter(direction="in").order_by("id").values_list("external_id", flat=True)
    assert stored == stored_burst  # in the order the webhooks were acknowledged
    assert [len(out.new_messages) for out in applied] == [1] * len(PSIDS)


async def test_a_crowd_of_waiting_webhooks_ends_a_batch_before_its_time_is_up(stored_burst, monkeypatch) -> None:
    monkeypatch.setattr(processing, "SLICE_SECONDS", 60.0)
    waiting = {"webhooks": processing.CROWD}
    processor = InboundProcessor(
        lambda out: asyncio.sleep(0), asyncio.Event(), acks_waiting=lambda: waiting["webhooks"]
    )

    assert await processor.process_pending() == 1  # a crowd: the database goes back to the webhooks at once
    waiting["webhooks"] = 1
    assert await processor.process_pending() == len(PSIDS) - 1  # one waiting webhook waits out the slice


async def test_a_quiet_server_applies_the_whole_burst_in_one_batch(stored_burst) -> None:
    processor = InboundProcessor(lambda out: asyncio.sleep(0), asyncio.Event(), acks_waiting=lambda: False)

    assert await processor.process_pending() == len(PSIDS)
    assert await Message.filter(direction="in").count() == len(PSIDS)


async def test_the_processor_waits_for_the_commit_of_every_webhook_already_waiting() -> None:
    """`caught_up` is the processor's turn: it comes once the webhooks waiting at that moment are committed —
    the one being committed and those queued behind it — and not later webhooks' commits."""
    writer = IngestWriter()
    gates: list[asyncio.Event] = []

    async def slow_commit(batch) -> None:  # each commit waits for the test to let it finish
        gate = asyncio.Event()
        gates.append(gate)
        await gate.wait()
        for waiting in batch:
            waiting.future.set_result(None)

    writer._commit = slow_commit  # type: ignore[method-assign]
    writer.start()
    try:
        first = asyncio.create_task(writer.store([_event(1)]))
        await asyncio.sleep(0.01)  # committing
        second = asyncio.create_task(writer.store([_event(2)]))
        await asyncio.sleep(0.01)  # queued behind the commit in flight
        assert writer.waiting()
        turn = asyncio.create_task(writer.caught_up())
        gates[0].set()
        await first
        await asyncio.sleep(0.01)
        assert not turn.done()  # the second webhook is still waiting for its commit
        later = asyncio.create_task(writer.store([_event(3)]))
        await asyncio.sleep(0.01)
        gates[1].set()
        await second
        await asyncio.wait_for(turn, 1.0)  # its turn: the third webhook came after it asked
        assert not later.done()
        gates[2].set()
        await later
        assert not writer.waiting()
        await asyncio.wait_for(writer.caught_up(), 1.0)  # nothing waiting: at once
    finally:
        await writer.stop()


async def test_a_burst_that_never_lets_up_gets_fewer_bigger_turns_of_the_log(stored_burst, monkeypatch) -> None:
    """While a crowd of webhooks keeps waiting, the log keeps stepping aside until `MAX_STEP_ASIDE` runs out, and
    the turn it then takes applies several events: one event per turn cost a whole batch for each message."""
    monkeypatch.setattr(processing, "SLICE_SECONDS", 0.0)
    monkeypatch.setattr(processing, "MAX_STEP_ASIDE", 0.05)
    monkeypatch.setattr(processing, "OWED_EVENTS", 3)
    commits = {"rounds": 0}

    async def one_commit_round() -> None:  # the webhooks waiting now get their commit; more are already waiting
        commits["rounds"] += 1
        await asyncio.sleep(0.005)

    applied: list[int] = []

    async def after_commit(out: Outcome) -> None:
        applied.append(len(out.new_messages))

    processor = InboundProcessor(
        after_commit, asyncio.Event(), acks_waiting=lambda: processing.CROWD, acks_caught_up=one_commit_round
    )
    await asyncio.wait_for(processor._drain(), 5.0)

    assert applied == [1, 3, 2]  # one event, then turns of three once the whole step aside was waited out
    assert commits["rounds"] >= 2 * 3  # each step aside waited for several rounds of commits, not just one
    stored = await Message.filter(direction="in").order_by("id").values_list("external_id", flat=True)
    assert stored == stored_burst


async def test_when_the_crowd_lets_up_the_log_takes_its_turn_at_once(stored_burst, monkeypatch) -> None:
    """Also: the webhooks that arrived during a batch get their commit before the batch's pipeline takes the
    database (on SQLite its statements would queue ahead of them: a second wait for the same webhooks)."""
    monkeypatch.setattr(processing, "SLICE_SECONDS", 0.0)
    monkeypatch.setattr(processing, "MAX_STEP_ASIDE", 60.0)
    waiting = {"webhooks": processing.CROWD}
    order: list[str] = []

    async def commit_round() -> None:  # after this commit only one webhook waits: a lull
        order.append("acks")
        waiting["webhooks"] = 1

    async def after_commit(out: Outcome) -> None:
        order.append(f"pipeline of {len(out.new_messages)}")
        waiting["webhooks"] = processing.CROWD  # while it ran, a crowd gathered again

    processor = InboundProcessor(
        after_commit, asyncio.Event(), acks_waiting=lambda: waiting["webhooks"], acks_caught_up=commit_round
    )
    await asyncio.wait_for(processor._drain(), 5.0)  # never the 60 s step aside

    # Each turn: one event (the crowd came back each time), the waiting webhooks' commit, the pipeline, then the
    # step aside, which ends at once with the lull.
    assert order == ["acks", "pipeline of 1", "acks"] * len(PSIDS)


class SteadyStream:
    """Webhooks committed as fast as they come: each commit round answers every one waiting while `per_round`
    more arrive and are answered, so when a turn of the log ends none may be waiting at that moment."""

    def __init__(self, per_round: int) -> None:
        self.per_round = per_round
        self.waiting = 0
        self.arrived = 0
        self.rounds = 0

    def turn_begins(self, records: list[dict]) -> None:
        self.waiting = 1  # one came as the turn began: the slice ends after the events the log is owed

    async def commit_round(self) -> None:
        self.rounds += 1
        self.arrived += self.per_round
        self.waiting = 0
        await asyncio.sleep(0.001)


async def _drain_with(stream: SteadyStream) -> list[int]:
    applied: list[int] = []

    async def after_commit(out: Outcome) -> None:
        applied.append(len(out.new_messages))

    processor = InboundProcessor(
        after_commit,
        asyncio.Event(),
        acks_waiting=lambda: stream.waiting,
        acks_caught_up=stream.commit_round,
        acks_arrived=lambda: stream.arrived,
        before_apply=stream.turn_begins,
    )
    await asyncio.wait_for(processor._drain(), 5.0)
    return applied


async def test_a_steady_stream_that_never_waits_long_still_comes_first(stored_burst, monkeypatch) -> None:
    """A crowd keeps arriving, though at the end of each turn none is waiting: the log steps aside all the same
    (it used to take turn after turn of one event, each holding the database while webhooks came in)."""
    monkeypatch.setattr(processing, "SLICE_SECONDS", 0.0)
    monkeypatch.setattr(processing, "MAX_STEP_ASIDE", 0.05)
    monkeypatch.setattr(processing, "OWED_EVENTS", 3)
    stream = SteadyStream(per_round=processing.CROWD)

    applied = await _drain_with(stream)

    assert applied == [1, 3, 2]  # one event, then the step aside ran out twice: turns of three
    assert stream.rounds >= 2 * 2  # each step aside went on round after round of commits, not just one
    stored = await Message.filter(direction="in").order_by("id").values_list("external_id", flat=True)
    assert stored == stored_burst


async def test_a_trickle_of_webhooks_leaves_the_log_its_turns(stored_burst, monkeypatch) -> None:
    monkeypatch.setattr(processing, "SLICE_SECONDS", 0.0)
    monkeypatch.setattr(processing, "MAX_STEP_ASIDE", 60.0)
    stream = SteadyStream(per_round=1)

    applied = await _drain_with(stream)  # never the 60 s step aside

    assert applied == [1] * len(PSIDS)  # a turn after each commit round: the webhooks let up at once
    assert await Message.filter(direction="in").count() == len(PSIDS)


def _event(n: int) -> Accepted:
    message = InboundMessage("facebook", "page-1", "psid-1", f"mid.{n}", datetime.now(UTC), text=f"tin {n}")
    return Accepted(inbox_id=1, channel="facebook", event=message)
