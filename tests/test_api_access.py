"""Who may call what: a role × route × status matrix over every route of the app, plus sessions and errors.

The matrix is checked against the app's own router, so a route added without an entry here fails
`test_matrix_covers_every_route`. A refused request must write nothing and publish nothing.
"""

from __future__ import annotations

import asyncio
import functools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from agents import passwords
from agents.access import ROLE_RANK
from agents.models import AuthSession, InboxMember, TeamMember, User
from agents.passwords import hash_password
from agents.sessions import create_session
from channels.fakes import messenger_text
from contacts.models import Contact
from inbox.keys import BUS, PROFILES
from inbox.models import Conversation, ConversationEvent, ConversationLabel, Inbox, Message
from tests.conftest import (
    APP_SECRET,
    PAGE_ID,
    PAGE_TOKEN,
    PASSWORD,
    Staff,
    eventually,
    make_inbox,
    now_ms,
    post_webhook,
)
from tests.matrix import AREA_MODULES, Case, World

PAGE_B, SECRET_B = "2222", "app_secret_of_page_b"
WHO = ("anonymous", "outsider", "member", "supervisor", "admin")
ROLE_OF = {"outsider": "agent", "member": "agent", "supervisor": "supervisor", "admin": "admin"}

# Routes outside the staff role matrix: public, or authenticated by other means (platform signatures,
# visitor tokens), or the socket (tests/test_realtime.py).
# /metrics answers in Prometheus' text format (admin or the scraper's token): tests/test_security.py.
EXEMPT_PATHS = ("/healthz", "/api/openapi.json", "/api/auth/login", "/ws", "/", "/metrics")
# /app/: the web app's static files (public, like the login page at /; tests/test_ui_server.py).
EXEMPT_PREFIXES = ("/webhooks/", "/widget/", "/app/")


@functools.cache
def password_hash() -> str:
    return hash_password(PASSWORD)  # argon2 is slow on purpose: hash once per run


async def quick_user(role: str, *, inboxes: list[Inbox] = (), teams: list[Any] = ()) -> Staff:
    """Like conftest's `make_user`, without the HTTP login (sessions are tested below, through the API)."""
    user = await User.create(
        email=f"{role}-{time.monotonic_ns()}@shop.vn", name=role.title(), role=role, password_hash=password_hash()
    )
    for inbox in inboxes:
        await InboxMember.create(user=user, inbox=inbox)
    for team in teams:
        await TeamMember.create(user=user, team=team)
    token, _ = await create_session(user)
    return Staff(user, token)


CORE = [
    Case("POST", "/api/auth/logout", "agent"),
    Case("GET", "/api/me", "agent"),
    Case("GET", "/api/conversations", "agent"),
    Case("GET", "/api/conversations/{id}", "agent"),
    Case("GET", "/api/conversations/{id}/messages", "agent"),
    Case("GET", "/api/conversations/{id}/activity", "agent"),
    Case("POST", "/api/conversations/{id}/messages", "agent", 201, lambda w, who: {"text": "Dạ shop còn ạ"}),
    Case("POST", "/api/conversations/{id}/assign", "agent", body=lambda w, who: {"agent_id": w.user_id(who)}),
    Case("POST", "/api/conversations/{id}/status", "agent", body=lambda w, who: {"status": "pending"}),
    Case("POST", "/api/conversations/{id}/labels", "agent", body=lambda w, who: {"labels": ["khách-quen"]}),
    Case("POST", "/api/conversations/{id}/read", "agent"),
    Case("GET", "/api/inboxes", "agent"),
    Case("GET", "/api/users", "supervisor"),
    Case("GET", "/api/dead-letters", "admin"),
]
# Each area adds its routes in its own tests/access_<area>.py (CASES, and an optional `prepare(world, client)`).
MATRIX = CORE + [case for module in AREA_MODULES for case in getattr(module, "CASES", [])]


def expected_status(case: Case, who: str) -> int:
    if who == "anonymous":
        return 401
    if ROLE_RANK[ROLE_OF[who]] < ROLE_RANK[case.role]:
        return 403
    if who == "outsider" and case.scoped:
        return 404  # another inbox's conversation does not exist for this agent
    return case.ok


