"""Saved replies for agents, the FAQ and bot settings API, and the bot report."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from agents.faq_seed import install
from agents.models import FaqEntry
from inbox.api import bots as bots_api
from inbox.keys import BOTS, PROFILES
from inbox.models import Conversation, Inbox
from tests.conftest import eventually, make_inbox, make_user, while_the_body_is_read
from tests.test_bots import bot_said, customer_says


async def test_saved_replies_scoped_searchable_and_rendered(client: TestClient, inbox: Inbox) -> None:
    other = await make_inbox(page_id="2222", app_secret="secret-b", name="Shop Mỹ Phẩm")
    supervisor = await make_user(client, "supervisor")
    member = await make_user(client, "agent", inboxes=[inbox])
    outsider = await make_user(client, "agent", inboxes=[other])

    async def create(body: dict) -> dict:
        response = await client.post("/api/saved-replies", json=body, headers=supervisor.headers)
        assert response.status == 201, await response.text()
        return await response.json()

    greeting = await create(
        {"shortcut": "chao", "title": "Chào khách", "text": "Dạ {agent.name} chào {contact.name} ạ"}
    )
    ship = await create({"shortcut": "/ship", "text": "Phí giao hàng 30.000đ ạ", "inbox_id": inbox.id})
    await create({"shortcut": "son", "text": "Son còn đủ màu ạ", "inbox_id": other.id})
    assert ship["shortcut"] == "ship"  # "/ship" is how agents type it

    async def shortcuts(staff, **query) -> list[str]:
        response = await client.get("/api/saved-replies", params=query, headers=staff.headers)
        assert response.status == 200
        return [item["shortcut"] for item in (await response.json())["items"]]

    assert await shortcuts(member) == ["chao", "ship"]
    assert await shortcuts(outsider) == ["chao", "son"]
    assert await shortcuts(supervisor) == ["chao", "ship", "son"]
    assert await shortcuts(member, q="giao hang") == ["ship"]  # without diacritics
    assert await shortcuts(member, q="/sh") == ["ship"]

    duplicate = await client.post(
        "/api/saved-replies", json={"shortcut": "ship", "text": "x", "inbox_id": inbox.id}, headers=supervisor.headers
    )
    assert duplicate.status == 409
    global_duplicate = await client.post(
        "/api/saved-replies", json={"shortcut": "chao", "text": "x"}, headers=supervisor.headers
    )
    assert global_duplicate.status == 409

    await customer_says(client, "PSID-SR", "Chào shop")
    await client.app[PROFILES].idle()  # the customer's name arrives from the Graph API off the ack path
    conv = await Conversation.filter(inbox_id=inbox.id).prefetch_related("contact").first()
    rendered = await client.post(
        f"/api/saved-replies/{greeting['id']}/render", json={"conversation_id": conv.id}, headers=member.headers
    )
    assert rendered.status == 200
    name = conv.contact.name or "bạn"
    assert (await rendered.json())["text"] == f"Dạ {member.user.name} chào {name} ạ"
    # An agent of another inbox can neither see the reply nor render it into this conversation.
    hidden = await client.post(
        f"/api/saved-replies/{ship['id']}/render", json={"conversation_id": conv.id}, headers=outsider.headers
    )
    assert hidden.status == 404


async def test_saved_reply_validation(client: TestClient, inbox: Inbox) -> None:
    supervisor = await make_user(client, "supervisor")
    for body, code in (
        ({"shortcut": "two words", "text": "x"}, "invalid_shortcut"),
        ({"shortcut": "ok", "text": ""}, "invalid_text"),
        ({"shortcut": "ok", "text": "x", "inbox_id": 999999}, "unknown_inbox"),
        ({"text": "x"}, "invalid_shortcut"),
    ):
        response = await client.post("/api/saved-replies", json=body, headers=supervisor.headers)
        assert response.status == 422, body
        assert (await response.json())["error"]["code"] == code


async def test_faq_crud_and_the_bot_uses_edits_at_once(client: TestClient, inbox: Inbox) -> None:
    admin = await make_user(client, "admin")
    response = await client.put(
        f"/api/inboxes/{inbox.id}/bot", json={"faq_enabled": True, "welcome_message": None}, headers=admin.headers
    )
    assert response.status == 200 and (await response.json())["faq_enabled"] is True
    created = await client.post(
        f"/api/inboxes/{inbox.id}/faq",
        json={"questions": ["Shop có bán giày không?", "Có giày không shop"], "answer": "Dạ shop chỉ bán quần áo ạ"},
        headers=admin.headers,
    )
    assert created.status == 201
    entry = await created.json()
    msg = await customer_says(client, "PSID-F", "shop co ban giay khong")
    answers = await eventually(lambda: bot_said(msg.conversation_id, "faq"))
    assert answers[0].text == "Dạ shop chỉ bán quần áo ạ"

    patched = await client.patch(
        f"/api/faq/{entry['id']}", json={"answer": "Dạ shop có giày từ tháng sau ạ"}, headers=admin.headers
    )
    assert patched.status == 200
    again = await customer_says(client, "PSID-F2", "shop có bán giày không")
    answers = await eventually(lambda: bot_said(again.conversation_id, "faq"))
    assert answers[0].text == "Dạ shop có giày từ tháng sau ạ"

    deleted = await client.delete(f"/api/faq/{entry['id']}", headers=admin.headers)
    assert deleted.status == 200 and not await FaqEntry.exists(id=entry["id"])


async def test_bot_settings_validation(client: TestClient, inbox: Inbox) -> None:
    admin = await make_user(client, "admin")
    for body in ({"threshold": 2}, {"threshold": "high"}, {"faq_enabled": "yes"}, {"colour": "red"}, {"variables": []}):
        response = await client.put(f"/api/inboxes/{inbox.id}/bot", json=body, headers=admin.headers)
        assert response.status == 422, body
    missing = await client.put("/api/inboxes/999999/bot", json={}, headers=admin.headers)
    assert missing.status == 404
    nothing = await client.put(f"/api/inboxes/{inbox.id}/bot", json={}, headers=admin.headers)
    assert nothing.status == 200 and (await nothing.json())["faq_enabled"] is False  # nothing to change is no error


async def test_bot_routing_and_auto_hide_settings_saved_at_once_all_stay(
    client: TestClient, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two admins save different settings of one inbox at the same moment: neither save undoes the other."""
    admin, supervisor = await make_user(client, "admin"), await make_user(client, "supervisor")

    async def others_save() -> None:
        routing = await client.put(f"/api/inboxes/{inbox.id}/routing", json={"routing": {"capacity": 7}},
                                   headers=supervisor.headers)  # fmt: skip
        hide = await client.put(f"/api/inboxes/{inbox.id}/comment-settings", json={"auto_hide": False},
                                headers=admin.headers)  # fmt: skip
        assert routing.status == 200 and hide.status == 200

    while_the_body_is_read(monkeypatch, bots_api, others_save)
    saved = await client.put(f"/api/inboxes/{inbox.id}/bot", json={"faq_enabled": True}, headers=admin.headers)
    assert saved.status == 200 and (await saved.json())["faq_enabled"] is True
    routing = await client.get(f"/api/inboxes/{inbox.id}/routing", headers=supervisor.headers)
    assert (await routing.json())["routing"]["capacity"] == 7
    await inbox.refresh_from_db()
    assert inbox.settings["bot"]["faq_enabled"] is True and inbox.settings["comment_auto_hide"] is False


