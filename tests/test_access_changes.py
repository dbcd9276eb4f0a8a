"""An open agent socket follows its user's access: a socket keeps the rights of its handshake, so a deactivation,
a log-out, a password change, a new role or permissions and a change of teams end it (close code 4001), and the
client connects again with what its session allows now, or gets a 401."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from agents.models import AgentState, AuthSession, InboxMember, Team, TeamMember, User
from agents.sessions import create_session
from inbox.app import create_app
from inbox.config import Settings
from inbox.models import Conversation, ConversationEvent, Inbox
from inbox.realtime import SESSION_ENDED
from tests.conftest import Staff, eventually, make_inbox, quick_user
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


async def test_moving_an_agent_out_of_an_inbox_ends_the_open_socket(client: TestClient, inbox: Inbox) -> None:
    other = await make_inbox(page_id=PAGE_B, app_secret=SECRET_B, name="Shop Giày")
    agent, admin = await quick_user("agent", inboxes=[inbox]), await quick_user("admin")
    socket = await connected(client, agent)
    response = await client.patch(f"/api/users/{agent.user.id}", json={"inbox_ids": [other.id]}, headers=admin.headers)
    assert response.status == 200, await response.text()
    assert await ended(socket)  # it reconnects with the new inbox's events only


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
    # The server records the closed socket after the client sees the close. A new socket before that would find
    # the user still online, and its own `online` frame (what `connected` waits for) would never come.
    await eventually(lambda: AgentState.filter(user_id=boss.user.id, connections=0).exists())
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


@pytest.mark.parametrize("to_team", [True, False], ids=["to-another-team", "out-of-its-team"])
async def test_a_conversation_moved_away_leaves_the_lists_of_those_who_read_it_through_the_old_team(
    client: TestClient, inbox: Inbox, to_team: bool
) -> None:
    conv = await incoming(client, "PSID-M", "m.move", "Shop ơi đổi size giúp em")
    old, new = await Team.create(name="Đội đổi trả"), await Team.create(name="Đội VIP")
    await Conversation.filter(id=conv.id).update(team_id=old.id)
    only_old, in_both, new_member = await quick_user("agent"), await quick_user("agent"), await quick_user("agent")
    of_inbox = await quick_user("agent", inboxes=[inbox])
    await TeamMember.create(team=old, user=of_inbox.user)  # reads it through the inbox too
    for staff, teams in ((only_old, [old]), (in_both, [old, new]), (new_member, [new])):
        for team in teams:
            await TeamMember.create(team=team, user=staff.user)
    supervisor = await quick_user("supervisor")
    watchers = {s.user.id: await connected(client, s) for s in (only_old, in_both, new_member, of_inbox)}

    body = {"agent_id": None, "team_id": new.id if to_team else None}
    response = await client.post(f"/api/conversations/{conv.id}/assign", json=body, headers=supervisor.headers)
    assert response.status == 200, await response.text()

    # The agent who could read it only through the old team is told it is gone, with nothing more than its id.
    removed = await watchers[only_old.user.id].until(lambda f: f["type"] == "conversation.removed")
    assert removed["data"] == {"id": conv.id}
    await marker(client, *watchers.values())
    assert not watchers[only_old.user.id].events("conversation.assigned")
    # Those who still read it get the move, and no removal.
    readers = (in_both, of_inbox, new_member) if to_team else (of_inbox,)
    for staff in readers:
        frames = watchers[staff.user.id].events()
        assert [f["data"]["team_id"] for f in frames if f["type"] == "conversation.assigned"] == [body["team_id"]]
        assert not [f for f in frames if f["type"] == "conversation.removed"]
    for socket in watchers.values():
        await socket.close()


async def test_deleting_a_team_leaves_its_conversations_without_a_team_as_a_move_out_of_it_would(
    client: TestClient, inbox: Inbox
) -> None:
    conv = await incoming(client, "PSID-D", "m.deleted-team", "Shop ơi còn hàng không")
    team, kept = await Team.create(name="Đội đổi trả"), await Team.create(name="Đội VIP")
    await Conversation.filter(id=conv.id).update(team_id=team.id)
    only_team, of_inbox = await quick_user("agent"), await quick_user("agent", inboxes=[inbox])
    for staff in (only_team, of_inbox):
        await TeamMember.create(team=team, user=staff.user)
    admin = await quick_user("admin")
    listed = await client.get("/api/conversations", headers=only_team.headers)
    assert [c["id"] for c in (await listed.json())["items"]] == [conv.id]
    watchers = {s.user.id: await connected(client, s) for s in (only_team, of_inbox)}
    inbox_reader = await quick_user("agent", inboxes=[inbox])  # no team: its socket stays open
    reader_socket = await connected(client, inbox_reader)

    response = await client.delete(f"/api/teams/{team.id}", headers=admin.headers)
    assert response.status == 200, await response.text()

    shown = await client.get(f"/api/conversations/{conv.id}", headers=admin.headers)
    assert (await shown.json())["team_id"] is None
    listed = await client.get("/api/conversations", headers=only_team.headers)
    assert (await listed.json())["items"] == []
    assert (await client.get(f"/api/conversations/{conv.id}", headers=only_team.headers)).status == 404
    [moved] = await ConversationEvent.filter(conversation_id=conv.id, kind="assigned")
    assert (moved.data["team_id"], moved.data["previous"]["team_id"], moved.data["reason"]) == (
        None, team.id, "team_deleted",
    )  # fmt: skip
    # The team's members start again from their session (their lists reload without it); readers through the
    # inbox get the change.
    assert await ended(watchers[only_team.user.id]) and await ended(watchers[of_inbox.user.id])
    update = await reader_socket.until(lambda f: f["type"] == "conversation.updated")
    assert (update["data"]["id"], update["data"]["team_id"]) == (conv.id, None)
    assert await still_live(client, reader_socket)
    assert (await Conversation.get(id=conv.id)).team_id is None and await Team.exists(id=kept.id)
    await reader_socket.close()


@pytest.fixture
async def checking_client(aiohttp_client: Callable[..., Awaitable[TestClient]], settings: Settings) -> TestClient:
    """The app checking its sockets' sessions every 0.2 s (every minute by default)."""
    extra = {**settings.extra, "ws_access_check_seconds": "0.2"}
    return await aiohttp_client(create_app(dataclasses.replace(settings, extra=extra)))