def staff_routes(client: TestClient) -> set[tuple[str, str]]:
    routes = set()
    for route in client.app.router.routes():
        path = route.resource.canonical
        if route.method == "HEAD" or path in EXEMPT_PATHS or path.startswith(EXEMPT_PREFIXES):
            continue
        routes.add((route.method, path))
    return routes


async def incoming(
    client: TestClient, page_id: str, secret: str, psid: str, mid: str, text: str, ts_ms: int | None = None
) -> Conversation:
    response = await post_webhook(client, messenger_text(page_id, psid, mid, text, ts_ms or now_ms()), secret=secret)
    assert response.status == 200, await response.text()
    msg = await eventually(lambda: Message.get_or_none(external_id=mid))
    return await Conversation.get(id=msg.conversation_id)


async def settled(client: TestClient) -> None:
    """Wait for the background profile fetches, so nothing publishes behind a test's back."""

    async def named() -> bool:
        return not await Contact.filter(name="").exists()

    await eventually(named)
    await client.app[PROFILES].idle()


@pytest.fixture
async def world(client: TestClient, inbox: Inbox) -> World:
    inbox_b = await make_inbox(page_id=PAGE_B, app_secret=SECRET_B, name="Shop Mỹ Phẩm")
    conv_a = await incoming(client, PAGE_ID, APP_SECRET, "PSID-A", "mid.a1", "Áo này còn size M không ạ?")
    conv_b = await incoming(client, PAGE_B, SECRET_B, "PSID-B", "mid.b1", "Son này còn màu đỏ không shop?")
    staff = {
        "outsider": await quick_user("agent", inboxes=[inbox_b]),
        "member": await quick_user("agent", inboxes=[inbox]),
        "supervisor": await quick_user("supervisor"),
        "admin": await quick_user("admin"),
    }
    await settled(client)
    world = World(inbox, inbox_b, conv_a, conv_b, staff)
    for module in AREA_MODULES:
        if hasattr(module, "prepare"):
            await module.prepare(world, client)
    return world


async def snapshot(client: TestClient, conv_id: int) -> dict[str, Any]:
    """Everything a write on a conversation could change, and what it could publish or send."""
    conv = await Conversation.get(id=conv_id)
    return {
        "conversation": (
            conv.status,
            conv.snoozed_until,
            conv.assignee_id,
            conv.team_id,
            list(conv.labels),
            conv.unread_count,
            conv.last_activity_at,
            conv.last_message_preview,
        ),
        "events": await ConversationEvent.filter(conversation_id=conv_id).count(),
        "messages": await Message.filter(conversation_id=conv_id).count(),
        "labels": await ConversationLabel.filter(conversation_id=conv_id).count(),
        "revoked_sessions": await AuthSession.filter(revoked=True).count(),
        "bus_seq": client.app[BUS].last_seq,
    }


def assert_error_shape(body: Any, status: int) -> None:
    assert isinstance(body, dict) and set(body) == {"error"}, (status, body)
    assert set(body["error"]) >= {"code", "message"}, (status, body)
    assert isinstance(body["error"]["code"], str) and body["error"]["code"], (status, body)
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], (status, body)


def test_matrix_has_no_duplicates() -> None:
    keys = [(c.method, c.path) for c in MATRIX]
    assert len(keys) == len(set(keys))


async def test_matrix_covers_every_route(client: TestClient) -> None:
    in_app = staff_routes(client)
    in_matrix = {(c.method, c.path) for c in MATRIX}
    assert in_app - in_matrix == set(), "routes without an access-matrix entry in tests/test_api_access.py"
    assert in_matrix - in_app == set(), "matrix entries for routes the app does not have"


