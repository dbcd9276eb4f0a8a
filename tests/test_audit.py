"""`GET /api/audit`: admins read who logged in, who failed, and every sensitive change; filters and paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient

from agents.audit import audit
from agents.models import AuditEntry
from inbox.api import admin as admin_api
from tests.conftest import PASSWORD, quick_user, while_the_body_is_read


async def test_logins_and_failed_logins_are_audited_without_personal_data(client: TestClient) -> None:
    admin = await quick_user("admin")
    agent = await quick_user("agent")
    client.session.cookie_jar.clear()
    assert (await client.post("/api/auth/login", json={"email": agent.user.email, "password": PASSWORD})).status == 200
    for email in (agent.user.email, "khong-ton-tai@shop.vn"):
        response = await client.post("/api/auth/login", json={"email": email, "password": "sai-mật-khẩu"})
        assert response.status == 401

    response = await client.get("/api/audit", headers=admin.headers)
    assert response.status == 200
    items = (await response.json())["items"]
    assert [i["action"] for i in items[:3]] == ["login_failed", "login_failed", "login"]  # newest first
    unknown, known, ok = items[:3]
    assert (ok["actor_id"], ok["target_type"], ok["target_id"]) == (agent.user.id, "user", str(agent.user.id))
    assert ok["ip"] == "127.0.0.1" and ok["occurred_at"].endswith("Z")
    assert (known["actor_id"], known["target_id"]) == (None, str(agent.user.id))
    assert (unknown["target_id"], unknown["data"]["known_user"]) == (None, False)
    text = await response.text()
    assert "khong-ton-tai" not in text and agent.user.email not in text and "sai-mật-khẩu" not in text


async def test_filters_and_paging(client: TestClient) -> None:
    admin = await quick_user("admin")
    for n in range(7):
        await audit("contact.export", actor_id=admin.user.id, target_type="contact", target_id=n)
    await audit("contact.erase", actor_id=admin.user.id, target_type="contact", target_id=3)
    await audit("role_change", actor_id=None, target_type="user", target_id=admin.user.id, data={"to": "admin"})

    async def page(**params: str) -> dict:
        response = await client.get("/api/audit", params=params, headers=admin.headers)
        assert response.status == 200, await response.text()
        return await response.json()

    first = await page(action="contact.export", limit="3")
    assert [i["target_id"] for i in first["items"]] == ["6", "5", "4"]
    second = await page(action="contact.export", limit="3", before=str(first["next_before"]))
    third = await page(action="contact.export", limit="3", before=str(second["next_before"]))
    assert [i["target_id"] for i in second["items"] + third["items"]] == ["3", "2", "1", "0"]
    assert third["next_before"] is None
    assert {i["action"] for i in (await page(action="contact."))["items"]} == {"contact.export", "contact.erase"}
    assert [i["action"] for i in (await page(target_type="contact", target_id="3"))["items"]] == [
        "contact.erase",
        "contact.export",
    ]
    assert [i["action"] for i in (await page(target_type="user"))["items"]] == ["role_change"]
    assert len((await page(actor_id=str(admin.user.id)))["items"]) == 8
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await page(**{"from": later}))["items"] == []
    assert len((await page(to=later, action="contact.export"))["items"]) == 7


async def test_bad_parameters_are_400(client: TestClient) -> None:
    admin = await quick_user("admin")
    for params in ({"limit": "0"}, {"limit": "x"}, {"before": "-1"}, {"from": "hôm qua"}, {"to": "2026-01-01T00:00"},
                   {"actor_id": "99999999999"}):  # fmt: skip
        response = await client.get("/api/audit", params=params, headers=admin.headers)
        assert response.status == 400, params
        assert set((await response.json())["error"]) >= {"code", "message"}


async def test_only_admins_read_it(client: TestClient) -> None:
    await audit("login", actor_id=None)
    for role in ("agent", "supervisor"):
        staff = await quick_user(role)
        response = await client.get("/api/audit", headers=staff.headers)
        assert response.status == 403
    assert (await client.get("/api/audit")).status == 401
    assert await AuditEntry.filter(action="login").count() == 1


async def test_role_permission_and_activation_changes_are_audited(client: TestClient) -> None:
    admin, agent = await quick_user("admin"), await quick_user("agent")
    url = f"/api/users/{agent.user.id}"
    promoted = await client.patch(url, json={"role": "supervisor", "permissions": ["view_contact_pii"]},
                                  headers=admin.headers)  # fmt: skip
    assert promoted.status == 200, await promoted.text()
    body = await promoted.json()
    assert (body["role"], body["permissions"], body["is_active"]) == ("supervisor", ["view_contact_pii"], True)
    assert (await client.get("/api/users", headers=agent.headers)).status == 200  # the new role applies at once
    off = await client.patch(url, json={"is_active": False}, headers=admin.headers)
    assert off.status == 200
    assert (await client.get("/api/me", headers=agent.headers)).status == 401  # sessions ended
    log = await (await client.get("/api/audit", params={"target_type": "user"}, headers=admin.headers)).json()
    actions = [(i["action"], i["data"]) for i in log["items"] if i["target_id"] == str(agent.user.id)]
    assert actions == [
        ("user.deactivated", {}),
        ("user.permissions_changed", {"added": ["view_contact_pii"], "removed": []}),
        ("user.role_changed", {"from": "agent", "to": "supervisor"}),
    ]
    assert all(i["actor_id"] == admin.user.id for i in log["items"] if i["target_id"] == str(agent.user.id))


async def test_a_rename_at_the_moment_of_a_deactivation_does_not_reactivate_the_user(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, agent = await quick_user("admin"), await quick_user("admin"), await quick_user("agent")
    url = f"/api/users/{agent.user.id}"

    async def the_other_admin_deactivates() -> None:
        off = await client.patch(url, json={"is_active": False}, headers=second.headers)
        assert off.status == 200

    while_the_body_is_read(monkeypatch, admin_api, the_other_admin_deactivates)
    renamed = await client.patch(url, json={"name": "Lê Minh Khoa"}, headers=first.headers)
    assert renamed.status == 200
    assert ((await renamed.json())["name"], (await renamed.json())["is_active"]) == ("Lê Minh Khoa", False)
    assert (await client.get("/api/me", headers=agent.headers)).status == 401
    login = await client.post("/api/auth/login", json={"email": agent.user.email, "password": PASSWORD})
    assert login.status == 401


async def test_bad_user_changes_are_refused_and_not_audited(client: TestClient) -> None:
    admin, agent = await quick_user("admin"), await quick_user("agent")
    url = f"/api/users/{agent.user.id}"
    for body, status in [({"role": "owner"}, 422), ({"permissions": ["DROP TABLE"]}, 422), ({}, 400),
                         ({"is_active": "no"}, 400), ({"name": ""}, 422)]:  # fmt: skip
        response = await client.patch(url, json=body, headers=admin.headers)
        assert response.status == status, body
    own = await client.patch(f"/api/users/{admin.user.id}", json={"role": "agent"}, headers=admin.headers)
    assert own.status == 422  # an admin cannot lock themselves out
    assert (await client.patch("/api/users/987654", json={"name": "x"}, headers=admin.headers)).status == 404
    supervisor = await quick_user("supervisor")
    assert (await client.patch(url, json={"role": "admin"}, headers=supervisor.headers)).status == 403
    assert not await AuditEntry.filter(action__startswith="user.").exists()


async def test_inbox_credential_changes_are_audited_without_values(client: TestClient) -> None:
    from inbox.models import Inbox

    admin = await quick_user("admin")
    inbox = await Inbox.create(name="Shop", channel="facebook", external_id="555",
                               credentials={"page_token": "old-token", "app_secret": "old-secret"})  # fmt: skip
    response = await client.patch(f"/api/inboxes/{inbox.id}",
                                  json={"credentials": {"page_token": "new-token-value", "app_secret": None}},
                                  headers=admin.headers)  # fmt: skip
    assert response.status == 200, await response.text()
    assert (await response.json())["credentials_set"] == ["page_token"]
    assert "new-token-value" not in await response.text()
    assert (await Inbox.get(id=inbox.id)).credentials == {"page_token": "new-token-value"}
    entry = await AuditEntry.get(action="inbox.credentials_changed")
    assert (entry.actor_id, entry.target_id, entry.data) == (admin.user.id, str(inbox.id),
                                                             {"keys": ["app_secret", "page_token"]})  # fmt: skip
    log = await (await client.get("/api/audit", headers=admin.headers)).text()
    assert "new-token-value" not in log and "old-secret" not in log
    bad = await client.patch(f"/api/inboxes/{inbox.id}", json={"credentials": {"page_token": ""}},
                             headers=admin.headers)  # fmt: skip
    assert bad.status == 422


async def test_two_admins_setting_different_credentials_at_once_keep_both(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inbox.models import Inbox

    first, second = await quick_user("admin"), await quick_user("admin")
    inbox = await Inbox.create(name="Shop", channel="facebook", external_id="556", credentials={"page_token": "old"})
    url = f"/api/inboxes/{inbox.id}"

    async def the_other_admin_saves() -> None:
        other = await client.patch(url, json={"credentials": {"app_secret": "s3cret"}}, headers=second.headers)
        assert other.status == 200

    while_the_body_is_read(monkeypatch, admin_api, the_other_admin_saves)
    saved = await client.patch(url, json={"credentials": {"page_token": "new"}}, headers=first.headers)
    assert saved.status == 200, await saved.text()
    assert (await saved.json())["credentials_set"] == ["app_secret", "page_token"]
    assert (await Inbox.get(id=inbox.id)).credentials == {"page_token": "new", "app_secret": "s3cret"}
