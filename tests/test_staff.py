"""Staff management by admins: `POST /api/users` adds a staff member who can log in at once, and
`PATCH /api/users/{id}` with `inbox_ids` sets the inboxes an agent works in. Both are audited."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from agents.models import AuditEntry, InboxMember, User
from tests.conftest import PASSWORD, make_inbox, quick_user
from tests.test_realtime import PAGE_B, SECRET_B, incoming

NEW_PASSWORD = "mật-khẩu-của-lan-2026"


async def conversation_of_each_inbox(client: TestClient):
    """Inbox A (the default page) and inbox B, each with one customer's conversation."""
    inbox_a = await make_inbox()
    inbox_b = await make_inbox(page_id=PAGE_B, app_secret=SECRET_B, name="Shop Giày")
    conv_a = await incoming(client, "psid-a", "m_staff_a", "Áo còn size M không shop?")
    conv_b = await incoming(client, "psid-b", "m_staff_b", "Giày 39 còn không?", page_id=PAGE_B, secret=SECRET_B)
    return inbox_a, inbox_b, conv_a, conv_b


async def log_in(client: TestClient, email: str, password: str) -> dict[str, str]:
    response = await client.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status == 200, await response.text()
    return {"Authorization": f"Bearer {(await response.json())['token']}"}


async def listed(client: TestClient, headers: dict[str, str]) -> set[int]:
    response = await client.get("/api/conversations", headers=headers)
    assert response.status == 200
    return {c["id"] for c in (await response.json())["items"]}


async def test_an_admin_adds_an_agent_who_logs_in_and_sees_only_their_inbox(client: TestClient) -> None:
    inbox_a, _, conv_a, _ = await conversation_of_each_inbox(client)
    admin = await quick_user("admin")
    response = await client.post(
        "/api/users",
        json={"email": " Lan.Pham@Shop.vn ", "password": NEW_PASSWORD, "role": "agent", "name": "Phạm Ngọc Lan",
              "inbox_ids": [inbox_a.id]},
        headers=admin.headers,
    )  # fmt: skip
    assert response.status == 201, await response.text()
    created = await response.json()
    assert {k: created[k] for k in ("email", "name", "role", "is_active", "inbox_ids")} == {
        "email": "lan.pham@shop.vn", "name": "Phạm Ngọc Lan", "role": "agent", "is_active": True,
        "inbox_ids": [inbox_a.id],
    }  # fmt: skip
    lan = await log_in(client, "lan.pham@shop.vn", NEW_PASSWORD)
    assert await listed(client, lan) == {conv_a.id}
    staff = await (await client.get("/api/users", headers=admin.headers)).json()
    assert [u["inbox_ids"] for u in staff["items"] if u["id"] == created["id"]] == [[inbox_a.id]]
    entry = await AuditEntry.get(action="user.created")
    assert (entry.actor_id, entry.target_id, entry.data) == (
        admin.user.id, str(created["id"]), {"role": "agent", "inbox_ids": [inbox_a.id]}
    )  # fmt: skip
    assert NEW_PASSWORD not in str(entry.data)


async def test_bad_new_staff_are_refused_and_nothing_is_created(client: TestClient) -> None:
    inbox = await make_inbox()
    admin, taken = await quick_user("admin"), await quick_user("agent")
    good = {"email": "khoa@shop.vn", "password": NEW_PASSWORD, "role": "agent"}
    for body, status, code in [
        ({**good, "email": "khoa-at-shop"}, 422, "invalid_email"),
        ({**good, "password": "ngắn"}, 422, "weak_password"),
        ({**good, "role": "owner"}, 422, "invalid_role"),
        ({**good, "name": ""}, 422, "invalid_name"),
        ({**good, "inbox_ids": [inbox.id, 987654]}, 422, "unknown_inbox"),
        ({**good, "inbox_ids": "1"}, 400, "invalid_body"),
        ({**good, "email": taken.user.email.upper()}, 409, "email_taken"),
    ]:
        response = await client.post("/api/users", json=body, headers=admin.headers)
        assert response.status == status, (body, await response.text())
        assert (await response.json())["error"]["code"] == code
    assert not await User.filter(email="khoa@shop.vn").exists()
    assert not await AuditEntry.filter(action="user.created").exists()