async def test_every_matrix_route_declares_its_role(client: TestClient) -> None:
    """The handler's `@requires(role)` is the role the matrix expects (the OpenAPI document reads it too)."""
    declared = {}
    for route in client.app.router.routes():
        declared[(route.method, route.resource.canonical)] = getattr(route.handler, "required_role", None)
    for case in MATRIX:
        assert declared[(case.method, case.path)] == case.role, case


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("case", MATRIX, ids=str)
async def test_access_matrix(client: TestClient, world: World, case: Case, who: str) -> None:
    path = case.url(world)
    headers = world.staff[who].headers if who != "anonymous" else {}
    body = case.body(world, who) if case.body else None
    before = await snapshot(client, world.conv_a.id)

    response = await client.request(case.method, path, json=body, headers=headers)

    want = expected_status(case, who)
    assert response.status == want, (case, who, await response.text())
    # A file route answers with the file itself; every error is JSON in the contract's shape.
    data = await response.json() if response.content_type == "application/json" or want >= 400 else {}
    if want >= 400:
        assert_error_shape(data, want)
        assert data["error"]["code"] == {401: "unauthorized", 403: "forbidden", 404: "not_found"}[want]
        assert await snapshot(client, world.conv_a.id) == before, "a refused request changed something"
        return
    if case.path == "/api/conversations":
        ids = {c["id"] for c in data["items"]}
        sees_a, sees_b = who != "outsider", who != "member"
        assert (world.conv_a.id in ids, world.conv_b.id in ids) == (sees_a, sees_b), (who, ids)
    if case.path == "/api/inboxes" and case.method == "GET":
        ids = {i["id"] for i in data["items"]}
        assert (world.inbox_a.id in ids, world.inbox_b.id in ids) == (who != "outsider", who != "member")
        text = await response.text()
        assert APP_SECRET not in text and SECRET_B not in text and PAGE_TOKEN not in text
    if case.path == "/api/me":
        assert (data["id"], data["role"]) == (world.staff[who].user.id, ROLE_OF[who])
    if case.path == "/api/auth/logout":
        again = await client.get("/api/me", headers=headers)
        assert again.status == 401


async def test_outsider_404_is_the_same_as_for_a_missing_conversation(client: TestClient, world: World) -> None:
    outsider = world.staff["outsider"]
    missing = await client.get("/api/conversations/999999", headers=outsider.headers)
    hidden = await client.get(f"/api/conversations/{world.conv_a.id}", headers=outsider.headers)
    assert (missing.status, hidden.status) == (404, 404)
    assert await missing.json() == await hidden.json()
    for suffix in ("messages", "read", "status", "labels", "assign"):
        write = await client.post(
            f"/api/conversations/{world.conv_a.id}/{suffix}",
            json={"text": "x", "status": "resolved", "labels": ["x"], "agent_id": outsider.user.id},
            headers=outsider.headers,
        )
        assert write.status == 404, suffix
        assert await write.json() == await missing.json()
    # Searching for the other inbox's customer words finds nothing either.
    found = await client.get("/api/conversations", params={"q": "size"}, headers=outsider.headers)
    assert (await found.json())["items"] == []
    by_inbox = await client.get("/api/conversations", params={"inbox_id": world.inbox_a.id}, headers=outsider.headers)
    assert (await by_inbox.json())["items"] == []


# ---------------------------------------------------------------------------------------------- assignment


async def assigned_events(conv_id: int) -> int:
    return await ConversationEvent.filter(conversation_id=conv_id, kind="assigned").count()


async def test_agent_cannot_assign_to_another_agent(client: TestClient, world: World) -> None:
    colleague = await quick_user("agent", inboxes=[world.inbox_a])
    before = await snapshot(client, world.conv_a.id)
    response = await client.post(
        f"/api/conversations/{world.conv_a.id}/assign",
        json={"agent_id": colleague.user.id},
        headers=world.staff["member"].headers,
    )
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "forbidden"
    assert await snapshot(client, world.conv_a.id) == before
    assert (await Conversation.get(id=world.conv_a.id)).assignee_id is None
    assert await assigned_events(world.conv_a.id) == 0


async def test_agent_cannot_assign_to_a_team(client: TestClient, world: World) -> None:
    from agents.models import Team

    team = await Team.create(name="CSKH miền Trung")
    member = world.staff["member"]
    response = await client.post(
        f"/api/conversations/{world.conv_a.id}/assign",
        json={"agent_id": member.user.id, "team_id": team.id},
        headers=member.headers,
    )
    assert response.status == 403
    assert await assigned_events(world.conv_a.id) == 0


