"""`GET /ws` for agents: frames `{type, seq, data}`, filtered per reader, resumable with `?since=<seq>`.

Register → replay → live: the socket's own subscription is registered before the replay is taken, so nothing
published in between is lost. Live, sockets that read the same events (an `Audience`) share one subscription, and
each turn's frames are joined once and written to each of them. A client too far behind gets a `resync` frame and
should refetch. Writes never wait on a client, so one slow client never stalls the others; one that falls too far
behind is told to resync.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from functools import partial
from typing import Any, NamedTuple

import orjson
from aiohttp import WSMsgType, web

from agents.access import ACCESS_CHANGED, Viewer
from agents.presence import PRESENCE
from agents.sessions import current_access
from contacts.masking import can_view_pii
from inbox.api.guard import authenticate
from inbox.bus import NOTHING, Event, EventBus, Subscription
from inbox.http import ContractErrors, fail, is_id, long_lived, prepare_socket
from inbox.keys import BUS, SETTINGS
from inbox.models import Conversation
from inbox.security import origin_allowed

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
SOCKETS_PER_USER = web.AppKey("sockets_per_user", Counter)
HEARTBEAT_SECONDS = 25.0
MAX_UNSENT_BYTES = 4 * 1024 * 1024  # a client with this much unread is told to resync
PING_FRAME = b"\x89\x00"  # FIN + ping, no payload (server frames are not masked)
BEAT_STEP = 500  # sockets pinged per turn of the event loop
SESSION_ENDED = 4001  # close code: the session ended or the user's rights changed; connect again (or log in)
# How soon a socket ends after a change the bus never carried (made by another program on the database, such as a
# script or SQL, or a session expiring): every open socket's session is checked again at this interval.
ACCESS_CHECK_SECONDS = 60.0
ACCESS_CHECK_STEP = 500  # sessions per query: well within SQLite's and Postgres's limits on parameters


def _frame(kind: str, seq: int, data: dict[str, Any]) -> str:
    return orjson.dumps({"type": kind, "seq": seq, "data": data}).decode()


def _ws_frames(events: list[Event], pii: bool) -> bytes:
    """The events' whole WebSocket frames, back to back, for one write."""
    return b"".join(event.ws_frame_for(pii) for event in events)


@routes.get("/ws")
@long_lived
async def agent_socket(request: web.Request) -> web.StreamResponse:
    with ContractErrors(request):  # the handshake's errors (401, 403, 503…) in the contract's shape
        auth = await authenticate(request, allow_query_token=True)
        if auth is None:
            fail(401, "unauthorized", "log in first")
        if not origin_allowed(request):  # a browser on another site; clients without Origin are not browsers
            fail(403, "bad_origin", "origin not allowed")
        since = _since(request.query.get("since"))
        viewer, session_id = auth.viewer, auth.session_id
        pii = can_view_pii(auth.user)  # masked phones/e-mails in frames without `view_contact_pii`
        del auth  # an idle socket keeps only what it needs: the viewer, not the session and user rows
        # No permessage-deflate: compressing every frame for every agent costs more CPU than the bytes it saves.
        # Pings come from the shared `Heartbeat`, and pongs are read here (autoping off).
        ws = web.WebSocketResponse(autoping=False, max_msg_size=64 * 1024, compress=False)
        await prepare_socket(ws, request)
    bus = request.app[BUS]
    replayed_up_to = bus.last_seq  # `ready`'s seq: what comes later reaches the socket after `ready`
    # Not kept here: once the socket is live its own subscription is let go (`Sender._go_live`).
    sender = Sender(ws, bus.subscribe(since, viewer.can_receive), bus, request.transport, request.app[AUDIENCES],
                    viewer, pii, session_id)  # fmt: skip
    sockets = request.app[SOCKETS_PER_USER]
    presence = request.app.get(PRESENCE)
    heartbeat = request.app[HEARTBEAT]
    sockets[viewer.user_id] += 1
    heartbeat.add(sender)
    try:
        # Counted before `ready`: a client that has its `ready` frame is online, so closing another tab of the
        # same agent afterwards never reads as the last one. The presence frame this publishes reaches the socket
        # through its own subscription, after `ready`.
        if presence is not None:  # counted across processes; published when the agent's presence changes
            await presence.connected(viewer.user_id)
        elif sockets[viewer.user_id] == 1:  # an agent with several tabs is online once
            await bus.publish(Event("presence", {"user_id": viewer.user_id, "status": "online"}))
        await sender.start(replayed_up_to)
        async for message in ws:
            sender.answered = True  # anything from the client shows it is there, a pong above all
            if message.type == WSMsgType.TEXT:
                if presence is not None and '"typing"' in message.data:
                    await presence.touch(viewer.user_id)  # typing is activity; keep-alive pings are not
                await _client_frame(request, viewer, message.data)
            elif message.type == WSMsgType.PING:
                await ws.pong(message.data)
            elif message.type == WSMsgType.ERROR:
                break
    finally:
        heartbeat.discard(sender)
        sender.leave()
        # Before any other await: once the peer is gone the server may cancel this handler (aiohttp's
        # handler_cancellation), and the offline presence must still go out.
        sockets[viewer.user_id] -= 1
        last_tab = sockets[viewer.user_id] <= 0  # offline only when the last tab closes
        if last_tab:
            del sockets[viewer.user_id]
        if presence is not None:
            await asyncio.shield(presence.disconnected(viewer.user_id))
        elif last_tab:
            await asyncio.shield(bus.publish(Event("presence", {"user_id": viewer.user_id, "status": "offline"})))
        await sender.stop()
    return ws


