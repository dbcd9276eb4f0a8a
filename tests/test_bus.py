"""The in-process bus: increasing seq, replay from `since`, explicit resync, bounded per-client backlog."""

import asyncio

from inbox.bus import Event, InProcessBus, Subscription


def accept_all(event: Event) -> bool:
    return True


async def test_seq_increases_and_since_replays_exactly_what_was_missed():
    bus = InProcessBus(buffer_size=100, start_seq=1000)
    first = await bus.publish(Event("message.created", {"n": 1}, inbox_id=1))
    second = await bus.publish(Event("message.created", {"n": 2}, inbox_id=1))
    third = await bus.publish(Event("message.created", {"n": 3}, inbox_id=2))
    assert (first.seq, second.seq, third.seq) == (1001, 1002, 1003)

    sub = bus.subscribe(first.seq, accept_all)
    assert not sub.resync
    assert [e.data["n"] for e in sub.replay] == [2, 3]

    only_inbox_1 = bus.subscribe(1000, lambda e: e.inbox_id == 1)
    assert [e.data["n"] for e in only_inbox_1.replay] == [1, 2]


async def test_a_seq_no_longer_buffered_or_from_the_future_asks_for_resync():
    bus = InProcessBus(buffer_size=3, start_seq=0)
    for n in range(10):
        await bus.publish(Event("message.created", {"n": n}))
    assert bus.subscribe(2, accept_all).resync  # seq 3..7 were dropped from the buffer
    assert bus.subscribe(999, accept_all).resync  # a seq this server never issued (e.g. before a restart)
    resumed = bus.subscribe(7, accept_all)
    assert not resumed.resync and [e.seq for e in resumed.replay] == [8, 9, 10]


async def test_restart_starts_above_any_earlier_seq():
    before = InProcessBus()
    await before.publish(Event("presence", {}))
    await asyncio.sleep(0.002)  # a restart takes far longer; seq starts from the clock in ms × 1000
    after = InProcessBus()
    assert after.last_seq >= before.last_seq
    assert after.subscribe(before.last_seq - 5, accept_all).resync


async def test_live_events_reach_subscribers_and_a_slow_client_overflows_instead_of_growing():
    bus = InProcessBus(buffer_size=10)
    sub = bus.subscribe(None, accept_all)
    await bus.publish(Event("typing", {"on": True}))
    batch = await sub.next_batch()
    assert [e.type for e in batch] == ["typing"]

    for n in range(Subscription.MAX_PENDING + 1):
        await bus.publish(Event("message.created", {"n": n}))
    assert sub.overflowed
    assert await sub.next_batch() == []  # the socket handler then sends `resync` and closes


async def test_closed_subscription_stops_receiving():
    bus = InProcessBus()
    sub = bus.subscribe(None, accept_all)
    sub.close()
    await bus.publish(Event("message.created", {}))
    assert bus.subscriber_count == 0
    assert await sub.next_batch() == []


def test_frame_is_the_contract_shape():
    event = Event("message.created", {"id": 5, "text": "Chào shop"}, seq=42)
    assert event.frame() == '{"type":"message.created","seq":42,"data":{"id":5,"text":"Chào shop"}}'


def test_websocket_frame_headers_follow_rfc_6455_for_every_length():
    for size in (10, 100, 126, 1_000, 70_000):
        event = Event("message.created", {"text": "x" * size}, seq=1)
        payload, frame = event.frame_bytes(), event.ws_frame()
        assert frame[0] == 0x81  # FIN + text, unmasked (server to client)
        if len(payload) < 126:
            assert frame[1] == len(payload) and frame[2:] == payload
        elif len(payload) < 65536:
            assert frame[1] == 126 and int.from_bytes(frame[2:4], "big") == len(payload) and frame[4:] == payload
        else:
            assert frame[1] == 127 and int.from_bytes(frame[2:10], "big") == len(payload) and frame[10:] == payload
