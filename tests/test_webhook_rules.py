"""The contract's rules for every webhook, on the Messenger endpoint: handshake, signature, body limits, unknown
events kept as dead letters, redelivery without duplicates, 503 when the database cannot commit, exact timestamps.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from channels.facebook import SIGNATURE_HEADER, sign
from channels.fakes import messenger_batch, messenger_text, signed
from inbox.app import create_app
from inbox.config import load_settings
from inbox.models import Conversation, DeadLetter, InboundEvent, Message
from tests.conftest import (
    APP_SECRET,
    PAGE_ID,
    TEST_DATABASE_URL,
    VERIFY_TOKEN,
    eventually,
    make_inbox,
    make_user,
    now_ms,
    post_webhook,
    postgres_lock_timeout,
    send_text,
)

OTHER_PAGE = "106009999999999"


async def nothing_stored() -> None:
    assert await InboundEvent.all().count() == 0
    assert await DeadLetter.all().count() == 0
    assert await Message.all().count() == 0


def assert_error_shape(body: dict, code: str | None = None) -> None:
    assert set(body) == {"error"}
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code


# ---------------------------------------------------------------------------------------------- handshake


async def test_handshake_echoes_the_challenge_as_plain_text(client, inbox):
    params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    response = await client.get("/webhooks/facebook", params=params)
    assert response.status == 200
    assert response.content_type == "text/plain"
    assert await response.text() == "1158201444"


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong-token", "hub.challenge": "42"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "42"},
        {"hub.verify_token": VERIFY_TOKEN, "hub.challenge": "42"},
    ],
    ids=["wrong-token", "wrong-mode", "no-mode"],
)
async def test_handshake_refuses_wrong_token_or_mode(client, inbox, params):
    response = await client.get("/webhooks/facebook", params=params)
    assert response.status == 403
    assert "42" not in await response.text()


# ---------------------------------------------------------------------------------------------- signature


async def test_bad_signature_is_refused_and_nothing_is_stored(client, inbox):
    raw, headers = signed(messenger_text(PAGE_ID, "PSID-1", "mid.bad", "xin chào", now_ms()), APP_SECRET)
    headers[SIGNATURE_HEADER] = "sha256=" + "0" * 64
    response = await client.post("/webhooks/facebook", data=raw, headers=headers)
    assert response.status == 401
    assert_error_shape(await response.json())
    await nothing_stored()


async def test_missing_signature_is_refused(client, inbox):
    raw, _ = signed(messenger_text(PAGE_ID, "PSID-1", "mid.nosig", "xin chào", now_ms()), APP_SECRET)
    response = await client.post("/webhooks/facebook", data=raw, headers={"Content-Type": "application/json"})
    assert response.status == 401
    await nothing_stored()


async def test_signature_made_with_another_secret_is_refused(client, inbox):
    response = await post_webhook(
        client, messenger_text(PAGE_ID, "PSID-1", "mid.other", "xin chào", now_ms()), secret="not-our-secret"
    )
    assert response.status == 401
    await nothing_stored()


async def test_signature_over_other_bytes_is_refused(client, inbox):
    """The signature covers the raw bytes: the same JSON re-serialised differently no longer matches."""
    body = messenger_text(PAGE_ID, "PSID-1", "mid.reser", "xin chào", now_ms())
    _, headers = signed(body, APP_SECRET)
    pretty = json.dumps(body, indent=2).encode()
    response = await client.post("/webhooks/facebook", data=pretty, headers=headers)
    assert response.status == 401
    await nothing_stored()


# ---------------------------------------------------------------------------------------------- body


async def test_malformed_json_correctly_signed_is_a_400(client, inbox):
    raw = b'{"object":"page","entry":[{"id":'
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(raw, APP_SECRET)}
    response = await client.post("/webhooks/facebook", data=raw, headers=headers)
    assert response.status == 400
    assert_error_shape(await response.json())
    await nothing_stored()


def _oversized() -> bytes:
    text = "a" * (1024 * 1024 + 10)
    return json.dumps(messenger_text(PAGE_ID, "PSID-1", "mid.big", text, now_ms())).encode()


async def test_body_over_one_mib_with_content_length_is_a_413(client, inbox):
    raw = _oversized()
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(raw, APP_SECRET)}
    response = await client.post("/webhooks/facebook", data=raw, headers=headers)
    assert response.status == 413
    assert_error_shape(await response.json())
    await nothing_stored()


async def test_body_over_one_mib_without_content_length_is_a_413(client, inbox):
    raw = _oversized()
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(raw, APP_SECRET)}

    async def chunks():
        for start in range(0, len(raw), 64 * 1024):
            yield raw[start : start + 64 * 1024]

    response = await client.post("/webhooks/facebook", data=chunks(), headers=headers)
    assert "Content-Length" not in response.request_info.headers
    assert response.status == 413
    await nothing_stored()


async def test_body_just_under_one_mib_is_accepted(client, inbox):
    body = messenger_text(PAGE_ID, "PSID-1", "mid.almost", "", now_ms())
    filler = 1024 * 1024 - len(json.dumps(body, separators=(",", ":")).encode()) - 100
    body["entry"][0]["messaging"][0]["message"]["text"] = "b" * filler
    response = await post_webhook(client, body)
    assert response.status == 200
    await eventually(lambda: Message.filter(external_id="mid.almost").exists())


# ---------------------------------------------------------------------------------------------- unknown events


async def test_feed_change_is_acknowledged_and_dead_lettered_for_admins(client, inbox):
    change = {
        "field": "feed",
        # An item hopthu does not know (comments are handled, the page's own posts ignored): kept for admins.
        "value": {
            "item": "milestone",
            "verb": "add",
            "post_id": f"{PAGE_ID}_712750021053074",
            "created_time": 1707211876,
        },
    }
    body = {"object": "page", "entry": [{"id": PAGE_ID, "time": 1707211876, "changes": [change]}]}
    response = await post_webhook(client, body)
    assert response.status == 200

    letters = await DeadLetter.all()
    assert len(letters) == 1
    assert letters[0].payload == change
    assert letters[0].inbox_id == inbox.id
    assert await InboundEvent.all().count() == 0

    assert (await client.get("/api/dead-letters")).status == 401  # before any login: no session cookie
    agent = await make_user(client, "agent", inboxes=[inbox])
    admin = await make_user(client, "admin")
    client.session.cookie_jar.clear()  # the bearer token alone decides who is asking
    forbidden = await client.get("/api/dead-letters", headers=agent.headers)
    assert forbidden.status == 403
    assert_error_shape(await forbidden.json(), "forbidden")
    listed = await client.get("/api/dead-letters", headers=admin.headers)
    assert listed.status == 200
    items = (await listed.json())["items"]
    assert len(items) == 1
    assert items[0]["channel"] == "facebook"
    assert items[0]["inbox_id"] == inbox.id
    assert items[0]["account_id"] == PAGE_ID
    assert items[0]["payload"] == change
    assert items[0]["reason"]


async def test_event_with_nothing_we_know_is_dead_lettered_with_its_raw_body(client, inbox):
    event = {
        "sender": {"id": "PSID-1"},
        "recipient": {"id": PAGE_ID},
        "timestamp": now_ms(),
        "future_feature": {"mid": "m_x", "action": "react"},  # a messaging field hopthu does not read (yet)
    }
    known = messenger_text(PAGE_ID, "PSID-2", "mid.known", "Còn hàng không ạ?", now_ms())
    body = {"object": "page", "entry": [{"id": PAGE_ID, "time": now_ms(), "messaging": [event]}, *known["entry"]]}
    response = await post_webhook(client, body)
    assert response.status == 200
    letter = await DeadLetter.get()
    assert letter.payload == event
    # The understood event in the same delivery still lands.
    await eventually(lambda: Message.filter(external_id="mid.known").exists())
    assert await Message.all().count() == 1


@pytest.mark.parametrize(
    "body",
    [{"object": "user", "entry": [{"id": PAGE_ID, "time": 1}]}, {"object": "page"}, [1, 2, 3], "page", 7],
    ids=["object-user", "no-entry", "list", "string", "number"],
)
async def test_signed_body_that_is_not_a_page_envelope_is_dead_lettered(client, inbox, body):
    response = await post_webhook(client, body)
    assert response.status == 200
    letter = await DeadLetter.get()
    assert letter.reason
    assert letter.payload == (body if isinstance(body, dict) else {"payload": body})
    assert await InboundEvent.all().count() == 0


async def test_event_for_a_page_without_inbox_is_dead_lettered_with_a_reason(client, inbox):
    body = messenger_text(OTHER_PAGE, "PSID-1", "mid.nowhere", "alo", now_ms())
    response = await post_webhook(client, body)
    assert response.status == 200
    letter = await DeadLetter.get()
    assert letter.account_id == OTHER_PAGE
    assert letter.inbox_id is None
    assert "no inbox" in letter.reason
    assert letter.payload["external_id"] == "mid.nowhere"
    assert await InboundEvent.all().count() == 0
    assert await Message.all().count() == 0


async def test_event_signed_with_another_pages_secret_is_not_accepted_for_this_page(client, inbox):
    """Two inboxes, two apps: a body signed by app A that names page B must not land in B's inbox."""
    await make_inbox(page_id=OTHER_PAGE, app_secret="second-app-secret", name="Shop Giày")
    body = messenger_text(OTHER_PAGE, "PSID-1", "mid.cross", "alo", now_ms())
    response = await post_webhook(client, body, secret=APP_SECRET)
    assert response.status == 200
    letter = await DeadLetter.get()
    assert letter.account_id == OTHER_PAGE
    assert await InboundEvent.all().count() == 0

    # Signed by the right app it is stored.
    response = await post_webhook(client, body, secret="second-app-secret")
    assert response.status == 200
    await eventually(lambda: Message.filter(external_id="mid.cross").exists())