async def test_moving_an_agent_to_another_inbox_changes_what_they_see(client: TestClient) -> None:
    inbox_a, inbox_b, conv_a, conv_b = await conversation_of_each_inbox(client)
    admin, agent = await quick_user("admin"), await quick_user("agent", inboxes=[inbox_a])
    assert await listed(client, agent.headers) == {conv_a.id}
    url = f"/api/users/{agent.user.id}"
    moved = await client.patch(url, json={"inbox_ids": [inbox_b.id]}, headers=admin.headers)
    assert moved.status == 200, await moved.text()
    assert (await moved.json())["inbox_ids"] == [inbox_b.id]
    assert await listed(client, agent.headers) == {conv_b.id}
    assert (await client.get(f"/api/conversations/{conv_a.id}", headers=agent.headers)).status == 404
    both = await client.patch(url, json={"inbox_ids": [inbox_b.id, inbox_a.id, inbox_a.id]}, headers=admin.headers)
    assert (await both.json())["inbox_ids"] == [inbox_a.id, inbox_b.id]
    same = await client.patch(url, json={"inbox_ids": [inbox_a.id, inbox_b.id]}, headers=admin.headers)
    assert same.status == 200
    log = [(e.action, e.data) for e in await AuditEntry.filter(target_id=str(agent.user.id)).order_by("id")]
    assert log == [
        ("user.inboxes_changed", {"added": [inbox_b.id], "removed": [inbox_a.id]}),
        ("user.inboxes_changed", {"added": [inbox_a.id], "removed": []}),
    ]
    refused = await client.patch(url, json={"inbox_ids": [987654]}, headers=admin.headers)
    assert refused.status == 422
    assert sorted(await InboxMember.filter(user_id=agent.user.id).values_list("inbox_id", flat=True)) == sorted(
        [inbox_a.id, inbox_b.id]
    )
    supervisor = await quick_user("supervisor")
    assert (await client.patch(url, json={"inbox_ids": []}, headers=supervisor.headers)).status == 403


async def test_an_admin_sets_a_new_password_for_someone_who_forgot_theirs(client: TestClient) -> None:
    admin, agent = await quick_user("admin"), await quick_user("agent")
    url = f"/api/users/{agent.user.id}"
    for body, code in [({"password": "ngắn"}, "weak_password"), ({"password": 12345678901}, "weak_password")]:
        refused = await client.patch(url, json=body, headers=admin.headers)
        assert (refused.status, (await refused.json())["error"]["code"]) == (422, code)
    assert (await client.get("/api/me", headers=agent.headers)).status == 200  # nothing changed yet
    reset = await client.patch(url, json={"password": NEW_PASSWORD}, headers=admin.headers)
    assert reset.status == 200, await reset.text()
    assert "password" not in str(await reset.json())
    assert (await client.get("/api/me", headers=agent.headers)).status == 401  # every old session ended
    old = await client.post("/api/auth/login", json={"email": agent.user.email, "password": PASSWORD})
    assert old.status == 401
    assert (await client.get("/api/me", headers=await log_in(client, agent.user.email, NEW_PASSWORD))).status == 200
    entry = await AuditEntry.get(action="user.password_reset")
    assert (entry.actor_id, entry.target_id, entry.data) == (admin.user.id, str(agent.user.id), {})
    own = await client.patch(f"/api/users/{admin.user.id}", json={"password": NEW_PASSWORD}, headers=admin.headers)
    assert (own.status, (await own.json())["error"]["code"]) == (422, "own_password")
    supervisor = await quick_user("supervisor")
    assert (await client.patch(url, json={"password": NEW_PASSWORD}, headers=supervisor.headers)).status == 403
