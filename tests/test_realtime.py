"""`GET /ws`: authentication, the frame shape and its seq, who receives what, resuming with `?since=`,
resync, typing and presence.

Absence ("never receives") is checked against a marker: every socket receives the staff-wide presence event of a
new connection, and the bus delivers in publish order, so once a socket has the marker it would already have
had anything published before it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import types
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from agents.access import Viewer
from agents.models import User
from agents.presence import PRESENCE
from agents.sessions import create_session, revoke
from channels.fakes import messenger_text
from inbox.app import create_app
from inbox.bus import Event, InProcessBus, Subscription
from inbox.config import Settings
from inbox.keys import BUS, PROFILES
from inbox.models import Conversation, Inbox, Message
from inbox.realtime import AUDIENCES, Audiences, FrameWriter, Sender
from tests.conftest import (
    APP_SECRET,
    PAGE_ID,
    PASSWORD,
    Staff,
    eventually,
    live_http_parsers,
    make_inbox,
    now_ms,
    post_webhook,
    quick_user,
)

PAGE_B, SECRET_B = "2222", "app_secret_of_page_b"
CONTROL = ("ready", "resync")  # frames that carry a position, not an event


class Socket:
    """One agent socket; every frame it gets is checked for shape and order, and kept."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self.base = 0  # events() starts here: `connected` moves it past the connection's own frames

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        message = await self.ws.receive(timeout=timeout)
        assert message.type == WSMsgType.TEXT, message
        frame = orjson.loads(message.data)
        assert isinstance(frame, dict) and set(frame) == {"type", "seq", "data"}, frame
        assert isinstance(frame["type"], str) and isinstance(frame["data"], dict), frame
        assert isinstance(frame["seq"], int) and not isinstance(frame["seq"], bool), frame
        if self.frames:
            assert frame["seq"] >= self.frames[-1]["seq"], ("seq went back", self.frames[-1], frame)
        if frame["type"] not in CONTROL:
            events = [f for f in self.frames if f["type"] not in CONTROL]
            assert not events or frame["seq"] > events[-1]["seq"], ("event seq not increasing", events[-1], frame)
        self.frames.append(frame)
        return frame

    async def until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.next(max(0.01, deadline - time.monotonic()))
            if predicate(frame):
                return frame

    async def ready(self) -> dict[str, Any]:
        return await self.until(lambda f: f["type"] == "ready")

    async def presence(self, user_id: int, status: str) -> dict[str, Any]:
        return await self.until(
            lambda f: f["type"] == "presence" and f["data"] == {"user_id": user_id, "status": status}
        )

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        frames = self.frames[self.base :]
        return [f for f in frames if f["type"] not in CONTROL and (kind is None or f["type"] == kind)]

    async def send(self, kind: str, data: dict[str, Any]) -> None:
        await self.ws.send_str(orjson.dumps({"type": kind, "data": data}).decode())

    async def close(self) -> None:
        await self.ws.close()


async def connect(client: TestClient, staff: Staff, since: Any = None) -> Socket:
    params = {"token": staff.token, **({"since": str(since)} if since is not None else {})}
    return Socket(await client.ws_connect("/ws", params=params))


async def connected(client: TestClient, staff: Staff, since: Any = None) -> Socket:
    """Connected, past the `ready` frame and its own `online` presence: everything after is news."""
    socket = await connect(client, staff, since)
    await socket.ready()
    await socket.presence(staff.user.id, "online")
    socket.base = len(socket.frames)
    return socket


async def marker(client: TestClient, *sockets: Socket) -> None:
    """A staff-wide event after everything published so far, awaited on every socket."""
    staff = await quick_user("supervisor")
    extra = await connect(client, staff)
    for socket in sockets:
        await socket.presence(staff.user.id, "online")
    await extra.close()


async def incoming(
    client: TestClient, psid: str, mid: str, text: str, *, page_id: str = PAGE_ID, secret: str = APP_SECRET
) -> Conversation:
    response = await post_webhook(client, messenger_text(page_id, psid, mid, text, now_ms()), secret=secret)
    assert response.status == 200, await response.text()
    msg = await eventually(lambda: Message.get_or_none(external_id=mid))
    return await Conversation.get(id=msg.conversation_id)