async def test_inbox_added_after_start_is_recognised_at_once(client, inbox):
    await make_inbox(page_id=OTHER_PAGE, app_secret="fresh-secret", name="Shop Mới")
    response = await post_webhook(
        client, messenger_text(OTHER_PAGE, "PSID-1", "mid.fresh", "alo", now_ms()), "fresh-secret"
    )
    assert response.status == 200
    await eventually(lambda: Message.filter(external_id="mid.fresh").exists())
    assert await DeadLetter.all().count() == 0


# ---------------------------------------------------------------------------------------------- redelivery


async def test_redelivered_webhook_is_stored_once(client, inbox):
    body = messenger_text(PAGE_ID, "PSID-1", "mid.again", "Ship về Đà Nẵng bao lâu ạ?", now_ms())
    for _ in range(3):
        assert (await post_webhook(client, body)).status == 200
    await eventually(lambda: Message.filter(external_id="mid.again").exists())
    await eventually(lambda: _all_processed())
    assert await Message.filter(external_id="mid.again").count() == 1
    assert await InboundEvent.all().count() == 1
    conv = await Conversation.get()
    assert conv.unread_count == 1


async def test_concurrent_redelivery_is_stored_once(client, inbox):
    body = messenger_text(PAGE_ID, "PSID-1", "mid.storm", "Giá bao nhiêu vậy shop?", now_ms())
    responses = await asyncio.gather(*(post_webhook(client, body) for _ in range(20)))
    assert [r.status for r in responses] == [200] * 20
    assert await InboundEvent.all().count() == 1
    await eventually(lambda: Message.filter(external_id="mid.storm").exists())
    await eventually(lambda: _all_processed())
    assert await Message.all().count() == 1
    assert await Conversation.all().count() == 1