class Sender:
    """One agent socket. It catches up on a subscription of its own (resync or replay, then `ready`), then joins
    its `Audience`, whose writer sends it the live events; an idle socket holds no task and no subscription. A
    client that falls too far behind is told to resync and closed (the only step that needs a task)."""

    __slots__ = (
        "answered",
        "audience",
        "audiences",
        "bus",
        "joined_after",
        "pii",
        "session_id",
        "subscription",
        "task",
        "transport",
        "viewer",
        "ws",
    )  # fmt: skip

    def __init__(
        self,
        ws: web.WebSocketResponse,
        subscription: Subscription,
        bus: EventBus,
        transport: asyncio.Transport | None,
        audiences: Audiences,
        viewer: Viewer,
        pii: bool = True,
        session_id: int | None = None,
    ) -> None:
        self.ws, self.bus, self.transport = ws, bus, transport
        self.session_id = session_id
        self.subscription: Subscription | None = subscription  # until the socket is live
        self.audiences, self.viewer, self.pii = audiences, viewer, pii
        self.audience: Audience | None = None
        self.joined_after = 0  # events up to this seq came through the socket's own subscription
        self.task: asyncio.Task[None] | None = None  # the resync, when the client fell behind
        self.answered = True  # the client has sent something since the last ping

    def beat(self) -> None:
        """Ping the client, or drop a connection whose client did not answer the previous ping: its peer is gone.
        Aborting the transport ends the handler's read loop like a client's close, and cleans up the same way."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if not self.answered:
            transport.abort()
            return
        self.answered = False
        transport.write(PING_FRAME)  # whole and synchronous: never inside another frame

    async def start(self, last_seq: int) -> None:
        """The catch-up (resync or replay, then `ready`), then live events through the socket's audience."""
        subscription = self.subscription
        assert subscription is not None
        if subscription.resync:
            await self.ws.send_str(_frame("resync", last_seq, {"reason": "events since that seq are no longer kept"}))
        for event in subscription.replay:
            await self.ws.send_frame(event.frame_bytes_for(self.pii), WSMsgType.TEXT)
        subscription.replay = NOTHING  # the replayed events are let go
        await self.ws.send_str(_frame("ready", last_seq, {}))
        self._go_live()

    def _go_live(self) -> None:
        """From the socket's own subscription to its audience's, with no await in between: what the own one holds
        (published during the catch-up) is written now, and the audience sends only what comes after it."""
        subscription = self.subscription
        assert subscription is not None
        batch = subscription.take()
        if subscription.overflowed:
            self.resync()
            return
        self.joined_after = max(self.bus.last_seq, subscription.after)
        subscription.close()
        self.subscription = None
        if batch:
            self.write(_ws_frames(batch, self.pii))
        self.audiences.join(self)

    def own_frames(self, batch: list[Event]) -> bytes:
        """The frames of an audience's batch that are this socket's: after what it had before joining, and of the
        events addressed to some users only, those for its user."""
        pii, after, user_id = self.pii, self.joined_after, self.viewer.user_id
        return b"".join(
            event.ws_frame_for(pii)
            for event in batch
            if event.seq > after and (event.user_ids is None or user_id in event.user_ids)
        )

    def write(self, frames: bytes) -> None:
        """Whole frames in one synchronous write (one syscall), so they never interleave with aiohttp's own
        ping/pong/close frames."""
        if self.ws.closed or self.task is not None:
            return
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size() > MAX_UNSENT_BYTES:
            self.resync()  # the client stopped reading: resync beats unbounded memory
            return
        try:
            transport.write(frames)
        except (ConnectionResetError, RuntimeError):
            return

    def resync(self) -> None:
        if self.task is None:
            self.task = asyncio.create_task(self._send_resync())

    def end_session(self) -> None:
        """Close with `SESSION_ENDED`: the client connects again with what its session allows now."""
        if self.task is None:
            self.task = asyncio.create_task(self._close_ended())

    async def _close_ended(self) -> None:
        try:
            await self.ws.close(code=SESSION_ENDED, message=b"session ended or access changed")
        except (ConnectionResetError, RuntimeError):
            return

    async def _send_resync(self) -> None:
        try:
            # The current seq: seqs never go back, and the client resumes from here after refetching.
            await self.ws.send_str(_frame("resync", self.bus.last_seq, {"reason": "client fell behind"}))
            await self.ws.close()
        except (ConnectionResetError, RuntimeError):
            return

    def leave(self) -> None:
        """No more events for this socket (synchronous: a cancelled handler still gets this far)."""
        if self.subscription is not None:
            self.subscription.close()
            self.subscription = None
        self.audiences.leave(self)

    async def stop(self) -> None:
        task = self.task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class AudienceKey(NamedTuple):
    role: str
    inbox_ids: frozenset[int]
    team_ids: frozenset[int]
    pii: bool


