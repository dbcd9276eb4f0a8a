"""An open agent socket follows its user's access: a socket keeps the rights of its handshake, so a deactivation,
a log-out, a password change, a new role or permissions and a change of teams end it (close code 4001), and the
client connects again with what its session allows now, or gets a 401."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from agents.models import Team, TeamMember
from agents.sessions import create_session
from inbox.models import Conversation, Inbox
from inbox.realtime import SESSION_ENDED
from tests.conftest import Staff, make_inbox, quick_user
from tests.test_realtime import PAGE_B, SECRET_B, Socket, connect, connected, incoming, marker


async def ended(socket: Socket) -> bool:
    """True when the server closes the socket with SESSION_ENDED (frames before the close are skipped)."""
    while True:
        message = await socket.ws.receive(timeout=5)
        if message.type == WSMsgType.TEXT:
            continue
        return message.type == WSMsgType.CLOSE and message.data == SESSION_ENDED


async def still_live(client: TestClient, socket: Socket) -> bool:
    await marker(client, socket)  # a staff-wide frame after everything so far: an ended socket never gets it
    return not socket.ws.closed


async def second_tab(client: TestClient, staff: Staff) -> tuple[Staff, Socket]:
    """Another browser of the same user: a session of its own."""
    token, _ = await create_session(staff.user)
    other = Staff(staff.user, token)
    socket = await connect(client, other)
    await socket.ready()
    return other, socket


async def test_a_deactivated_agent_loses_the_open_socket_and_cannot_reconnect(client: TestClient, inbox: Inbox) -> None:
    agent, admin = await quick_user("agent", inboxes=[inbox]), await quick_user("admin")
    socket = await connected(client, agent)
    response = await client.patch(f"/api/users/{agent.user.id}", json={"is_active": False}, headers=admin.headers)
    assert response.status == 200, await response.text()
    assert await ended(socket)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws", params={"token": agent.token})
    assert refused.value.status == 401


async def test_a_rename_leaves_the_socket_open(client: TestClient, inbox: Inbox) -> None:
    agent, admin = await quick_user("agent", inboxes=[inbox]), await quick_user("admin")
    socket = await connected(client, agent)
    response = await client.patch(f"/api/users/{agent.user.id}", json={"name": "Lê Minh Khoa"}, headers=admin.headers)
    assert response.status == 200
    assert await still_live(client, socket)
    await socket.close()


async def test_logging_out_ends_that_sessions_socket_only(client: TestClient, inbox: Inbox) -> None:
    agent = await quick_user("agent", inboxes=[inbox])
    socket = await connected(client, agent)
    phone, phone_socket = await second_tab(client, agent)
    assert (await client.post("/api/auth/logout", headers=phone.headers)).status == 200
    assert await ended(phone_socket)
    assert await still_live(client, socket)
    await socket.close()


async def test_logging_out_everywhere_ends_every_socket(client: TestClient, inbox: Inbox) -> None:
    agent = await quick_user("agent", inboxes=[inbox])
    socket = await connected(client, agent)
    _, phone_socket = await second_tab(client, agent)
    assert (await client.post("/api/auth/logout-all", headers=agent.headers)).status == 200
    assert await ended(socket) and await ended(phone_socket)


async def test_a_password_change_ends_the_other_sessions_sockets(client: TestClient, inbox: Inbox) -> None:
    from tests.conftest import PASSWORD, make_user

    agent = await make_user(client, "agent", inboxes=[inbox])
    socket = await connected(client, agent)
    _, stolen_socket = await second_tab(client, agent)
    body = {"current_password": PASSWORD, "new_password": "mật-khẩu-mới-2026"}
    changed = await client.post("/api/auth/password", json=body, headers=agent.headers)
    assert changed.status == 200, await changed.text()
    assert await ended(stolen_socket)
    assert await still_live(client, socket)
    await socket.close()


async def test_a_demoted_supervisor_reconnects_with_an_agents_view(client: TestClient, inbox: Inbox) -> None:
    inbox_b = await make_inbox(page_id=PAGE_B, app_secret=SECRET_B)
    boss, admin = await quick_user("supervisor", inboxes=[inbox_b]), await quick_user("admin")
    socket = await connected(client, boss)
    response = await client.patch(f"/api/users/{boss.user.id}", json={"role": "agent"}, headers=admin.headers)
    assert response.status == 200, await response.text()
    assert await ended(socket)
    again = await connected(client, boss)
    await incoming(client, "PSID-A", "m.only-a", "Tin của inbox A")
    await incoming(client, "PSID-B", "m.b", "Tin của inbox B", page_id=PAGE_B, secret=SECRET_B)
    frame = await again.until(lambda f: f["type"] == "message.created")
    assert frame["data"]["text"] == "Tin của inbox B"  # inbox A's message never came: agents see their inboxes
    await again.close()


async def test_leaving_a_team_ends_the_socket_that_read_through_it(client: TestClient, inbox: Inbox) -> None:
    conv = await incoming(client, "PSID-T", "m.t", "Shop ơi")
    team = await Team.create(name="Đội đổi trả")
    await Conversation.filter(id=conv.id).update(team_id=team.id)
    member, stays = await quick_user("agent"), await quick_user("agent")
    for staff in (member, stays):
        await TeamMember.create(team=team, user=staff.user)
    supervisor = await quick_user("supervisor")
    sockets = [await connected(client, staff) for staff in (member, stays)]
    response = await client.patch(f"/api/teams/{team.id}", json={"members": [stays.user.id]},
                                  headers=supervisor.headers)  # fmt: skip
    assert response.status == 200, await response.text()
    assert await ended(sockets[0])
    assert await still_live(client, sockets[1])
    await sockets[1].close()