def created_texts(socket: Socket) -> list[str]:
    return [f["data"]["text"] for f in socket.events("message.created")]


class Tap:
    """Every event the bus publishes, with its audience, straight from the bus (the test's oracle)."""

    def __init__(self, client: TestClient) -> None:
        self.subscription = client.app[BUS].subscribe(None, lambda event: True)
        self.events: list[Event] = []

    async def until(self, predicate: Callable[[Event], bool], timeout: float = 5.0) -> Event:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if predicate(event):
                    return event
            remaining = deadline - time.monotonic()
            assert remaining > 0, "the bus never published the expected event"
            self.events += await asyncio.wait_for(self.subscription.next_batch(), remaining)

    async def upto(self, seq: int) -> None:
        await self.until(lambda event: event.seq >= seq)

    def readable_by(self, inbox_ids: set[int], after: int, upto: int) -> list[int]:
        """Seqs in (after, upto] that an agent of these inboxes may read: the inboxes' events and staff-wide ones."""
        return [
            e.seq
            for e in self.events
            if after < e.seq <= upto and ((e.inbox_id is None and e.team_id is None) or e.inbox_id in inbox_ids)
        ]

    def close(self) -> None:
        self.subscription.close()


@pytest.fixture
async def tap(client: TestClient) -> Any:
    tapped = Tap(client)
    yield tapped
    tapped.close()


# ---------------------------------------------------------------------------------------------- auth


async def test_anonymous_and_bad_tokens_get_401(client: TestClient, inbox: Inbox) -> None:
    agent = await quick_user("agent", inboxes=[inbox])
    revoked_token, revoked_session = await create_session(agent.user)
    await revoke(revoked_session.id)
    client.session.cookie_jar.clear()
    for params in ({}, {"token": ""}, {"token": "not-a-token"}, {"token": revoked_token}):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect("/ws", params=params)
        assert refused.value.status == 401, params
    # A plain GET (no upgrade) is refused the same way, in the error shape.
    response = await client.get("/ws")
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthorized"
    # With a valid token, the missing upgrade is aiohttp's own refusal, also in the error shape.
    response = await client.get("/ws", params={"token": agent.token})
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "http_error"


async def test_cookie_socket_checks_the_origin(client: TestClient, inbox: Inbox) -> None:
    agent = await quick_user("agent", inboxes=[inbox])
    await User.filter(id=agent.user.id).update(email="cookie@shop.vn")
    client.session.cookie_jar.clear()
    login = await client.post("/api/auth/login", json={"email": "cookie@shop.vn", "password": PASSWORD})
    assert login.status == 200
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws", headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403
    plain = await client.get("/ws", headers={"Origin": "https://evil.example"})
    assert (plain.status, (await plain.json())["error"]["code"]) == (403, "bad_origin")
    same = f"http://{client.host}:{client.port}"
    socket = Socket(await client.ws_connect("/ws", headers={"Origin": same}))
    await socket.ready()
    await socket.close()


# ---------------------------------------------------------------------------------------------- who gets what


