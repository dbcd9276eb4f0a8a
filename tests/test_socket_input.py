"""Odd input on the agent and widget sockets: a clear refusal or nothing, never a 500 or a dropped socket."""

from __future__ import annotations

import aiohttp
import orjson
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from inbox.models import Inbox
from inbox.webchat import create_inbox
from tests.conftest import quick_user
from tests.test_realtime import connected, incoming

ORIGIN = "https://shop.example"


@pytest.mark.parametrize("origin", ["https://shop.example:99999", "https://shop.example:abc", "http://[::1"])
async def test_agent_socket_bad_origin_is_403_not_500(client: TestClient, inbox: Inbox, origin: str) -> None:
    agent = await quick_user("agent", inboxes=[inbox])
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws", params={"token": agent.token}, headers={"Origin": origin})
    assert refused.value.status == 403, refused.value.status


@pytest.mark.parametrize("origin", ["https://shop.example:99999", "https://shop.example:abc", "http://[::1"])
async def test_widget_socket_bad_origin_is_403_not_500(client: TestClient, origin: str) -> None:
    site = await create_inbox("Shop", [ORIGIN])
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(f"/widget/{site.external_id}/ws", headers={"Origin": origin})
    assert refused.value.status == 403, refused.value.status


@pytest.mark.parametrize("host", ["shop.example:99999", "[::1"])
async def test_a_host_header_no_browser_sends_is_403_not_500(client: TestClient, inbox: Inbox, host: str) -> None:
    agent = await quick_user("agent", inboxes=[inbox])
    site = await create_inbox("Shop", [ORIGIN])
    for path, params in (("/ws", {"token": agent.token}), (f"/widget/{site.external_id}/ws", {})):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect(path, params=params, headers={"Origin": "https://other.example", "Host": host})
        assert refused.value.status == 403, (path, refused.value.status)
    # A configured origin still passes whatever the Host says (the widget's own site).
    ws = await client.ws_connect(f"/widget/{site.external_id}/ws", headers={"Origin": ORIGIN, "Host": host})
    await ws.close()


@pytest.mark.parametrize("frame", [
    {"type": "typing", "data": "on"},
    {"type": "typing", "data": [1]},
    {"type": "typing", "data": {"conversation_id": 2**63}},
    {"type": "typing", "data": {"conversation_id": True}},
])  # fmt: skip
async def test_agent_socket_survives_odd_typing_frames(client: TestClient, inbox: Inbox, frame: dict) -> None:
    agent = await quick_user("agent", inboxes=[inbox])
    socket = await connected(client, agent)
    await socket.ws.send_str(orjson.dumps(frame).decode())
    await incoming(client, "PSID-Q", "mid.review.odd", "vẫn nhận được chứ?")
    got = await socket.until(lambda f: f["type"] == "message.created")  # the socket must still be open
    assert got["data"]["text"] == "vẫn nhận được chứ?"
    await socket.close()


@pytest.mark.parametrize("data", ["x", [1, 2], 5])
async def test_widget_hello_with_non_object_data_is_closed_with_a_reason(client: TestClient, data) -> None:
    site = await create_inbox("Shop", [ORIGIN])
    ws = await client.ws_connect(f"/widget/{site.external_id}/ws", headers={"Origin": ORIGIN})
    await ws.send_str(orjson.dumps({"type": "hello", "data": data}).decode())
    message = await ws.receive(timeout=5)
    assert (message.type, message.data, message.extra) == (WSMsgType.CLOSE, 4000, "hello data must be an object")
    await ws.close()
