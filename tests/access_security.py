"""Access-matrix cases for the security and operations routes (audit log, sessions, password, mentions)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.conftest import PASSWORD
from tests.matrix import Case, World

CASES = [
    Case("GET", "/api/audit", "admin"),
    Case("POST", "/api/auth/logout-all", "agent"),
    Case(
        "POST",
        "/api/auth/password",
        "agent",
        body=lambda w, who: {"current_password": PASSWORD, "new_password": "một-mật-khẩu-mới-dài"},
    ),
]


async def prepare(world: World, client: TestClient) -> None:
    response = await client.post(
        "/api/bulk-jobs", json={"action": "resolve", "conversation_ids": []}, headers=world.staff["admin"].headers
    )
    assert response.status == 202, await response.text()
    world.extra["bulk_job"] = (await response.json())["id"]


CASES += [
    Case("POST", "/api/bulk-jobs", "supervisor", 202, lambda w, who: {"action": "resolve", "conversation_ids": []}),
    Case("GET", "/api/bulk-jobs/{id}", "supervisor", target=lambda w: {"id": w.extra["bulk_job"]}),
]
CASES += [
    Case("PATCH", "/api/users/{id}", "admin", body=lambda w, who: {"name": "Tên mới"},
         target=lambda w: {"id": w.staff["member"].user.id}),
    Case("POST", "/api/users", "admin", 201,
         body=lambda w, who: {"email": f"nhan-vien-moi-{who}@shop.vn", "password": PASSWORD * 2, "role": "agent"}),
    Case("PATCH", "/api/inboxes/{id}", "admin", body=lambda w, who: {"name": "Shop mới"},
         target=lambda w: {"id": w.inbox_a.id}),
    Case("POST", "/api/inboxes", "admin", 201, body=lambda w, who: {"channel": "webchat", "name": f"Website {who}"}),
]  # fmt: skip
# @mentions: each caller's own list and read marks; who may be mentioned in a conversation (its readers).
CASES += [
    Case("GET", "/api/mentions", "agent"),
    Case("POST", "/api/mentions/read", "agent", body=lambda w, who: {"ids": [1]}),
    Case("GET", "/api/conversations/{id}/mentionable", "agent"),
]