async def test_agents_receive_only_their_inboxes_events(client: TestClient, inbox: Inbox, tap: Tap) -> None:
    inbox_b = await make_inbox(page_id=PAGE_B, app_secret=SECRET_B, name="Shop Mỹ Phẩm")
    agent_a = await quick_user("agent", inboxes=[inbox])
    agent_b = await quick_user("agent", inboxes=[inbox_b])
    supervisor = await quick_user("supervisor")
    sockets = {name: await connected(client, staff) for name, staff in (("a", agent_a), ("b", agent_b))}
    sockets["sup"] = await connected(client, supervisor)
    start = max(s.frames[-1]["seq"] for s in sockets.values())

    conv_b = await incoming(client, "Q1", "m.b1", "Son này còn màu đỏ không?", page_id=PAGE_B, secret=SECRET_B)
    conv_a = await incoming(client, "P1", "m.a1", "Áo này còn size M không ạ?")
    await client.app[PROFILES].idle()
    await marker(client, *sockets.values())
    end = sockets["sup"].frames[-1]["seq"]
    await tap.upto(end)

    assert created_texts(sockets["a"]) == ["Áo này còn size M không ạ?"]
    assert created_texts(sockets["b"]) == ["Son này còn màu đỏ không?"]
    assert sorted(created_texts(sockets["sup"])) == sorted(["Áo này còn size M không ạ?", "Son này còn màu đỏ không?"])
    assert {f["data"]["conversation_id"] for f in sockets["a"].events("message.created")} == {conv_a.id}
    for name, foreign in (("a", conv_b), ("b", conv_a)):
        for frame in sockets[name].events():
            data = frame["data"]
            assert data.get("conversation_id") != foreign.id, (name, frame)
            assert data.get("inbox_id") != foreign.inbox_id, (name, frame)
            if frame["type"].startswith("conversation."):
                assert data["id"] != foreign.id, (name, frame)

    # Exactly what each may read, as the bus published it.
    def seqs(socket: Socket) -> list[int]:
        return [f["seq"] for f in socket.events() if start < f["seq"] <= end]

    assert seqs(sockets["a"]) == tap.readable_by({inbox.id}, start, end)
    assert seqs(sockets["b"]) == tap.readable_by({inbox_b.id}, start, end)
    assert seqs(sockets["sup"]) == [e.seq for e in tap.events if start < e.seq <= end]
    assert set(seqs(sockets["a"])) & set(seqs(sockets["b"])) == {
        e.seq for e in tap.events if start < e.seq <= end and e.inbox_id is None
    }
    for socket in sockets.values():
        await socket.close()


async def test_actions_reach_the_inbox_readers(client: TestClient, inbox: Inbox, tap: Tap) -> None:
    inbox_b = await make_inbox(page_id=PAGE_B, app_secret=SECRET_B)
    conv = await incoming(client, "P1", "m.1", "Shop ơi")
    await client.app[PROFILES].idle()
    agent = await quick_user("agent", inboxes=[inbox])
    outsider = await quick_user("agent", inboxes=[inbox_b])
    watcher, other = await connected(client, agent), await connected(client, outsider)
    url = f"/api/conversations/{conv.id}"
    assert (await client.post(f"{url}/assign", json={"agent_id": agent.user.id}, headers=agent.headers)).ok
    assert (await client.post(f"{url}/labels", json={"labels": ["vip"]}, headers=agent.headers)).ok
    assert (await client.post(f"{url}/messages", json={"text": "Dạ shop đây ạ"}, headers=agent.headers)).ok
    assigned = await watcher.until(lambda f: f["type"] == "conversation.assigned")
    assert (assigned["data"]["id"], assigned["data"]["assignee_id"]) == (conv.id, agent.user.id)
    labelled = await watcher.until(lambda f: f["type"] == "conversation.updated" and f["data"]["labels"] == ["vip"])
    assert labelled["data"]["id"] == conv.id
    reply = await watcher.until(lambda f: f["type"] == "message.created")
    assert (reply["data"]["text"], reply["data"]["direction"]) == ("Dạ shop đây ạ", "out")
    await marker(client, watcher, other)
    assert [f["type"] for f in other.events()] == ["presence"]  # only the marker
    await watcher.close()
    await other.close()


async def test_a_profile_edit_reaches_the_customers_readers_only(client: TestClient, inbox: Inbox) -> None:
    """contact.updated goes to the agents who may read the customer (their inbox, or the team of one of their
    conversations), never to an agent of another shop's inbox, who gets 404 for the profile."""
    from agents.models import Team, TeamMember

    inbox_b = await make_inbox(page_id=PAGE_B, app_secret=SECRET_B)
    conv = await incoming(client, "P-edit", "m.edit", "Shop ơi")
    await client.app[PROFILES].idle()
    team = await Team.create(name="Đội chăm sóc")
    await Conversation.filter(id=conv.id).update(team_id=team.id)
    member, outsider = await quick_user("agent", inboxes=[inbox]), await quick_user("agent", inboxes=[inbox_b])
    teammate = await quick_user("agent", inboxes=[inbox_b])
    await TeamMember.create(team=team, user=teammate.user)
    supervisor = await quick_user("supervisor")
    assert (await client.get(f"/api/contacts/{conv.contact_id}", headers=outsider.headers)).status == 404
    sockets = [await connected(client, staff) for staff in (member, teammate, outsider)]
    edited = await client.patch(
        f"/api/contacts/{conv.contact_id}", json={"name": "Chị Hằng"}, headers=supervisor.headers
    )
    assert edited.status == 200, await edited.text()
    for reader in sockets[:2]:
        frame = await reader.until(lambda f: f["type"] == "contact.updated")
        assert (frame["data"]["id"], frame["data"]["name"]) == (conv.contact_id, "Chị Hằng")
    await marker(client, *sockets)
    assert [f["type"] for f in sockets[2].events()] == ["presence"]  # only the marker
    for socket in sockets:
        await socket.close()