async def _all_processed() -> bool:
    return not await InboundEvent.filter(processed=False).exists()


async def test_batched_entries_make_one_conversation_per_customer(client, inbox):
    ts = now_ms()
    body = messenger_batch(
        messenger_text(PAGE_ID, "PSID-A", "mid.b1", "Chào shop", ts),
        messenger_text(PAGE_ID, "PSID-B", "mid.b2", "Cho mình hỏi giá", ts + 1),
        messenger_text(PAGE_ID, "PSID-C", "mid.b3", "Còn size L không?", ts + 2),
    )
    assert len(body["entry"]) == 3
    assert (await post_webhook(client, body)).status == 200
    await eventually(lambda: _count(Message, 3))
    convs = await Conversation.all().prefetch_related("identity")
    assert sorted(c.identity.external_id for c in convs) == ["PSID-A", "PSID-B", "PSID-C"]
    assert sorted(c.last_message_preview for c in convs) == ["Cho mình hỏi giá", "Chào shop", "Còn size L không?"]


async def _count(model, expected: int) -> bool:
    return await model.all().count() == expected


# ---------------------------------------------------------------------------------------------- storage down


async def test_database_that_cannot_commit_answers_503_then_stores_on_redelivery(
    aiohttp_client, database_url: str, fake_graph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    if TEST_DATABASE_URL:
        postgres_lock_timeout(monkeypatch)
        url = database_url
    else:
        url = f"{database_url}?busy_timeout=50"
    settings = load_settings(
        environ={
            "HOPTHU_DATABASE_URL": url,
            "HOPTHU_SECRET_KEY": "test-secret-key",
            "HOPTHU_FACEBOOK_GRAPH_URL": fake_graph.base_url,
        },
        toml_path=tmp_path / "absent.toml",
        outbox_base_delay=0.05,
        outbox_max_attempts=4,
    )
    client = await aiohttp_client(create_app(settings))
    await make_inbox()
    body = messenger_text(PAGE_ID, "PSID-1", "mid.locked", "Shop ơi, đơn của mình đâu rồi?", now_ms())

    async with _write_lock(database_url):
        # Bounded: a writer that died on the error would leave the request hanging instead of answering.
        response = await asyncio.wait_for(post_webhook(client, body), timeout=10)
        assert response.status == 503
        assert_error_shape(await response.json(), "storage_unavailable")

    assert await InboundEvent.all().count() == 0
    response = await post_webhook(client, body)
    assert response.status == 200
    await eventually(lambda: Message.filter(external_id="mid.locked").exists())
    assert await Message.filter(external_id="mid.locked").count() == 1
    assert await InboundEvent.all().count() == 1


class _write_lock:
    """Another client holding the write lock: SQLite `BEGIN EXCLUSIVE`, Postgres `LOCK TABLE … EXCLUSIVE`."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url

    async def __aenter__(self) -> None:
        if TEST_DATABASE_URL:
            import asyncpg

            self.pg = await asyncpg.connect(self.url.replace("postgres://", "postgresql://", 1))
            self.tx = self.pg.transaction()
            await self.tx.start()
            await self.pg.execute("SET LOCAL lock_timeout = '5s'")  # fail, never hang, if the table is busy
            # EXCLUSIVE blocks writers and lets plain reads through, like SQLite's write lock.
            await self.pg.execute("LOCK TABLE inbound_events IN EXCLUSIVE MODE")
        else:
            self.sqlite = sqlite3.connect(self.url.removeprefix("sqlite://"), isolation_level=None)
            self.sqlite.execute("BEGIN EXCLUSIVE")

    async def __aexit__(self, *exc: object) -> None:
        if TEST_DATABASE_URL:
            await self.tx.rollback()
            await self.pg.close()
        else:
            self.sqlite.execute("ROLLBACK")
            self.sqlite.close()


# ---------------------------------------------------------------------------------------------- timestamps


async def test_message_time_is_the_platform_millisecond_timestamp(client, inbox):
    ts = 1_700_000_000_123
    await send_text(client, "PSID-1", "mid.time", "Tin nhắn lúc nửa đêm", ts_ms=ts)
    msg = await eventually(lambda: Message.get_or_none(external_id="mid.time"))
    expected = datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
    assert expected == datetime.fromtimestamp(ts / 1000, UTC)
    assert msg.created_at == expected
    assert msg.created_at.utcoffset().total_seconds() == 0

    admin = await make_user(client, "admin")
    conv = await Conversation.get()
    listed = await (await client.get(f"/api/conversations/{conv.id}/messages", headers=admin.headers)).json()
    assert datetime.fromisoformat(listed["items"][0]["created_at"].replace("Z", "+00:00")) == expected
    assert conv.last_incoming_at == expected
