"""`GET /ws` for agents: frames `{type, seq, data}`, filtered per reader, resumable with `?since=<seq>`.

Register → replay → live: the subscription is registered before the replay is taken, so nothing published in
between is lost. A client too far behind gets a `resync` frame and should refetch. Each socket has its own
writer, so one slow client never stalls the others; one that falls too far behind is told to resync.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from inbox.api.guard import authenticate
from inbox.bus import Event, EventBus, Subscription
from inbox.http import fail
from inbox.keys import BUS
from inbox.models import Conversation

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
SOCKETS_PER_USER = web.AppKey("sockets_per_user", Counter)
HEARTBEAT_SECONDS = 25.0


def _frame(kind: str, seq: int, data: dict[str, Any]) -> str:
    return orjson.dumps({"type": kind, "seq": seq, "data": data}).decode()


@routes.get("/ws")
async def agent_socket(request: web.Request) -> web.StreamResponse:
    auth = await authenticate(request, allow_query_token=True)
    if auth is None:
        fail(401, "unauthorized", "log in first")
    if auth.via_cookie and not _same_origin(request):
        fail(403, "bad_origin", "origin not allowed")
    since = _since(request.query.get("since"))
    bus = request.app[BUS]
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=64 * 1024)
    await ws.prepare(request)
    viewer = auth.viewer
    subscription = bus.subscribe(since, viewer.can_receive)
    writer = asyncio.create_task(_write(ws, subscription, bus.last_seq, bus))
    sockets = request.app[SOCKETS_PER_USER]
    sockets[viewer.user_id] += 1
    if sockets[viewer.user_id] == 1:  # an agent with several tabs is online once
        await bus.publish(Event("presence", {"user_id": viewer.user_id, "status": "online"}))
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await _client_frame(request, viewer, message.data)
            elif message.type == WSMsgType.ERROR:
                break
    finally:
        subscription.close()
        writer.cancel()
        # Before any other await: once the peer is gone the server may cancel this handler (aiohttp's
        # handler_cancellation), and the offline presence must still go out.
        sockets[viewer.user_id] -= 1
        if sockets[viewer.user_id] <= 0:  # offline only when the last tab closes
            del sockets[viewer.user_id]
            await asyncio.shield(bus.publish(Event("presence", {"user_id": viewer.user_id, "status": "offline"})))
        await asyncio.gather(writer, return_exceptions=True)
    return ws


def _since(raw: str | None) -> int | None:
    """The client's last seq. One that cannot be read is a position too old to replay (resync), not none."""
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        return -1


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is None or origin.split("://", 1)[-1] == request.host


async def _write(ws: web.WebSocketResponse, subscription: Subscription, last_seq: int, bus: EventBus) -> None:
    try:
        if subscription.resync:
            await ws.send_str(_frame("resync", last_seq, {"reason": "events since that seq are no longer kept"}))
        for event in subscription.replay:
            await ws.send_str(event.frame())
        await ws.send_str(_frame("ready", last_seq, {}))
        while not ws.closed:
            batch = await subscription.next_batch()
            if not batch:
                if subscription.overflowed:
                    # The current seq: seqs never go back, and the client resumes from here after refetching.
                    await ws.send_str(_frame("resync", bus.last_seq, {"reason": "client fell behind"}))
                    await ws.close()
                return
            for event in batch:
                await ws.send_str(event.frame())
    except (ConnectionResetError, RuntimeError):
        return


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