# ---------------------------------------------------------------------------------------------- since


async def test_since_replays_exactly_what_was_missed(client: TestClient, inbox: Inbox, tap: Tap) -> None:
    agent = await quick_user("agent", inboxes=[inbox])
    supervisor = await quick_user("supervisor")
    watcher = await connected(client, supervisor)
    socket = await connected(client, agent)
    await incoming(client, "P1", "m.1", "Tin thứ nhất")
    await client.app[PROFILES].idle()
    seen = await socket.until(lambda f: f["type"] == "message.created")
    last = seen["seq"]
    await socket.close()
    await watcher.presence(agent.user.id, "offline")

    await incoming(client, "P1", "m.2", "Tin thứ hai")
    await incoming(client, "P2", "m.3", "Tin thứ ba")
    await client.app[PROFILES].idle()
    await tap.until(lambda e: e.type == "message.created" and e.data["text"] == "Tin thứ ba")

    again = await connect(client, agent, since=last)
    ready = await again.ready()
    await tap.upto(ready["seq"])
    replay = again.frames[:-1]
    assert [f["type"] for f in replay if f["type"] in CONTROL] == []
    assert all(f["seq"] > last for f in replay)
    assert created_texts(again) == ["Tin thứ hai", "Tin thứ ba"]
    assert [f["seq"] for f in replay] == tap.readable_by({inbox.id}, last, ready["seq"])
    assert ready["seq"] >= max(f["seq"] for f in replay)
    # Then live events, after the replay: its own presence, and new messages.
    await again.presence(agent.user.id, "online")
    await incoming(client, "P1", "m.4", "Tin thứ tư")
    live = await again.until(lambda f: f["type"] == "message.created")
    assert live["data"]["text"] == "Tin thứ tư" and live["seq"] > ready["seq"]
    assert created_texts(again) == ["Tin thứ hai", "Tin thứ ba", "Tin thứ tư"]
    await again.close()
    await watcher.close()


async def test_since_at_the_present_replays_nothing(client: TestClient, inbox: Inbox) -> None:
    agent = await quick_user("agent", inboxes=[inbox])
    now = client.app[BUS].last_seq
    socket = await connect(client, agent, since=now)
    first = await socket.next()
    assert (first["type"], first["seq"]) == ("ready", now)
    await socket.close()


@pytest.mark.parametrize("since", ["abc", "1", "-5", "12.5", "far-future", "0x10"])
async def test_unusable_since_starts_with_resync(client: TestClient, inbox: Inbox, since: str) -> None:
    agent = await quick_user("agent", inboxes=[inbox])
    await incoming(client, "P1", "m.1", "Shop ơi")  # some history in the buffer
    bus = client.app[BUS]
    value = str(bus.last_seq + 1000) if since == "far-future" else since
    before = bus.last_seq
    socket = await connect(client, agent, since=value)
    first = await socket.next()
    assert first["type"] == "resync", first
    assert before <= first["seq"] <= bus.last_seq  # the current position, to resume from after refetching
    second = await socket.next()
    assert second["type"] == "ready"
    await socket.close()


@pytest.fixture
async def small_bus_client(aiohttp_client: Callable[..., Awaitable[TestClient]], settings: Settings) -> TestClient:
    """An app whose bus keeps only the last 5 events."""
    return await aiohttp_client(create_app(dataclasses.replace(settings, event_buffer_size=5)))