CHANGES_OUTSIDE_THE_SERVER = {
    "deactivated": lambda staff: User.filter(id=staff.user.id).update(is_active=False),
    "new-role": lambda staff: User.filter(id=staff.user.id).update(role="supervisor"),
    "new-permissions": lambda staff: User.filter(id=staff.user.id).update(permissions=["view_contact_pii"]),
    "left-the-inbox": lambda staff: InboxMember.filter(user_id=staff.user.id).delete(),
    "session-revoked": lambda staff: AuthSession.filter(user_id=staff.user.id).update(revoked=True),
    "session-expired": lambda staff: AuthSession.filter(user_id=staff.user.id).update(expires_at=datetime.now(UTC)),
}


@pytest.mark.parametrize("change", list(CHANGES_OUTSIDE_THE_SERVER))
async def test_a_change_made_outside_the_server_ends_the_socket_within_the_check_interval(
    checking_client: TestClient, change: str
) -> None:
    """Another program (a script, an SQL console) changes the database directly: no `access.changed` reaches the
    server, and the periodic check ends the socket all the same."""
    inbox = await make_inbox()
    agent = await quick_user("agent", inboxes=[inbox])
    bystanders = [await quick_user("agent", inboxes=[inbox]), await quick_user("supervisor"), await quick_user("admin")]
    socket = await connected(checking_client, agent)
    others = [await connected(checking_client, staff) for staff in bystanders]
    await CHANGES_OUTSIDE_THE_SERVER[change](agent)
    started = time.monotonic()
    assert await ended(socket)
    assert time.monotonic() - started < 3
    await asyncio.sleep(0.5)  # a few more checks: the unchanged users' sockets stay
    for other in others:
        assert await still_live(checking_client, other)
        await other.close()