class Audience:
    """The agent sockets that read the same events: the same role, inboxes and teams, and the same view of
    contacts' PII. They share one bus subscription, so each event is filtered once, and each turn's frames are
    joined once and written to every socket. Per socket, that left one write: with 50 agents on one inbox,
    offering every event to every socket and joining its frames had been the largest cost of a message."""

    __slots__ = ("key", "members", "subscription")

    def __init__(self, key: AudienceKey, subscription: Subscription) -> None:
        self.key, self.subscription = key, subscription
        self.members: set[Sender] = set()

    def write_pending(self) -> None:
        subscription = self.subscription
        batch = subscription.take()
        if not batch:
            if subscription.overflowed:
                # More events in one turn than a subscription keeps, or the bus lost some: every member refetches.
                for member in tuple(self.members):
                    member.resync()
            return
        first = batch[0].seq
        personal = any(event.user_ids is not None for event in batch)
        shared = None
        for member in tuple(self.members):
            if personal or member.joined_after >= first:
                frames = member.own_frames(batch)
            else:
                if shared is None:
                    shared = _ws_frames(batch, self.key.pii)
                frames = shared
            if frames:
                try:
                    member.write(frames)
                except Exception:  # one broken socket must not keep the others' frames back
                    log.exception("writing frames to an agent socket failed")


class Audiences:
    """The app's audiences, by key; one is made when its first socket goes live and dropped with its last."""

    __slots__ = ("_by_key", "writer")

    def __init__(self, writer: FrameWriter) -> None:
        self._by_key: dict[AudienceKey, Audience] = {}
        self.writer = writer

    def join(self, sender: Sender) -> None:
        viewer = sender.viewer
        key = AudienceKey(viewer.role, viewer.inbox_ids, viewer.team_ids, sender.pii)
        audience = self._by_key.get(key)
        if audience is None or audience.subscription.overflowed:
            if audience is not None:  # its members are being told to resync; newcomers get a fresh one
                audience.subscription.close()
            audience = self._by_key[key] = Audience(key, sender.bus.subscribe(None, viewer.reads_audience))
            audience.subscription.on_pending = partial(self.writer.add, audience)
        audience.members.add(sender)
        sender.audience = audience

    def leave(self, sender: Sender) -> None:
        audience, sender.audience = sender.audience, None
        if audience is None:
            return
        audience.members.discard(sender)
        if not audience.members:
            audience.subscription.close()
            if self._by_key.get(audience.key) is audience:
                del self._by_key[audience.key]

    def __len__(self) -> int:
        return len(self._by_key)