async def test_since_older_than_the_buffer_gets_resync(small_bus_client: TestClient) -> None:
    client = small_bus_client
    inbox = await make_inbox()
    agent = await quick_user("agent", inboxes=[inbox])
    tap = Tap(client)
    try:
        socket = await connected(client, agent)
        last = socket.frames[-1]["seq"]
        await socket.close()
        for i in range(4):
            await incoming(client, f"P{i}", f"m.{i}", f"Tin {i}")
        await tap.until(lambda e: e.type == "message.created" and e.data["text"] == "Tin 3")
        await client.app[PROFILES].idle()
        assert client.app[BUS].last_seq - last > 5

        again = await connect(client, agent, since=last)
        first = await again.next()
        assert first["type"] == "resync"
        assert (await again.next())["type"] == "ready"
        assert again.events() == []  # no partial replay after a resync
        await again.close()

        # A position still in the buffer replays normally on the same small bus.
        recent = client.app[BUS].last_seq - 2
        resumed = await connect(client, agent, since=recent)
        ready = await resumed.ready()
        await tap.upto(ready["seq"])
        replayed = [f["seq"] for f in resumed.frames[:-1]]
        assert replayed == tap.readable_by({inbox.id}, recent, ready["seq"])
        assert replayed and replayed[0] > recent
        await resumed.close()
    finally:
        tap.close()


async def test_a_client_that_falls_behind_gets_a_current_resync(
    client: TestClient, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Subscription, "MAX_PENDING", 3)
    agent = await quick_user("agent", inboxes=[inbox])
    socket = await connected(client, agent)
    bus = client.app[BUS]
    for n in range(5):  # published in one go: the socket's writer cannot keep up
        burst = await bus.publish(Event("presence", {"user_id": 0, "status": f"burst-{n}"}))
    resync = await socket.until(lambda f: f["type"] == "resync")
    assert resync["seq"] >= burst.seq  # resume from now (after refetching), never from an older seq
    closed = await socket.ws.receive(timeout=5)
    assert closed.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED)


# ---------------------------------------------------------------------------------------------- shared audiences


async def test_a_socket_joining_its_audience_mid_stream_misses_nothing_and_gets_nothing_twice(
    client: TestClient, inbox: Inbox, tap: Tap
) -> None:
    """Agents with the same memberships share one subscription once live; a socket that catches up with `since`
    while events keep coming switches over without a gap or a repeat (`Socket.next` rejects a seq that does
    not increase). The exact race is pinned down in the next test."""
    first, second = await quick_user("agent", inboxes=[inbox]), await quick_user("agent", inboxes=[inbox])
    live = await connected(client, first)
    since = live.frames[-1]["seq"]
    bus = client.app[BUS]
    stop = asyncio.Event()

    async def stream() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            await bus.publish(Event("conversation.updated", {"id": n, "n": n}, inbox_id=inbox.id))
            await asyncio.sleep(0.0005 if n % 7 else 0)  # several events in some turns of the loop, one in others

    streaming = asyncio.create_task(stream())
    try:
        await asyncio.sleep(0.05)
        joiner = await connect(client, second, since=since)
        await joiner.ready()
        await asyncio.sleep(0.05)
    finally:
        stop.set()
        await streaming
    await marker(client, live, joiner)
    end = joiner.frames[-1]["seq"]
    await tap.upto(end)
    expected = tap.readable_by({inbox.id}, since, end)
    assert len([e for e in tap.events if e.type == "conversation.updated" and e.seq <= end]) > 20
    for socket in (live, joiner):
        assert [f["seq"] for f in socket.frames if f["type"] not in CONTROL and since < f["seq"] <= end] == expected
        await socket.close()


class _Wire:
    """A socket's transport that keeps what is written."""

    def __init__(self) -> None:
        self.written = b""

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def seqs(self) -> list[int]:
        seqs, data = [], self.written
        while data:
            size, data = data[1], data[2:]  # short text frames: 0x81, length, payload
            seqs.append(orjson.loads(data[:size])["seq"])
            data = data[size:]
        return seqs