async def test_faq_try_out_shows_what_the_bot_would_answer(client: TestClient, inbox: Inbox) -> None:
    await install(inbox.id)
    supervisor = await make_user(client, "supervisor")
    response = await client.post(
        f"/api/inboxes/{inbox.id}/faq/test", json={"text": "phi ship bao nhieu vay"}, headers=supervisor.headers
    )
    data = await response.json()
    assert response.status == 200 and data["would_answer"] is True
    assert "30.000đ" in data["answer"]
    unrelated = await client.post(
        f"/api/inboxes/{inbox.id}/faq/test", json={"text": "hôm nay trời mưa to quá"}, headers=supervisor.headers
    )
    assert (await unrelated.json())["would_answer"] is False


async def test_bot_report_counts_handoffs_and_bot_only_resolutions(client: TestClient, inbox: Inbox) -> None:
    await install(inbox.id)
    client.app[BOTS].forget()
    supervisor = await make_user(client, "supervisor")
    answered = await customer_says(client, "PSID-RB1", "phí ship bao nhiêu vậy shop")
    await eventually(lambda: bot_said(answered.conversation_id, "faq"))
    resolved = await client.post(
        f"/api/conversations/{answered.conversation_id}/status", json={"status": "resolved"}, headers=supervisor.headers
    )
    assert resolved.status == 200
    handed = await customer_says(client, "PSID-RB2", "cho mình gặp nhân viên")
    await eventually(lambda: bot_said(handed.conversation_id, "handoff"))

    report = await client.get("/api/reports/bots", headers=supervisor.headers)
    data = await report.json()
    assert report.status == 200
    assert data["resolved_by_bot_alone"] == 1 and data["resolved_by_bot_alone_ids"] == [answered.conversation_id]
    assert data["handoffs"] == {"requested": 1}
    assert data["conversations_with_bot"] == 2
    bad = await client.get("/api/reports/bots", params={"from": "yesterday"}, headers=supervisor.headers)
    assert bad.status == 400