class FrameWriter:
    """Writes the pending frames of every audience that has some, once per turn of the event loop: the events
    published in one turn (a batch's messages) leave in one write per socket, and no socket needs a task."""

    __slots__ = ("_pending", "_scheduled")

    def __init__(self) -> None:
        self._pending: set[Audience] = set()  # each audience once, however many events it got this turn
        self._scheduled = False

    def add(self, audience: Audience) -> None:
        self._pending.add(audience)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._write)

    def _write(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, set()
        for audience in pending:
            try:
                audience.write_pending()
            except Exception:  # one audience's failure must not keep the others' frames back
                log.exception("writing frames to an audience failed")


class Heartbeat:
    """Pings every agent socket from one timer. aiohttp's own `heartbeat=` keeps timers and a ping task per socket
    (≈ 1 KiB per idle socket once a ping has gone out); with thousands of agents' tabs open, one loop over the
    sockets is cheaper. A socket silent for a whole interval after its ping is closed (`Sender.beat`)."""

    def __init__(self, interval: float = HEARTBEAT_SECONDS, access_interval: float = ACCESS_CHECK_SECONDS) -> None:
        self.interval, self.access_interval = interval, access_interval
        self._senders: set[Sender] = set()
        self._task: asyncio.Task[None] | None = None
        self._access_task: asyncio.Task[None] | None = None

    def add(self, sender: Sender) -> None:
        self._senders.add(sender)

    def discard(self, sender: Sender) -> None:
        self._senders.discard(sender)

    def end_sessions(self, event: Event) -> None:
        """Close the sockets an `access.changed` event names (a rare event: a pass over every socket is fine)."""
        users, sessions = set(event.data["user_ids"]), event.data["session_ids"]
        for sender in tuple(self._senders):
            if sender.viewer.user_id in users and (sessions is None or sender.session_id in sessions):
                sender.end_session()

    async def check_access(self) -> None:
        """End the sockets whose session is no longer valid, or whose user's rights differ from the handshake's:
        `access.changed` covers the changes made through the server, this the rest. A query per 500 sessions,
        for all the sockets of the process."""
        sockets = [(sender.session_id, sender) for sender in self._senders if sender.session_id is not None]
        for start in range(0, len(sockets), ACCESS_CHECK_STEP):
            chunk = sockets[start : start + ACCESS_CHECK_STEP]
            access = await current_access(sorted({session_id for session_id, _ in chunk}))
            for session_id, sender in chunk:
                if access.get(session_id) != (sender.viewer, sender.pii):
                    sender.end_session()

    async def beat(self) -> None:
        senders = tuple(self._senders)
        for start in range(0, len(senders), BEAT_STEP):
            for sender in senders[start : start + BEAT_STEP]:
                sender.beat()
            await asyncio.sleep(0)  # thousands of sockets: webhooks get the loop between steps

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.beat()

    async def _check_access_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.access_interval)
            try:
                await self.check_access()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database was away: the next round checks again
                log.exception("checking the agent sockets' sessions failed")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="websocket-heartbeat")
        self._access_task = asyncio.create_task(self._check_access_periodically(), name="websocket-access-check")

    async def stop(self) -> None:
        tasks = [task for task in (self._task, self._access_task) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


HEARTBEAT = web.AppKey("heartbeat", Heartbeat)
AUDIENCES = web.AppKey("audiences", Audiences)


async def heartbeats(app: web.Application) -> AsyncIterator[None]:
    """The agent sockets' shared heartbeat, audiences and frame writer, for the app's lifetime (`ws_heartbeat_seconds`
    and `ws_access_check_seconds` shorten the heartbeat and the sessions' check in tests)."""
    app[AUDIENCES] = Audiences(FrameWriter())
    extra = app[SETTINGS].extra
    heartbeat = app[HEARTBEAT] = Heartbeat(
        float(extra.get("ws_heartbeat_seconds", HEARTBEAT_SECONDS)),
        float(extra.get("ws_access_check_seconds", ACCESS_CHECK_SECONDS)),
    )
    heartbeat.start()
    # Access changes reach every process through the bus; each closes its own sockets of those users.
    changes = app[BUS].subscribe(None, lambda event: event.type == ACCESS_CHANGED)

    def on_change() -> None:
        for event in changes.take():
            heartbeat.end_sessions(event)
        changes.overflowed = False  # a burst of changes is rare; the next ones still count

    changes.on_pending = on_change
    yield
    changes.close()
    await heartbeat.stop()


def _since(raw: str | None) -> int | None:
    """The client's last seq. One that cannot be read is a position too old to replay (resync), not none."""
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        return -1


async def _client_frame(request: web.Request, viewer, raw: str) -> None:
    """Agents send `typing` ({conversation_id, on}) and `ping`; anything else is ignored."""
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return
    if not isinstance(frame, dict) or frame.get("type") != "typing":
        return
    data = frame.get("data")
    conv_id = data.get("conversation_id") if isinstance(data, dict) else None
    if not is_id(conv_id):
        return
    conv = await Conversation.get_or_none(id=conv_id).only("id", "inbox_id", "team_id")
    if conv is None:
        return
    where = (conv.inbox_id, conv.team_id)
    if not viewer.can_read(*where):
        return
    await request.app[BUS].publish(
        Event(
            "typing",
            {
                "conversation_id": conv_id,
                "user_id": viewer.user_id,
                "on": bool(data.get("on", True)),
                "sender_type": "agent",
            },
            inbox_id=where[0],
            team_id=where[1],
        )
    )