async def test_going_live_while_the_audience_holds_unwritten_events_sends_each_once() -> None:
    """The race the switch-over must survive: events published in the same turn of the loop as a socket goes live
    are pending both on its own subscription and on its audience's, whose writer has not run yet."""
    bus = InProcessBus(start_seq=0)
    audiences = Audiences(FrameWriter())
    viewer = Viewer(1, "agent", frozenset({5}), frozenset())
    ws = types.SimpleNamespace(closed=False)

    def sender(user_id: int, wire: _Wire) -> Sender:
        who = dataclasses.replace(viewer, user_id=user_id)
        return Sender(ws, bus.subscribe(None, who.can_receive), bus, wire, audiences, who)  # type: ignore[arg-type]

    live_wire, joiner_wire = _Wire(), _Wire()
    live = sender(1, live_wire)
    live._go_live()
    joiner = sender(2, joiner_wire)
    await bus.publish(Event("conversation.updated", {"id": 1}, inbox_id=5))  # before the joiner goes live
    await bus.publish(Event("conversation.updated", {"id": 2}, inbox_id=6))  # not theirs
    joiner._go_live()  # same turn: the audience's writer has not written event 1 yet
    await asyncio.sleep(0)
    await bus.publish(Event("conversation.updated", {"id": 3}, inbox_id=5))
    await asyncio.sleep(0)
    assert live_wire.seqs() == joiner_wire.seqs() == [1, 3]
    live.leave()
    joiner.leave()
    assert bus.subscriber_count == 0 and len(audiences) == 0


class _BrokenWire(_Wire):
    def write(self, data: bytes) -> None:
        raise ValueError("a transport in a state nobody expected")


async def test_a_broken_socket_does_not_keep_its_audience_from_the_frames() -> None:
    bus = InProcessBus(start_seq=0)
    audiences = Audiences(FrameWriter())
    ws = types.SimpleNamespace(closed=False)
    senders = []
    for user_id in range(1, 5):
        viewer = Viewer(user_id, "agent", frozenset({5}), frozenset())
        senders.append(Sender(ws, bus.subscribe(None, viewer.can_receive), bus, _Wire(), audiences, viewer))  # type: ignore[arg-type]
        senders[-1]._go_live()
    (audience,) = audiences._by_key.values()
    broken = next(iter(audience.members))  # the first one written to
    broken.transport = _BrokenWire()  # type: ignore[assignment]
    await bus.publish(Event("conversation.updated", {"id": 1}, inbox_id=5))
    await asyncio.sleep(0)
    assert [sender.transport.seqs() for sender in senders if sender is not broken] == [[1], [1], [1]]
    for sender in senders:
        sender.leave()


async def test_an_event_for_some_users_reaches_only_them_within_a_shared_audience(
    client: TestClient, inbox: Inbox
) -> None:
    addressed, other = await quick_user("agent", inboxes=[inbox]), await quick_user("agent", inboxes=[inbox])
    sockets = [await connected(client, addressed), await connected(client, other)]
    bus = client.app[BUS]
    await bus.publish(Event("conversation.updated", {"id": 1}, inbox_id=inbox.id))
    await bus.publish(Event("note", {"to": "you"}, inbox_id=inbox.id, user_ids=frozenset({addressed.user.id})))
    await bus.publish(Event("conversation.updated", {"id": 2}, inbox_id=inbox.id))
    await marker(client, *sockets)
    assert [f["data"] for f in sockets[0].events() if f["type"] != "presence"] == [{"id": 1}, {"to": "you"}, {"id": 2}]
    assert [f["data"] for f in sockets[1].events() if f["type"] != "presence"] == [{"id": 1}, {"id": 2}]
    for socket in sockets:
        await socket.close()


