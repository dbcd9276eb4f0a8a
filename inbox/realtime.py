"""`GET /ws` for agents: frames `{type, seq, data}`, filtered per reader, resumable with `?since=<seq>`.

Register → replay → live: the subscription is registered before the replay is taken, so nothing published in
between is lost. A client too far behind gets a `resync` frame and should refetch. Each socket has its own
writer, so one slow client never stalls the others; one that falls too far behind is told to resync.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from agents.presence import PRESENCE
from contacts.masking import can_view_pii
from inbox.api.guard import authenticate
from inbox.bus import NOTHING, Event, EventBus, Subscription
from inbox.http import ContractErrors, fail, long_lived
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


def _frame(kind: str, seq: int, data: dict[str, Any]) -> str:
    return orjson.dumps({"type": kind, "seq": seq, "data": data}).decode()


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
        viewer = auth.viewer
        pii = can_view_pii(auth.user)  # masked phones/e-mails in frames without `view_contact_pii`
        del auth  # an idle socket keeps only what it needs: the viewer, not the session and user rows
        # No permessage-deflate: compressing every frame for every agent costs more CPU than the bytes it saves.
        # Pings come from the shared `Heartbeat`, and pongs are read here (autoping off).
        ws = web.WebSocketResponse(autoping=False, max_msg_size=64 * 1024, compress=False)
        await ws.prepare(request)
    bus = request.app[BUS]
    subscription = bus.subscribe(since, viewer.can_receive)
    sender = Sender(ws, subscription, bus, request.transport, request.app[WRITER], pii)
    sockets = request.app[SOCKETS_PER_USER]
    presence = request.app.get(PRESENCE)
    heartbeat = request.app[HEARTBEAT]
    sockets[viewer.user_id] += 1
    heartbeat.add(sender)
    try:
        await sender.start(bus.last_seq)
        if presence is not None:  # counted across processes; published when the agent's presence changes
            await presence.connected(viewer.user_id)
        elif sockets[viewer.user_id] == 1:  # an agent with several tabs is online once
            await bus.publish(Event("presence", {"user_id": viewer.user_id, "status": "online"}))
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
        subscription.close()
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
    """Writes one socket's events in order. Live events are written by the app's one `FrameWriter`: no task is
    started per socket per burst of events, and an idle socket holds none. A client that falls too far behind is
    told to resync and closed (the only step that needs a task)."""

    __slots__ = ("answered", "bus", "pii", "subscription", "task", "transport", "writer", "ws")

    def __init__(
        self,
        ws: web.WebSocketResponse,
        subscription: Subscription,
        bus: EventBus,
        transport: asyncio.Transport | None,
        writer: FrameWriter,
        pii: bool = True,
    ) -> None:
        self.ws, self.subscription, self.bus, self.transport = ws, subscription, bus, transport
        self.pii = pii
        self.writer = writer
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
        """The catch-up (resync or replay, then `ready`), then live events as they come."""
        if self.subscription.resync:
            await self.ws.send_str(_frame("resync", last_seq, {"reason": "events since that seq are no longer kept"}))
        for event in self.subscription.replay:
            await self.ws.send_frame(event.frame_bytes_for(self.pii), WSMsgType.TEXT)
        self.subscription.replay = NOTHING  # the replayed events are let go
        await self.ws.send_str(_frame("ready", last_seq, {}))
        self.subscription.on_pending = self.kick
        self.kick()  # whatever was published while catching up

    def kick(self) -> None:
        self.writer.add(self)

    def write_pending(self) -> None:
        """Every pending frame in one write (one syscall), not one per frame. Frames are whole and written
        synchronously, so they never interleave with aiohttp's own ping/pong/close frames."""
        if self.ws.closed or self.task is not None:
            return
        subscription = self.subscription
        batch = subscription.take()
        transport = self.transport
        if not batch:
            if subscription.overflowed:
                self._resync()
            return
        if transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size() > MAX_UNSENT_BYTES:
            subscription.overflowed = True  # the client stopped reading: resync beats unbounded memory
            self._resync()
            return
        pii = self.pii
        try:
            transport.write(b"".join(event.ws_frame_for(pii) for event in batch))
        except (ConnectionResetError, RuntimeError):
            return

    def _resync(self) -> None:
        self.task = asyncio.create_task(self._send_resync())

    async def _send_resync(self) -> None:
        try:
            # The current seq: seqs never go back, and the client resumes from here after refetching.
            await self.ws.send_str(_frame("resync", self.bus.last_seq, {"reason": "client fell behind"}))
            await self.ws.close()
        except (ConnectionResetError, RuntimeError):
            return

    async def stop(self) -> None:
        self.subscription.on_pending = None
        task = self.task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class FrameWriter:
    """Writes the pending frames of every socket that has some, once per turn of the event loop: the events
    published in one turn (a batch's messages) leave in one write per socket, and no socket needs a task."""

    __slots__ = ("_scheduled", "_senders")

    def __init__(self) -> None:
        self._senders: set[Sender] = set()  # each socket once, however many events it got this turn
        self._scheduled = False

    def add(self, sender: Sender) -> None:
        self._senders.add(sender)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._write)

    def _write(self) -> None:
        self._scheduled = False
        senders, self._senders = self._senders, set()
        for sender in senders:
            try:
                sender.write_pending()
            except Exception:  # one broken socket must not keep the others' frames back
                log.exception("writing frames to an agent socket failed")


class Heartbeat:
    """Pings every agent socket from one timer. aiohttp's own `heartbeat=` keeps timers and a ping task per socket
    (≈ 1 KiB per idle socket once a ping has gone out); with thousands of agents' tabs open, one loop over the
    sockets is cheaper. A socket silent for a whole interval after its ping is closed (`Sender.beat`)."""

    def __init__(self, interval: float = HEARTBEAT_SECONDS) -> None:
        self.interval = interval
        self._senders: set[Sender] = set()
        self._task: asyncio.Task[None] | None = None

    def add(self, sender: Sender) -> None:
        self._senders.add(sender)

    def discard(self, sender: Sender) -> None:
        self._senders.discard(sender)

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

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="websocket-heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


HEARTBEAT = web.AppKey("heartbeat", Heartbeat)
WRITER = web.AppKey("frame_writer", FrameWriter)


async def heartbeats(app: web.Application) -> AsyncIterator[None]:
    """The agent sockets' shared heartbeat and frame writer, for the app's lifetime (`ws_heartbeat_seconds`
    shortens the heartbeat in tests)."""
    app[WRITER] = FrameWriter()
    heartbeat = app[HEARTBEAT] = Heartbeat(float(app[SETTINGS].extra.get("ws_heartbeat_seconds", HEARTBEAT_SECONDS)))
    heartbeat.start()
    yield
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
    data = frame.get("data") or {}
    conv_id = data.get("conversation_id")
    if not isinstance(conv_id, int):
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
