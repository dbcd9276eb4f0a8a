"""`POST /api/inboxes`: a shop owner connects a Facebook Page, a Zalo OA, a Telegram bot or the website chat from
the web app — the same rules as `hopthu inbox add` — and gets what finishes the set-up (webhook URL, verify token,
widget snippet). Secrets are stored, never shown back nor audited."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from agents.models import AuditEntry, InboxMember
from channels.fakes import messenger_text
from channels.fakes_telegram import FakeBotAPI, running_fake_bot_api
from inbox.config import Settings
from inbox.models import Conversation, Inbox, Message
from tests.conftest import eventually, now_ms, post_webhook, quick_user

BOT_TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
PAGE = {
    "channel": "facebook",
    "name": "Shop Giày Mai Anh",
    "page_id": "106007777777777",
    "page_token": "EAAB-page-token-bi-mat",
    "app_secret": "app-secret-moi-cua-shop",
    "verify_token": "xac-minh-webhook-2026",
}
OA = {
    "channel": "zalo",
    "name": "Zalo Shop Mai Anh",
    "oa_id": "4318899812345678901",
    "app_id": "2710000000000000001",
    "oa_secret": "oa-secret-bi-mat",
    "access_token": "zalo-access-token-bi-mat",
    "refresh_token": "zalo-refresh-token-bi-mat",
    "app_secret": "zalo-app-secret-bi-mat",
}
SECRETS = [PAGE[k] for k in ("page_token", "app_secret")] + [OA[k] for k in OA if k.endswith(("secret", "token"))]


@pytest.fixture
async def fake_bot_api() -> AsyncIterator[FakeBotAPI]:
    async with running_fake_bot_api() as fake:
        fake.add_bot(BOT_TOKEN, username="shop_mai_anh_bot")
        yield fake


@pytest.fixture
def settings(settings: Settings, fake_bot_api: FakeBotAPI) -> Settings:
    return dataclasses.replace(settings, telegram_api_url=fake_bot_api.base_url)


async def add(client: TestClient, body: dict[str, Any], headers: dict[str, str], status: int = 201) -> dict:
    response = await client.post("/api/inboxes", json=body, headers=headers)
    assert response.status == status, await response.text()
    return await response.json()


async def test_a_facebook_page_added_from_the_app_takes_its_webhooks_at_once(client: TestClient) -> None:
    admin = await quick_user("admin")
    created = await add(client, PAGE, admin.headers)
    assert (created["channel"], created["name"], created["external_id"]) == ("facebook", PAGE["name"], PAGE["page_id"])
    assert created["credentials_set"] == ["app_secret", "page_token", "verify_token"]
    base = f"http://{client.host}:{client.port}"
    assert created["setup"] == {"webhook_url": f"{base}/webhooks/facebook", "verify_token": PAGE["verify_token"]}

    # Facebook's subscription handshake, then a customer's message signed with the new app secret.
    query = {"hub.mode": "subscribe", "hub.verify_token": PAGE["verify_token"], "hub.challenge": "4242"}
    handshake = await client.get("/webhooks/facebook", params=query)
    assert (handshake.status, await handshake.text()) == (200, "4242")
    body = messenger_text(PAGE["page_id"], "psid-giay", "m_giay_1", "Giày 39 còn màu đen không?", now_ms())
    assert (await post_webhook(client, body, secret=PAGE["app_secret"])).status == 200
    message = await eventually(lambda: Message.get_or_none(external_id="m_giay_1"))
    assert (await Conversation.get(id=message.conversation_id)).inbox_id == created["id"]
    forged = messenger_text(PAGE["page_id"], "psid-giay", "m_giay_2", "giả mạo", now_ms())
    assert (await post_webhook(client, forged, secret="not-the-app-secret")).status == 401

    entry = await AuditEntry.get(action="inbox.created")
    assert (entry.actor_id, entry.target_type, entry.target_id) == (admin.user.id, "inbox", str(created["id"]))
    assert entry.data == {"channel": "facebook", "external_id": PAGE["page_id"]}


async def test_a_zalo_oa_gets_its_webhook_url_and_no_secret_is_ever_shown_back(client: TestClient) -> None:
    admin = await quick_user("admin")
    created = await add(client, OA, admin.headers)
    assert created["setup"] == {"webhook_url": f"http://{client.host}:{client.port}/webhooks/zalo"}
    stored = await Inbox.get(id=created["id"])
    assert stored.credentials == {k: v for k, v in OA.items() if k not in ("channel", "name", "oa_id")}
    await add(client, PAGE, admin.headers)
    listed = await (await client.get("/api/inboxes", headers=admin.headers)).text()
    audit = await (await client.get("/api/audit", headers=admin.headers)).text()
    for secret in SECRETS:
        assert secret not in listed and secret not in audit
        assert secret not in str(created)


async def test_a_telegram_bot_is_checked_and_its_webhook_registered_with_a_secret_token(
    client: TestClient, fake_bot_api: FakeBotAPI
) -> None:
    admin = await quick_user("admin")
    created = await add(client, {"channel": "telegram", "name": "Bot Shop", "bot_token": BOT_TOKEN}, admin.headers)
    assert (created["external_id"], created["setup"]["username"]) == ("7012345678", "shop_mai_anh_bot")
    webhook_url = f"http://{client.host}:{client.port}/webhooks/telegram/{created['id']}"
    assert created["setup"]["webhook_url"] == webhook_url
    assert [r.method for r in fake_bot_api.requests] == ["getMe", "setWebhook"]
    secret = (await Inbox.get(id=created["id"])).credentials["secret_token"]
    assert len(secret) >= 32  # generated, strong, and never shown
    assert fake_bot_api.bots[BOT_TOKEN].webhook == {"url": webhook_url, "secret_token": secret}
    assert secret not in str(created) and BOT_TOKEN not in str(created)
    # Telegram's updates are then accepted with that secret token only.
    customer = {"id": 555, "is_bot": False, "first_name": "Lan"}
    message = {"message_id": 1, "date": 1_760_000_000, "text": "Chào shop", "chat": {"id": 555, "type": "private"}}
    update = {"update_id": 1, "message": {**message, "from": customer}}
    path = f"/webhooks/telegram/{created['id']}"
    wrong = await client.post(path, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "sai"})
    assert wrong.status == 401
    right = await client.post(path, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": secret})
    assert right.status == 200

    again = await add(client, {"channel": "telegram", "name": "Lần hai", "bot_token": BOT_TOKEN}, admin.headers, 409)
    assert again["error"]["code"] == "inbox_exists"


async def test_a_bot_telegram_refuses_leaves_no_inbox_and_says_why(
    client: TestClient, fake_bot_api: FakeBotAPI
) -> None:
    admin = await quick_user("admin")
    bot = {"channel": "telegram", "name": "Bot Shop", "bot_token": BOT_TOKEN, "secret_token": "bi-mat_123"}
    unknown = await add(client, {**bot, "bot_token": "123:not-a-bot-of-the-fake"}, admin.headers, 422)
    assert unknown["error"]["code"] == "telegram_refused" and "Unauthorized" in unknown["error"]["message"]
    fake_bot_api.fail_next("bad_request", method="setWebhook")
    refused = await add(client, bot, admin.headers, 422)
    assert refused["error"]["code"] == "telegram_webhook_refused"
    fake_bot_api.fail_next("server", method="setWebhook")
    assert (await add(client, bot, admin.headers, 502))["error"]["code"] == "telegram_unavailable"
    bad_secret = await add(client, {**bot, "secret_token": "có dấu"}, admin.headers, 422)
    assert bad_secret["error"]["code"] == "invalid_secret_token"
    assert not await Inbox.exists()
    assert not await AuditEntry.filter(action="inbox.created").exists()
    created = await add(client, bot, admin.headers)
    assert fake_bot_api.bots[BOT_TOKEN].webhook["secret_token"] == "bi-mat_123"
    assert created["setup"]["webhook_url"].endswith(f"/webhooks/telegram/{created['id']}")


async def test_the_website_chat_comes_with_its_snippet_and_identity_secret_shown_once(
    client: TestClient, settings: Settings
) -> None:
    admin = await quick_user("admin")
    body = {"channel": "webchat", "name": "Website", "allowed_origins": ["https://shop.example/"], "prechat": True}
    created = await add(client, body, admin.headers)
    token, secret = created["external_id"], created["setup"]["identity_secret"]
    assert created["settings"]["allowed_origins"] == ["https://shop.example"] and created["settings"]["prechat"]
    base = f"http://{client.host}:{client.port}"
    assert created["setup"]["snippet"] == f'<script src="{base}/widget/{token}.js" async></script>'
    assert created["setup"]["widget_token"] == token
    assert (await Inbox.get(id=created["id"])).credentials["identity_secret"] == secret
    assert secret not in await (await client.get("/api/inboxes", headers=admin.headers)).text()
    assert (await client.get(f"/widget/{token}.js")).status == 200
    entry = await AuditEntry.get(action="inbox.created")
    assert entry.data == {"channel": "webchat", "external_id": None}


async def test_the_public_url_setting_makes_the_setup_links(aiohttp_client: Any, settings: Settings) -> None:
    from inbox.app import create_app

    client = await aiohttp_client(create_app(dataclasses.replace(settings, public_url="https://chat.shop.vn")))
    admin = await quick_user("admin")
    created = await add(client, {**PAGE, "channel": "facebook"}, admin.headers)
    assert created["setup"]["webhook_url"] == "https://chat.shop.vn/webhooks/facebook"


@pytest.mark.parametrize("public_url", [None, "https://chat.shop.vn"])
async def test_listed_inboxes_give_the_same_links_as_their_set_up(
    aiohttp_client: Any, settings: Settings, public_url: str | None
) -> None:
    """Each inbox's card in Admin → Inboxes shows these: HOPTHU_PUBLIC_URL when set, else the request's address —
    never a different address from the one the set-up box showed."""
    from inbox.app import create_app

    client = await aiohttp_client(create_app(dataclasses.replace(settings, public_url=public_url)))
    base = public_url or f"http://{client.host}:{client.port}"
    admin, agent = await quick_user("admin"), await quick_user("agent")
    bot_body = {"channel": "telegram", "name": "Bot", "bot_token": BOT_TOKEN}
    bodies = [PAGE, OA, bot_body, {"channel": "webchat", "name": "Web"}]
    created = [await add(client, body, admin.headers) for body in bodies]
    page, oa, bot, web = created

    listed = await client.get("/api/inboxes", headers=admin.headers)
    items = {item["id"]: item for item in (await listed.json())["items"]}
    assert items[page["id"]]["webhook_url"] == f"{base}/webhooks/facebook"
    assert items[oa["id"]]["webhook_url"] == f"{base}/webhooks/zalo"
    assert items[bot["id"]]["webhook_url"] == f"{base}/webhooks/telegram/{bot['id']}"
    assert items[web["id"]]["snippet"] == f'<script src="{base}/widget/{web["external_id"]}.js" async></script>'
    assert items[web["id"]]["webhook_url"] is None and items[page["id"]]["snippet"] is None
    for inbox in created:
        setup = inbox["setup"]
        assert items[inbox["id"]]["webhook_url"] == inbox["webhook_url"] == setup.get("webhook_url"), inbox["channel"]
        assert items[inbox["id"]]["snippet"] == inbox["snippet"] == setup.get("snippet"), inbox["channel"]
    renamed = await client.patch(f"/api/inboxes/{page['id']}", json={"name": "Shop Giày"}, headers=admin.headers)
    assert (await renamed.json())["webhook_url"] == f"{base}/webhooks/facebook"
    # Agents list their inboxes too (the web app keeps them): the same links, no credential.
    await InboxMember.create(user=agent.user, inbox_id=page["id"])
    theirs = (await (await client.get("/api/inboxes", headers=agent.headers)).json())["items"]
    assert [(i["id"], i["webhook_url"]) for i in theirs] == [(page["id"], f"{base}/webhooks/facebook")]
    assert (await client.get("/api/inboxes")).status == 401


async def test_bad_inboxes_are_refused_and_nothing_is_stored(client: TestClient) -> None:
    admin = await quick_user("admin")
    await add(client, PAGE, admin.headers)
    for body, status, code in [
        ({**PAGE, "channel": "viber"}, 422, "invalid_channel"),
        ({**PAGE, "name": "  "}, 422, "invalid_name"),
        ({k: v for k, v in PAGE.items() if k != "name"}, 422, "invalid_name"),
        ({**PAGE, "page_id": "106008888", "app_secret": "", "verify_token": None}, 422, "missing_fields"),
        ({"channel": "zalo", "name": "Zalo"}, 422, "missing_fields"),
        ({"channel": "telegram", "name": "Bot"}, 422, "missing_fields"),
        ({**PAGE, "page_id": "106008888", "page_token": 42}, 422, "invalid_field"),
        ({**PAGE, "page_id": "1" * 129}, 422, "invalid_field"),
        ({"channel": "webchat", "name": "Web", "allowed_origins": ["shop.example"]}, 422, "invalid_allowed_origins"),
        ({"channel": "webchat", "name": "Web", "allowed_origins": "https://shop.example"}, 422,
         "invalid_allowed_origins"),
        ({"channel": "webchat", "name": "Web", "prechat": "yes"}, 422, "invalid_field"),
        ({**PAGE, "name": "Trùng trang"}, 409, "inbox_exists"),
    ]:  # fmt: skip
        error = (await add(client, body, admin.headers, status))["error"]
        assert error["code"] == code, (body, error)
    missing = await add(client, {**PAGE, "page_id": "1", "app_secret": "", "verify_token": None}, admin.headers, 422)
    assert missing["error"]["message"] == "channel facebook needs app_secret, verify_token"
    assert await Inbox.all().count() == 1
    assert await AuditEntry.filter(action="inbox.created").count() == 1


async def test_only_admins_add_inboxes(client: TestClient) -> None:
    body = {"channel": "webchat", "name": "Website"}
    assert (await client.post("/api/inboxes", json=body)).status == 401
    for role in ("agent", "supervisor"):
        staff = await quick_user(role)
        assert (await client.post("/api/inboxes", json=body, headers=staff.headers)).status == 403
    assert not await Inbox.exists()
    await add(client, body, (await quick_user("admin")).headers)