class _FullBuffer:
    """A transport whose client stopped reading: megabytes wait in its write buffer."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def get_write_buffer_size(self) -> int:
        return 64 * 1024 * 1024

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


async def test_a_reader_that_stopped_reading_is_resynced_alone(client: TestClient, inbox: Inbox) -> None:
    slow_agent, quick_agent = await quick_user("agent", inboxes=[inbox]), await quick_user("agent", inboxes=[inbox])
    slow, quick = await connected(client, slow_agent), await connected(client, quick_agent)
    audiences = client.app[AUDIENCES]
    (audience,) = [
        a for a in audiences._by_key.values() if any(m.viewer.user_id == slow_agent.user.id for m in a.members)
    ]
    assert {m.viewer.user_id for m in audience.members} >= {slow_agent.user.id, quick_agent.user.id}  # shared
    (sender,) = [m for m in audience.members if m.viewer.user_id == slow_agent.user.id]
    sender.transport = _FullBuffer(sender.transport)
    await client.app[BUS].publish(Event("conversation.updated", {"id": 7}, inbox_id=inbox.id))
    assert (await slow.until(lambda f: f["type"] in ("resync", "conversation.updated")))["type"] == "resync"
    assert (await quick.until(lambda f: f["type"] in ("resync", "conversation.updated")))["data"] == {"id": 7}
    await marker(client, quick)  # the quick one goes on receiving
    await quick.close()


async def test_an_audience_goes_with_its_last_socket(client: TestClient, inbox: Inbox) -> None:
    bus, audiences = client.app[BUS], client.app[AUDIENCES]
    subscribers, groups = bus.subscriber_count, len(audiences)
    agents = [await quick_user("agent", inboxes=[inbox]) for _ in range(3)]
    sockets = [await connected(client, agent) for agent in agents]
    assert len(audiences) == groups + 1 and bus.subscriber_count == subscribers + 1  # one for the three
    for socket in sockets:
        await socket.close()

    async def gone() -> bool:
        return len(audiences) == groups and bus.subscriber_count == subscribers

    await eventually(gone)


async def test_an_open_socket_keeps_no_http_parser_and_still_works(client: TestClient, inbox: Inbox) -> None:
    """Each connection's HTTP parser holds a copy of its upgrade request's headers: an idle agent tab would keep
    it all day. Once upgraded, the socket lets it go and goes on receiving and sending frames."""
    agents = [await quick_user("agent", inboxes=[inbox]) for _ in range(4)]
    before = live_http_parsers()
    sockets = [await connected(client, agent) for agent in agents]
    assert live_http_parsers() <= before  # four new connections, none of them with a parser left
    await incoming(client, "psid-parser", "m_parser_1", "Còn hàng không shop?")
    for socket in sockets:
        frame = await socket.until(lambda f: f["type"] == "message.created")
        assert frame["data"]["text"] == "Còn hàng không shop?"
    await sockets[0].send("typing", {"conversation_id": frame["data"]["conversation_id"], "on": True})
    await sockets[1].until(lambda f: f["type"] == "typing")
    for socket in sockets:
        await socket.close()


# ---------------------------------------------------------------------------------------------- typing, presence


async def test_typing_reaches_the_inbox_readers_only(client: TestClient, inbox: Inbox) -> None:
    inbox_b = await make_inbox(page_id=PAGE_B, app_secret=SECRET_B)
    conv_a = await incoming(client, "P1", "m.a", "Shop ơi")
    conv_b = await incoming(client, "Q1", "m.b", "Alo", page_id=PAGE_B, secret=SECRET_B)
    await client.app[PROFILES].idle()
    typist = await quick_user("agent", inboxes=[inbox])
    colleague = await quick_user("agent", inboxes=[inbox])
    outsider = await quick_user("agent", inboxes=[inbox_b])
    supervisor = await quick_user("supervisor")
    s_typist, s_colleague = await connected(client, typist), await connected(client, colleague)
    s_outsider, s_supervisor = await connected(client, outsider), await connected(client, supervisor)

    await s_typist.send("typing", {"conversation_id": conv_a.id, "on": True})
    got = await s_colleague.until(lambda f: f["type"] == "typing")
    assert got["data"] == {"conversation_id": conv_a.id, "user_id": typist.user.id, "on": True, "sender_type": "agent"}
    await s_supervisor.until(lambda f: f["type"] == "typing" and f["data"]["user_id"] == typist.user.id)

    # The outsider may not type into inbox A's conversation; its own inbox's typing proves its frames were handled.
    await s_outsider.send("typing", {"conversation_id": conv_a.id, "on": True})
    await s_outsider.send("typing", {"conversation_id": 999999, "on": True})
    await s_outsider.send("typing", {"conversation_id": str(conv_a.id)})
    await s_outsider.send("nonsense", {})
    await s_outsider.ws.send_str("not json")
    await s_outsider.send("typing", {"conversation_id": conv_b.id, "on": False})
    await s_outsider.until(lambda f: f["type"] == "typing" and f["data"]["conversation_id"] == conv_b.id)
    await s_supervisor.until(lambda f: f["type"] == "typing" and f["data"]["conversation_id"] == conv_b.id)
    await marker(client, s_typist, s_colleague, s_outsider, s_supervisor)

    assert [f["data"]["user_id"] for f in s_colleague.events("typing")] == [typist.user.id]
    assert [f["data"]["conversation_id"] for f in s_outsider.events("typing")] == [conv_b.id]
    assert [f["data"]["conversation_id"] for f in s_supervisor.events("typing")] == [conv_a.id, conv_b.id]
    for socket in (s_typist, s_colleague, s_outsider, s_supervisor):
        await socket.close()


async def test_presence_on_connect_and_disconnect(client: TestClient, inbox: Inbox) -> None:
    supervisor = await quick_user("supervisor")
    agent = await quick_user("agent", inboxes=[inbox])
    watcher = await connected(client, supervisor)
    socket = await connect(client, agent)
    online = await watcher.presence(agent.user.id, "online")
    await socket.ready()
    await socket.close()
    offline = await watcher.presence(agent.user.id, "offline")
    assert offline["seq"] > online["seq"]
    await watcher.close()


async def test_an_agent_with_two_tabs_goes_offline_only_when_the_last_one_closes(
    client: TestClient, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    supervisor = await quick_user("supervisor")
    agent = await quick_user("agent", inboxes=[inbox])
    watcher = await connected(client, supervisor)
    first = await connect(client, agent)
    await watcher.presence(agent.user.id, "online")
    # A database slow to count the new tab (a busy Postgres): its `ready` still means it is counted, so the other
    # tab closing right after it is not the last one.
    presence = client.app[PRESENCE]
    count_tab = presence.connected

    async def slowly_counted(user_id: int) -> str:
        await asyncio.sleep(0.3)
        return await count_tab(user_id)

    monkeypatch.setattr(presence, "connected", slowly_counted)
    second = await connect(client, agent)
    await second.ready()
    await first.close()
    await marker(client, watcher)
    assert [f["data"] for f in watcher.events("presence") if f["data"]["user_id"] == agent.user.id] == [
        {"user_id": agent.user.id, "status": "online"}
    ]
    await second.close()
    await watcher.presence(agent.user.id, "offline")
    await watcher.close()


async def test_the_heartbeat_drops_a_silent_socket_and_keeps_one_that_answers(
    aiohttp_client: Callable[..., Awaitable[TestClient]], settings: Settings, inbox: Inbox
) -> None:
    """Every socket is pinged; one whose client stopped answering (a laptop that slept, a dead network) is closed,
    and its agent goes offline, while a client that answers stays connected across many pings."""
    beating = dataclasses.replace(settings, extra={**settings.extra, "ws_heartbeat_seconds": "0.1"})
    client = await aiohttp_client(create_app(beating))
    supervisor = await quick_user("supervisor")
    agent = await quick_user("agent", inboxes=[inbox])
    watcher = await connected(client, supervisor)  # aiohttp's client answers pings by itself
    silent = await client.ws_connect("/ws", params={"token": agent.token}, autoping=False)
    online = await watcher.presence(agent.user.id, "online")
    # The watcher reads (and so answers pings) while the silent client's messages are collected.
    offline = asyncio.create_task(watcher.presence(agent.user.id, "offline"))
    kinds = []
    while True:  # the silent client sees the server's pings and never answers them
        message = await silent.receive(timeout=5)
        kinds.append(message.type)
        if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
            break
    assert WSMsgType.PING in kinds, kinds
    assert (await offline)["seq"] > online["seq"]
    # Five more beats while the watcher reads (its client answers pings only while reading).
    reading = asyncio.create_task(watcher.until(lambda _: False, timeout=60))
    await asyncio.sleep(0.5)
    assert not reading.done() and not watcher.ws.closed
    reading.cancel()
    await asyncio.gather(reading, return_exceptions=True)
    await marker(client, watcher)  # and it still receives
    await watcher.close()