async def test_supervisor_assigns_a_member(client: TestClient, world: World) -> None:
    colleague = await quick_user("agent", inboxes=[world.inbox_a])
    response = await client.post(
        f"/api/conversations/{world.conv_a.id}/assign",
        json={"agent_id": colleague.user.id},
        headers=world.staff["supervisor"].headers,
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["assignee_id"] == colleague.user.id
    assert (await Conversation.get(id=world.conv_a.id)).assignee_id == colleague.user.id
    event = await ConversationEvent.get(conversation_id=world.conv_a.id, kind="assigned")
    assert (event.actor_id, event.data["agent_id"]) == (world.staff["supervisor"].user.id, colleague.user.id)
    # The assignee now finds it under assignee=me.
    mine = await client.get("/api/conversations", params={"assignee": "me"}, headers=colleague.headers)
    assert [c["id"] for c in (await mine.json())["items"]] == [world.conv_a.id]


@pytest.mark.parametrize("target", ["outsider", "unknown"])
async def test_assign_to_someone_not_allowed_there_is_422(client: TestClient, world: World, target: str) -> None:
    agent_id = world.staff["outsider"].user.id if target == "outsider" else 987654
    before = await snapshot(client, world.conv_a.id)
    response = await client.post(
        f"/api/conversations/{world.conv_a.id}/assign",
        json={"agent_id": agent_id},
        headers=world.staff["supervisor"].headers,
    )
    assert response.status == 422, await response.text()
    assert_error_shape(await response.json(), 422)
    assert await snapshot(client, world.conv_a.id) == before
    assert await assigned_events(world.conv_a.id) == 0


async def test_agent_self_assigns_and_unassigns(client: TestClient, world: World) -> None:
    member = world.staff["member"]
    url = f"/api/conversations/{world.conv_a.id}/assign"
    taken = await client.post(url, json={"agent_id": member.user.id}, headers=member.headers)
    assert taken.status == 200
    assert (await taken.json())["assignee_id"] == member.user.id
    released = await client.post(url, json={"agent_id": None}, headers=member.headers)
    assert released.status == 200
    assert (await released.json())["assignee_id"] is None
    assert await assigned_events(world.conv_a.id) == 2


async def test_assign_body_must_hold_integer_ids(client: TestClient, world: World) -> None:
    url = f"/api/conversations/{world.conv_a.id}/assign"
    for body in ({"agent_id": "7"}, {"agent_id": True}, {"team_id": 1.5}, {"agent_id": 2**63}, {"team_id": 0}):
        response = await client.post(url, json=body, headers=world.staff["supervisor"].headers)
        assert response.status == 400, body
        assert_error_shape(await response.json(), 400)
    assert await assigned_events(world.conv_a.id) == 0


async def test_team_membership_grants_access(client: TestClient, world: World) -> None:
    from agents.models import Team

    team = await Team.create(name="Đội đổi trả")
    teammate = await quick_user("agent", teams=[team])
    url = f"/api/conversations/{world.conv_a.id}"
    assert (await client.get(url, headers=teammate.headers)).status == 404
    handed = await client.post(
        f"{url}/assign", json={"agent_id": None, "team_id": team.id}, headers=world.staff["supervisor"].headers
    )
    assert handed.status == 200, await handed.text()
    assert (await client.get(url, headers=teammate.headers)).status == 200
    listed = await client.get("/api/conversations", headers=teammate.headers)
    assert [c["id"] for c in (await listed.json())["items"]] == [world.conv_a.id]
    # The teammate takes it as the inbox's "take it" button does (no team_id): it stays in the team, so the
    # teammate, who reads it through the team, still can.
    taken = await client.post(f"{url}/assign", json={"agent_id": teammate.user.id}, headers=teammate.headers)
    assert taken.status == 200, await taken.text()
    assert (await taken.json())["assignee_id"] == teammate.user.id
    assert (await Conversation.get(id=world.conv_a.id)).team_id == team.id
    assert (await client.get(url, headers=teammate.headers)).status == 200
    # An agent may not take it out of the team; a supervisor may, with an explicit null.
    out = await client.post(f"{url}/assign", json={"agent_id": None, "team_id": None}, headers=teammate.headers)
    assert out.status == 403 and (await Conversation.get(id=world.conv_a.id)).team_id == team.id
    out = await client.post(f"{url}/assign", json={"team_id": None}, headers=world.staff["supervisor"].headers)
    assert out.status == 200 and (await Conversation.get(id=world.conv_a.id)).team_id is None


# ---------------------------------------------------------------------------------------------- sessions


async def login(client: TestClient, email: str, password: str = PASSWORD) -> Any:
    return await client.post("/api/auth/login", json={"email": email, "password": password})


async def test_cookie_session_and_csrf(client: TestClient, world: World) -> None:
    member = world.staff["member"]
    client.session.cookie_jar.clear()
    response = await login(client, member.user.email)
    assert response.status == 200
    body = await response.json()
    cookie = response.cookies["hopthu_session"]
    assert cookie.value == body["token"]
    assert cookie["httponly"] is True
    assert cookie["path"] == "/"
    assert cookie["samesite"].lower() == "strict"
    assert body["csrf_token"] and body["user"]["id"] == member.user.id

    # A read with the cookie alone (no Authorization header).
    me = await client.get("/api/me")
    assert me.status == 200
    assert (await me.json())["id"] == member.user.id
    assert (await me.json())["csrf_token"] == body["csrf_token"]

    url = f"/api/conversations/{world.conv_a.id}/read"
    before = await snapshot(client, world.conv_a.id)
    assert before["conversation"][5] == 1  # unread
    for headers in ({}, {"X-CSRF-Token": "not-the-token"}, {"X-CSRF-Token": ""}):
        refused = await client.post(url, headers=headers)
        assert refused.status == 403, headers
        assert (await refused.json())["error"]["code"] == "csrf_failed"
    assert await snapshot(client, world.conv_a.id) == before

    accepted = await client.post(url, headers={"X-CSRF-Token": body["csrf_token"]})
    assert accepted.status == 200, await accepted.text()
    assert (await accepted.json())["unread_count"] == 0


async def test_bearer_writes_need_no_csrf(client: TestClient, world: World) -> None:
    client.session.cookie_jar.clear()
    response = await client.post(
        f"/api/conversations/{world.conv_a.id}/labels",
        json={"labels": ["vip"]},
        headers=world.staff["member"].headers,
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["labels"] == ["vip"]


async def test_another_sessions_csrf_token_is_refused(client: TestClient, world: World) -> None:
    member = world.staff["member"]
    other = await (await login(client, world.staff["supervisor"].user.email)).json()
    client.session.cookie_jar.clear()
    mine = await (await login(client, member.user.email)).json()
    assert other["csrf_token"] != mine["csrf_token"]
    refused = await client.post(
        f"/api/conversations/{world.conv_a.id}/read", headers={"X-CSRF-Token": other["csrf_token"]}
    )
    assert refused.status == 403


async def test_logout_revokes_the_token(client: TestClient, world: World) -> None:
    member = world.staff["member"]
    second = await (await login(client, member.user.email)).json()
    client.session.cookie_jar.clear()
    out = await client.post("/api/auth/logout", headers=member.headers)
    assert out.status == 200
    assert (await client.get("/api/me", headers=member.headers)).status == 401
    assert (await client.post("/api/auth/logout", headers=member.headers)).status == 401
    # Only that session: the same user's other login still works.
    still = await client.get("/api/me", headers={"Authorization": f"Bearer {second['token']}"})
    assert still.status == 200


async def test_cookie_logout_clears_the_cookie_and_revokes_it(client: TestClient, world: World) -> None:
    member = world.staff["member"]
    client.session.cookie_jar.clear()
    body = await (await login(client, member.user.email)).json()
    out = await client.post("/api/auth/logout", headers={"X-CSRF-Token": body["csrf_token"]})
    assert out.status == 200
    assert out.cookies["hopthu_session"].value == ""
    assert (await client.get("/api/me")).status == 401
    # The token itself is dead server-side, not only forgotten by this browser.
    assert (await client.get("/api/me", headers={"Authorization": f"Bearer {body['token']}"})).status == 401
    assert (await client.get("/api/me", headers={"Cookie": f"hopthu_session={body['token']}"})).status == 401


async def test_wrong_password_and_unknown_email_are_the_same_401(client: TestClient, world: World) -> None:
    client.session.cookie_jar.clear()
    wrong = await login(client, world.staff["member"].user.email, "sai-mật-khẩu")
    unknown = await login(client, "nobody@shop.vn")
    assert (wrong.status, unknown.status) == (401, 401)
    wrong_body, unknown_body = await wrong.json(), await unknown.json()
    assert_error_shape(wrong_body, 401)
    assert wrong_body == unknown_body
    assert "hopthu_session" not in wrong.cookies and "hopthu_session" not in unknown.cookies
    assert (await client.get("/api/me")).status == 401


async def test_inactive_user_cannot_log_in_and_loses_sessions(client: TestClient, world: World) -> None:
    member = world.staff["member"]
    await User.filter(id=member.user.id).update(is_active=False)
    assert (await client.get("/api/me", headers=member.headers)).status == 401
    client.session.cookie_jar.clear()
    assert (await login(client, member.user.email)).status == 401


async def test_an_expired_session_is_refused_on_the_api_and_the_socket(client: TestClient, world: World) -> None:
    member = world.staff["member"]
    assert (await client.get("/api/me", headers=member.headers)).status == 200
    await AuthSession.filter(user_id=member.user.id).update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    response = await client.get("/api/me", headers=member.headers)
    assert response.status == 401
    assert_error_shape(await response.json(), 401)
    client.session.cookie_jar.clear()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws", params={"token": member.token})
    assert refused.value.status == 401


async def test_login_is_case_insensitive_on_email(client: TestClient, world: World) -> None:
    response = await login(client, world.staff["member"].user.email.upper())
    assert response.status == 200


async def test_the_server_keeps_answering_while_a_login_verifies_its_password(
    client: TestClient, world: World, monkeypatch
) -> None:
    """A password check is ~200 ms of argon2: it runs beside the event loop, so webhooks and other agents are not
    kept waiting by someone logging in."""
    real = passwords._hasher
    finished: list[float] = []

    class SlowHasher:  # a slow machine's argon2: it blocks whatever thread runs it
        def verify(self, password_hash: str, password: str) -> bool:
            time.sleep(0.5)
            try:
                return real.verify(password_hash, password)
            finally:
                finished.append(time.monotonic())

    monkeypatch.setattr(passwords, "_hasher", SlowHasher())
    logging_in = asyncio.create_task(login(client, world.staff["member"].user.email))
    await asyncio.sleep(0.1)
    health = await client.get("/healthz")
    answered = time.monotonic()
    assert health.status == 200
    assert (await logging_in).status == 200
    assert answered < finished[0]  # answered while the password was still being checked


@pytest.mark.parametrize(
    "raw", [b"{not json", b"", b'{"email": "a@b.vn"', b'["email", "password"]', b'{"email": 1, "password": 2}']
)
async def test_bad_login_bodies_are_400(client: TestClient, raw: bytes) -> None:
    response = await client.post("/api/auth/login", data=raw, headers={"Content-Type": "application/json"})
    assert response.status == 400, raw
    assert_error_shape(await response.json(), 400)


@pytest.mark.parametrize("suffix", ["messages", "assign", "status", "labels"])
async def test_malformed_json_to_api_post_is_400(client: TestClient, world: World, suffix: str) -> None:
    before = await snapshot(client, world.conv_a.id)
    for raw in ('{"text": "Dạ'.encode(), b"[1, 2]"):
        response = await client.post(
            f"/api/conversations/{world.conv_a.id}/{suffix}",
            data=raw,
            headers={**world.staff["member"].headers, "Content-Type": "application/json"},
        )
        assert response.status == 400, (suffix, raw)
        body = await response.json()
        assert_error_shape(body, 400)
        assert body["error"]["code"] == ("malformed_json" if raw.startswith(b"{") else "invalid_body")
    assert await snapshot(client, world.conv_a.id) == before


async def test_error_shape_on_every_error_status(client: TestClient, world: World) -> None:
    member, supervisor = world.staff["member"], world.staff["supervisor"]
    conv = f"/api/conversations/{world.conv_a.id}"
    client.session.cookie_jar.clear()
    responses = {
        400: await client.get("/api/conversations", params={"limit": "0"}, headers=member.headers),
        401: await client.get("/api/conversations"),
        403: await client.get("/api/users", headers=member.headers),
        404: await client.get("/api/conversations/424242", headers=member.headers),
        405: await client.delete("/api/me", headers=member.headers),
        422: await client.post(f"{conv}/status", json={"status": "closed"}, headers=supervisor.headers),
    }
    unknown_route = await client.get("/api/no-such-thing", headers=member.headers)
    for status, response in [*responses.items(), (404, unknown_route)]:
        assert response.status == status, (status, await response.text())
        assert response.content_type == "application/json"
        assert_error_shape(await response.json(), status)
