"""The access matrix for WebSocket events: every event type the app publishes × {anonymous, agent of another
inbox, agent, supervisor, admin} → received or not, checked against an oracle written from the roles in the
contract (not from the code's own filter). Ids from another inbox never reveal data over the socket.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestClient

from agents.access import ROLE_RANK
from agents.sessions import create_session, revoke
from inbox.bus import Event
from inbox.keys import BUS, PROFILES
from inbox.models import Conversation, Inbox
from tests.conftest import quick_user
from tests.test_realtime import Tap, connected, incoming, marker


@pytest.fixture
async def tap(client: TestClient) -> Any:
    tapped = Tap(client)
    yield tapped
    tapped.close()


PAGE_B, SECRET_B = "2222", "app_secret_of_page_b"
CONTRACT_TYPES = {"message.created", "message.updated", "conversation.created", "conversation.updated",
                  "conversation.assigned", "typing", "presence"}  # fmt: skip
SECRET_TEXT = "Địa chỉ giao hàng: 12 Lý Thường Kiệt"
ROLE_OF = {"outsider": "agent", "member": "agent", "supervisor": "supervisor", "admin": "admin"}


def expected(event: Event, who: str, user_id: int, inbox_a: int, inbox_b: int) -> bool:
    """Who may receive an event, from the contract: agents see their inboxes, supervisors and admins see all."""
    if event.user_ids is not None and user_id not in event.user_ids:
        return False
    if ROLE_RANK[ROLE_OF[who]] < ROLE_RANK[event.min_role]:
        return False
    if event.inbox_id is None and event.team_id is None:
        return True
    if who in ("supervisor", "admin"):
        return True
    return event.inbox_id == (inbox_a if who == "member" else inbox_b)


async def test_anonymous_sockets_are_refused(client: TestClient, inbox: Inbox) -> None:
    agent = await quick_user("agent", inboxes=[inbox])
    revoked, session = await create_session(agent.user)
    await revoke(session.id)
    client.session.cookie_jar.clear()
    for params in ({}, {"token": "x" * 43}, {"token": revoked}):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect("/ws", params=params)
        assert refused.value.status == 401


async def test_websocket_event_matrix(client: TestClient, inbox: Inbox, tap: Tap) -> None:
    inbox_b = await Inbox.create(
        name="Shop B", channel="facebook", external_id=PAGE_B,
        credentials={"page_token": "t", "app_secret": SECRET_B, "verify_token": "v"},
    )  # fmt: skip
    staff = {
        "outsider": await quick_user("agent", inboxes=[inbox_b]),
        "member": await quick_user("agent", inboxes=[inbox]),
        "supervisor": await quick_user("supervisor"),
        "admin": await quick_user("admin"),
    }
    sockets = {who: await connected(client, s) for who, s in staff.items()}
    start = client.app[BUS].last_seq  # the sockets' own presence events are before this
    member, supervisor = staff["member"], staff["supervisor"]

    # Everything that happens to a conversation, through the real entry points, in both inboxes.
    conv_a = await incoming(client, "PSID-A", "mid.ws.a1", SECRET_TEXT)
    conv_b = await incoming(client, "PSID-B", "mid.ws.b1", "Son còn không?", page_id=PAGE_B, secret=SECRET_B)
    await client.app[PROFILES].idle()
    base = f"/api/conversations/{conv_a.id}"
    calls = [
        ("messages", {"text": "Dạ shop gửi ạ"}, member),
        ("messages", {"text": "ghi chú nội bộ", "private": True}, member),
        ("labels", {"labels": ["vip"]}, member),
        ("status", {"status": "pending"}, member),
        ("read", None, member),
        ("assign", {"agent_id": member.user.id}, supervisor),
    ]
    for suffix, body, who in calls:
        response = await client.post(f"{base}/{suffix}", json=body, headers=who.headers)
        assert response.status in (200, 201), (suffix, await response.text())
    reply_b = await client.post(f"/api/conversations/{conv_b.id}/messages", json={"text": "Dạ còn"},
                                headers=staff["outsider"].headers)  # fmt: skip
    assert reply_b.status == 201
    await sockets["member"].send("typing", {"conversation_id": conv_a.id, "on": True})
    # The outsider names inbox A's conversation: nothing may come of it.
    await sockets["outsider"].send("typing", {"conversation_id": conv_a.id, "on": True})
    await sockets["outsider"].send("typing", {"conversation_id": conv_b.id, "on": True})
    await sockets["supervisor"].until(lambda f: f["type"] == "typing" and f["data"]["conversation_id"] == conv_b.id)
    await marker(client, *sockets.values())
    last = max(s.frames[-1]["seq"] for s in sockets.values())
    await tap.upto(last)

    published = [e for e in tap.events if start < e.seq <= last]
    a_convs = set(await Conversation.filter(inbox_id=inbox.id).values_list("id", flat=True))
    matrix: dict[tuple[str, str], set[bool]] = {}
    for who, socket in sockets.items():
        got = {f["seq"] for f in socket.frames if f["type"] not in ("ready", "resync") and f["seq"] > start}
        user_id = staff[who].user.id
        for event in published:
            want = expected(event, who, user_id, inbox.id, inbox_b.id)
            assert (event.seq in got) == want, (who, event.type, event.inbox_id, event.data)
            matrix.setdefault((event.type, who), set()).add(want)
        assert got <= {e.seq for e in published}, (who, "received an event the bus never published")
    for event in published:  # nothing about inbox A's conversations goes out staff-wide
        conv_id = event.data.get("conversation_id", event.data.get("id") if event.type.startswith("conv") else None)
        if conv_id in a_convs:
            assert event.inbox_id == inbox.id or event.user_ids is not None, (event.type, event.data)

    types = {t for t, _ in matrix}
    assert CONTRACT_TYPES <= types, CONTRACT_TYPES - types
    # Inbox A's events reached its agent and never the other inbox's agent.
    for kind in ("message.created", "message.updated", "conversation.assigned", "typing"):
        assert True in matrix[(kind, "member")], kind
    for kind in ("message.created", "typing"):
        assert True in matrix[(kind, "outsider")] and False in matrix[(kind, "outsider")], kind
    outsider_frames = orjson.dumps(sockets["outsider"].frames).decode()
    assert SECRET_TEXT not in outsider_frames and "Dạ shop gửi ạ" not in outsider_frames
    assert not any(f["data"].get("conversation_id") == conv_a.id for f in sockets["outsider"].frames)
    print(
        f"\nWS MATRIX: {len(types)} event types x 5 callers = {len(types) * 5} cells; events checked {len(published)}"
    )
    for socket in sockets.values():
        await socket.close()
