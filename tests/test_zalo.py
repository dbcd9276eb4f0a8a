"""Zalo OA end to end against the local fake Zalo OpenAPI/OAuth server: signature (CHANNELS.md's test vector),
every event, string ids, delivery receipts, echoes, replies through the outbox with the 48-hour window and the
free-message quota, token refresh (ahead of expiry, single-flight, across processes) and a refused refresh."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from channels import zalo
from channels.base import SendError
from channels.events import InboundMessage
from channels.fakes_zalo import (
    FakeZaloAPI,
    follow,
    oa_echo,
    reacted,
    received,
    running_fake_zalo,
    seen,
    signed,
    submit_info,
    user_attachment,
    user_text,
)
from contacts.models import Contact, ContactIdentity
from inbox.config import Settings, load_settings
from inbox.keys import BUS
from inbox.models import (
    Conversation,
    ConversationEvent,
    DeadLetter,
    EarlyReceipt,
    InboundEvent,
    Inbox,
    Message,
    OutboxItem,
    ZaloToken,
)
from inbox.zalo_tokens import ZALO_TOKENS, ZaloTokens
from tests.conftest import FakeGraphAPI, Staff, eventually, published_since, quick_user

APP_ID = "360846524940903967"
OA_ID = "388613280878808645"
OA_SECRET = "test_oa_secret"
USER = "246845883529197922"  # > 2^53: one more and a float would round it
VECTOR_BODY = (
    '{"app_id":"360846524940903967","sender":{"id":"246845883529197922"},"user_id_by_app":"552177279717587730",'
    '"recipient":{"id":"388613280878808645"},"event_name":"user_send_text","message":{"text":"message",'
    '"msg_id":"96d3cdf3af150460909"},"timestamp":"154390853474"}'
)
VECTOR_MAC = "mac=a4f1c9b682aae449f96af01075585158f942c800c4fe370225ef11f15eb80906"


@pytest.fixture
async def fake_zalo() -> AsyncIterator[FakeZaloAPI]:
    async with running_fake_zalo(app_secret="zalo-app-secret") as fake:
        yield fake


@pytest.fixture
def settings(database_url: str, fake_graph: FakeGraphAPI, fake_zalo: FakeZaloAPI, tmp_path: Path) -> Settings:
    return load_settings(
        environ={
            "HOPTHU_DATABASE_URL": database_url,
            "HOPTHU_SECRET_KEY": "test-secret-key",
            "HOPTHU_FACEBOOK_GRAPH_URL": fake_graph.base_url,
            "HOPTHU_ZALO_OPENAPI_URL": fake_zalo.base_url,
            "HOPTHU_ZALO_OAUTH_URL": fake_zalo.base_url,
        },
        toml_path=tmp_path / "absent.toml",
        outbox_base_delay=0.05,
        outbox_max_attempts=4,
    )


async def make_zalo_inbox(oa_id: str = OA_ID, secret: str = OA_SECRET) -> Inbox:
    inbox = await Inbox.create(
        name="Shop Zalo", channel="zalo", external_id=oa_id,
        credentials={"app_id": APP_ID, "oa_secret": secret, "access_token": "zalo-access-0",
                     "refresh_token": "zalo-refresh-0", "app_secret": "zalo-app-secret"},
    )  # fmt: skip
    return inbox


@pytest.fixture
async def zinbox(client: TestClient) -> Inbox:
    return await make_zalo_inbox()


def ms(offset_s: float = 0) -> int:
    return int((time.time() + offset_s) * 1000)


async def post(client: TestClient, body: dict, secret: str = OA_SECRET) -> aiohttp.ClientResponse:
    raw, headers = signed(body, secret)
    return await client.post("/webhooks/zalo", data=raw, headers=headers)


async def deliver(client: TestClient, body: dict) -> None:
    response = await post(client, body)
    assert response.status == 200, await response.text()
    await eventually(_all_processed)


async def _all_processed() -> bool:
    return not await InboundEvent.filter(processed=False).exists()


# ---------------------------------------------------------------------------------------------- adapter


def test_signature_matches_the_test_vector() -> None:
    raw = VECTOR_BODY.encode()
    assert zalo.sign(APP_ID, raw, "154390853474", OA_SECRET) == VECTOR_MAC
    assert zalo.verify_signature(raw, VECTOR_MAC, APP_ID, "154390853474", OA_SECRET)
    assert not zalo.verify_signature(raw + b" ", VECTOR_MAC, APP_ID, "154390853474", OA_SECRET)
    assert not zalo.verify_signature(raw, VECTOR_MAC, APP_ID, "154390853475", OA_SECRET)
    assert not zalo.verify_signature(raw, "mac=ünicode", APP_ID, "154390853474", OA_SECRET)


def test_ids_and_timestamps_stay_strings_and_milliseconds() -> None:
    [event] = zalo.parse(json.loads(VECTOR_BODY))
    assert isinstance(event, InboundMessage)
    assert (event.account_id, event.contact_external_id, event.external_id) == (OA_ID, USER, "96d3cdf3af150460909")
    assert event.occurred_at == datetime.fromtimestamp(154390853.474, UTC)
    # An id sent as a JSON number is still exact.
    numeric = json.loads(VECTOR_BODY.replace('"246845883529197922"', "246845883529197923"))
    assert zalo.parse(numeric)[0].contact_external_id == "246845883529197923"


# ---------------------------------------------------------------------------------------------- webhook


async def test_vector_body_is_accepted_and_becomes_a_message(client: TestClient, zinbox: Inbox) -> None:
    headers = {"X-ZEvent-Signature": VECTOR_MAC, "Content-Type": "application/json"}
    response = await client.post("/webhooks/zalo", data=VECTOR_BODY.encode(), headers=headers)
    assert response.status == 200
    msg = await eventually(lambda: Message.get_or_none(external_id="96d3cdf3af150460909"))
    assert msg.text == "message" and msg.direction == "in"
    identity = await ContactIdentity.get(external_id=USER)
    assert identity.channel == "zalo" and identity.inbox_id == zinbox.id


@pytest.mark.parametrize("header", [None, "mac=" + "0" * 64, "sha256=abc"])
async def test_bad_or_missing_signature_is_401_and_nothing_stored(
    client: TestClient, zinbox: Inbox, header: str | None
) -> None:
    headers = {"Content-Type": "application/json"} | ({"X-ZEvent-Signature": header} if header else {})
    response = await client.post("/webhooks/zalo", data=VECTOR_BODY.encode(), headers=headers)
    assert response.status == 401
    assert await InboundEvent.all().count() == 0 and await DeadLetter.all().count() == 0


async def test_malformed_json_is_400(client: TestClient, zinbox: Inbox) -> None:
    response = await client.post("/webhooks/zalo", data=b"{not json", headers={"X-ZEvent-Signature": VECTOR_MAC})
    assert response.status == 400


async def test_redelivery_stores_one_message(client: TestClient, zinbox: Inbox) -> None:
    body = user_text(APP_ID, OA_ID, USER, "m1", "Shop ơi", ms())
    await deliver(client, body)
    await deliver(client, body)
    assert await Message.filter(external_id="m1").count() == 1
    assert (await Conversation.get()).unread_count == 1


@pytest.mark.parametrize(
    ("kind", "payload", "expected"),
    [
        ("image", {"thumbnail": "https://z/t.jpg", "url": "https://z/i.jpg"}, {"kind": "image", "url": "https://z/i.jpg"}),
        ("gif", {"url": "https://z/a.gif"}, {"kind": "gif", "url": "https://z/a.gif"}),
        ("sticker", {"id": "bd2", "url": "https://z/s.png"}, {"kind": "sticker", "url": "https://z/s.png"}),
        ("audio", {"url": "https://z/v.aac"}, {"kind": "audio", "url": "https://z/v.aac"}),
        ("video", {"url": "https://z/v.mp4", "thumbnail": "https://z/v.jpg"}, {"kind": "video", "url": "https://z/v.mp4"}),
        ("file", {"url": "https://z/f.pdf", "size": "2048", "name": "bao-gia.pdf", "checksum": "ab", "type": "pdf"},
         {"kind": "file", "url": "https://z/f.pdf", "name": "bao-gia.pdf"}),
        ("link", {"url": "https://shop.vn/ao", "description": "Áo thun"}, {"kind": "link", "url": "https://shop.vn/ao",
                                                                           "title": "Áo thun"}),
        ("location", {"coordinates": {"latitude": "10.7769", "longitude": "106.7009"}},
         {"kind": "location", "latitude": 10.7769, "longitude": 106.7009}),
    ],
)  # fmt: skip
async def test_every_user_message_kind_is_stored(
    client: TestClient, zinbox: Inbox, kind: str, payload: dict, expected: dict
) -> None:
    await deliver(client, user_attachment(APP_ID, OA_ID, USER, f"m-{kind}", kind, ms(), payload))
    msg = await Message.get(external_id=f"m-{kind}")
    assert msg.attachments == [expected]
    conv = await Conversation.get(id=msg.conversation_id)
    assert conv.last_message_preview == f"[{kind}]"


async def test_follow_creates_the_contact_and_unfollow_opens_nothing(client: TestClient, zinbox: Inbox) -> None:
    stranger = "111111111111111111"
    await deliver(client, follow(APP_ID, OA_ID, stranger, ms(), unfollow=True))
    assert await Conversation.filter().count() == 0
    await deliver(client, follow(APP_ID, OA_ID, USER, ms()))
    conv = await Conversation.get()
    events = await ConversationEvent.filter(conversation_id=conv.id, kind="referral").values_list("data", flat=True)
    assert events[0]["referral"]["type"] == "follow"
    await deliver(client, follow(APP_ID, OA_ID, USER, ms(1), unfollow=True))
    assert await ConversationEvent.filter(conversation_id=conv.id, kind="unfollowed").count() == 1


async def test_echo_of_an_oa_message_sent_elsewhere_is_outgoing(client: TestClient, zinbox: Inbox) -> None:
    await deliver(client, user_text(APP_ID, OA_ID, USER, "m1", "Có ship Hà Nội không?", ms(-5)))
    await deliver(client, oa_echo(APP_ID, OA_ID, USER, "oa1", "Dạ có ạ", ms()))
    echo = await Message.get(external_id="oa1")
    first = await Message.get(external_id="m1")
    assert echo.direction == "out" and echo.origin == "platform" and echo.conversation_id == first.conversation_id


async def _oa_replies(client: TestClient, zinbox: Inbox) -> tuple[Staff, Conversation, dict]:
    """A customer asks, an agent answers through hopthu: the agent, the conversation and the reply's JSON."""
    agent = await quick_user("agent", inboxes=[zinbox])
    await deliver(client, user_text(APP_ID, OA_ID, USER, "m1", "Giá sao shop", ms(-5)))
    conv = await Conversation.get()
    reply = await client.post(
        f"/api/conversations/{conv.id}/messages", json={"text": "Dạ 200k ạ"}, headers=agent.headers
    )
    return agent, conv, await reply.json()


async def test_received_and_seen_update_the_delivery_status(
    client: TestClient, zinbox: Inbox, fake_zalo: FakeZaloAPI
) -> None:
    _, _, sent = await _oa_replies(client, zinbox)
    assert sent["delivery_status"] == "sent"
    await deliver(client, received(APP_ID, OA_ID, USER, sent["external_id"], ms(1)))
    assert (await Message.get(id=sent["id"])).delivery_status == "delivered"
    await deliver(client, seen(APP_ID, OA_ID, USER, [sent["external_id"]], ms(2)))
    assert (await Message.get(id=sent["id"])).delivery_status == "read"


async def test_a_customers_reaction_shows_on_the_oa_reply(
    client: TestClient, zinbox: Inbox, fake_zalo: FakeZaloAPI
) -> None:
    agent, conv, sent = await _oa_replies(client, zinbox)
    await deliver(client, reacted(APP_ID, OA_ID, USER, sent["external_id"], "/-heart", ms(1)))
    listed = await client.get(f"/api/conversations/{conv.id}/messages", headers=agent.headers)
    [shown] = [m for m in (await listed.json())["items"] if m["id"] == sent["id"]]
    assert shown["extra"]["reaction"]["emoji"] == "❤️"
    await deliver(client, reacted(APP_ID, OA_ID, USER, sent["external_id"], "/-ok", ms(2)))  # a code not in our table
    assert (await Message.get(id=sent["id"])).extra["reaction"]["emoji"] == "/-ok"
    assert await DeadLetter.all().count() == 0


async def test_unknown_event_goes_to_dead_letters_with_200(client: TestClient, zinbox: Inbox) -> None:
    body = {"app_id": APP_ID, "sender": {"id": USER}, "recipient": {"id": OA_ID}, "event_name": "user_future_event",
            "message": {"msg_id": "m1"}, "timestamp": str(ms())}  # fmt: skip
    response = await post(client, body)
    assert response.status == 200
    [letter] = await DeadLetter.all()
    assert letter.channel == "zalo" and letter.inbox_id == zinbox.id and "user_future_event" in letter.reason


async def test_shared_info_gives_the_contact_a_verified_phone(client: TestClient, zinbox: Inbox) -> None:
    await deliver(client, submit_info(APP_ID, OA_ID, USER, ms(), phone="84912345678", address="12 Lê Lợi, Q1"))
    contact = await Contact.get()
    assert contact.phone == "+84912345678"
    [event] = await ConversationEvent.filter(kind="phone_shared").values_list("data", flat=True)
    assert event["given_by_customer"] is True and event["applied"] is True
    # A second shared number does not overwrite the one the contact has.
    await deliver(client, submit_info(APP_ID, OA_ID, USER, ms(1), phone="0987 654 321"))
    assert (await Contact.get()).phone == "+84912345678"


async def test_profile_is_fetched_off_the_ack_path_with_shared_phone(
    client: TestClient, zinbox: Inbox, fake_zalo: FakeZaloAPI
) -> None:
    fake_zalo.profiles[USER] = {"display_name": "Lê Thị Hoa", "shared_info": {"phone": "0912345678"}}
    await deliver(client, user_text(APP_ID, OA_ID, USER, "m1", "Chào shop", ms()))
    contact = await eventually(lambda: Contact.filter(name="Lê Thị Hoa").first())
    assert contact.phone == "+84912345678"
    detail = next(r for r in fake_zalo.requests if r.path == "/v3.0/oa/user/detail")
    assert json.loads(detail.query["data"]) == {"user_id": USER} and detail.headers["access_token"] == "zalo-access-0"


async def test_a_nul_character_in_the_user_detail_does_not_keep_the_profile_from_loading(
    client: TestClient, zinbox: Inbox, fake_zalo: FakeZaloAPI
) -> None:
    """PostgreSQL's text cannot hold U+0000: a display name carrying one failed to store, for ever. The name shows
    with U+FFFD in its place; the avatar and the shared phone are stored with it."""
    avatar = "https://zalo.invalid/avatar\x00.jpg"
    fake_zalo.profiles[USER] = {"display_name": "Lê Thị\x00 Hoa", "avatar": avatar, "avatars": {"240": avatar},
                                "shared_info": {"phone": "0912345678", "address": "12\x00 Lê Lợi"}}  # fmt: skip
    await deliver(client, user_text(APP_ID, OA_ID, USER, "m1", "Chào shop", ms()))
    contact = await eventually(lambda: Contact.filter(name="Lê Thị\ufffd Hoa").first())
    assert contact.picture_url == "https://zalo.invalid/avatar\ufffd.jpg"
    assert contact.phone == "+84912345678"


# ---------------------------------------------------------------------------------------------- replies


async def _conversation_with_incoming(client: TestClient, at_ms: int) -> Conversation:
    await deliver(client, user_text(APP_ID, OA_ID, USER, f"m{at_ms}", "Shop ơi", at_ms))
    return await Conversation.get()


async def test_reply_goes_through_the_cs_message_api(client: TestClient, zinbox: Inbox, fake_zalo: FakeZaloAPI) -> None:
    agent = await quick_user("agent", inboxes=[zinbox])
    conv = await _conversation_with_incoming(client, ms(-60))
    response = await client.post(f"/api/conversations/{conv.id}/messages", json={"text": "Dạ shop nghe ạ"},
                                 headers=agent.headers)  # fmt: skip
    body = await response.json()
    assert response.status == 201 and body["delivery_status"] == "sent" and body["external_id"].startswith("zmsg")
    [request] = [r for r in fake_zalo.requests if r.path == "/v3.0/oa/message/cs"]
    assert request.json == {"recipient": {"user_id": USER}, "message": {"text": "Dạ shop nghe ạ"}}
    assert request.headers["access_token"] == "zalo-access-0"


async def test_outside_the_48_hour_window_is_refused_before_sending(
    client: TestClient, zinbox: Inbox, fake_zalo: FakeZaloAPI
) -> None:
    agent = await quick_user("agent", inboxes=[zinbox])
    conv = await _conversation_with_incoming(client, ms(-49 * 3600))
    response = await client.post(f"/api/conversations/{conv.id}/messages", json={"text": "Chào bạn"},
                                 headers=agent.headers)  # fmt: skip
    body = await response.json()
    assert body["delivery_status"] == "failed" and "48" in body["failure_reason"]
    assert fake_zalo.sent_messages() == []


async def test_the_free_quota_runs_out_with_a_readable_reason(
    client: TestClient, zinbox: Inbox, fake_zalo: FakeZaloAPI
) -> None:
    agent = await quick_user("agent", inboxes=[zinbox])
    conv = await _conversation_with_incoming(client, ms(-60))
    for i in range(8):
        ok = await client.post(
            f"/api/conversations/{conv.id}/messages", json={"text": f"tin {i}"}, headers=agent.headers
        )
        assert (await ok.json())["delivery_status"] == "sent"
    refused = await client.post(f"/api/conversations/{conv.id}/messages", json={"text": "tin 9"}, headers=agent.headers)
    body = await refused.json()
    assert body["delivery_status"] == "failed" and "8 tin miễn phí" in body["failure_reason"]
    assert len(fake_zalo.sent_messages()) == 8
    # The customer writes again: the window and the quota start over.
    await deliver(client, user_text(APP_ID, OA_ID, USER, "again", "Còn không shop", ms()))
    again = await client.post(f"/api/conversations/{conv.id}/messages", json={"text": "Dạ còn"}, headers=agent.headers)
    assert (await again.json())["delivery_status"] == "sent"


async def test_an_expired_access_token_is_refreshed_once_and_the_send_retried(
    client: TestClient, zinbox: Inbox, fake_zalo: FakeZaloAPI
) -> None:
    agent = await quick_user("agent", inboxes=[zinbox])
    conv = await _conversation_with_incoming(client, ms(-60))
    fake_zalo.expire_access_token()
    response = await client.post(f"/api/conversations/{conv.id}/messages", json={"text": "Dạ"}, headers=agent.headers)
    assert (await response.json())["delivery_status"] == "sent"
    assert len(fake_zalo.refresh_calls) == 1
    row = await ZaloToken.get(inbox_id=zinbox.id)
    assert (row.access_token, row.refresh_token) == ("zalo-access-1", "zalo-refresh-1")


async def test_a_nul_character_in_zalos_refusal_still_fails_the_reply_with_a_readable_reason(
    client: TestClient, zinbox: Inbox, fake_zalo: FakeZaloAPI
) -> None:
    """PostgreSQL's text cannot hold U+0000: the refusal is shown in Zalo's words, U+FFFD in place of the NUL."""
    agent = await quick_user("agent", inboxes=[zinbox])
    conv = await _conversation_with_incoming(client, ms(-60))
    fake_zalo.fail_next(1, error=-201, message="Parameters\x00 are invalid")
    reply = await client.post(f"/api/conversations/{conv.id}/messages", json={"text": "Dạ"}, headers=agent.headers)
    body = await reply.json()
    assert body["delivery_status"] == "failed" and "Parameters\ufffd are invalid" in body["failure_reason"]


async def _reply_in_background(client: TestClient, agent: Staff, conv: Conversation, text: str) -> asyncio.Task:
    async def post_reply() -> dict:
        response = await client.post(f"/api/conversations/{conv.id}/messages", json={"text": text},
                                     headers=agent.headers)  # fmt: skip
        assert response.status == 201, await response.text()
        return await response.json()

    return asyncio.ensure_future(post_reply())


async def _sends_seen(fake: FakeZaloAPI, n: int) -> bool:
    return len(fake.sent_messages()) >= n


async def _outbox_done(message_id: int) -> bool:
    return (await OutboxItem.get(message_id=message_id)).state != "pending"


async def _outgoing(conv: Conversation, n: int) -> list[Message] | None:
    messages = await Message.filter(conversation_id=conv.id, direction="out").order_by("id")
    return messages if len(messages) == n else None


def _zalo_id(n: int) -> str:
    return f"zmsg{n:016d}"  # the n-th message id the fake hands out


async def test_echo_arriving_before_the_send_answers_is_the_reply_not_a_second_message(
    client: TestClient, zinbox: Inbox, fake_zalo: FakeZaloAPI
) -> None:
    """Zalo's echo carries nothing of hopthu's; when it comes before the send's answer it still confirms the
    agent's reply: one message, sent, with Zalo's id, and the late answer changes nothing."""
    agent = await quick_user("agent", inboxes=[zinbox])
    conv = await _conversation_with_incoming(client, ms(-60))
    fake_zalo.hold = asyncio.Event()
    sending = await _reply_in_background(client, agent, conv, "Dạ shop gửi mẫu ạ")
    await eventually(lambda: _sends_seen(fake_zalo, 1))
    reply = await Message.get(conversation_id=conv.id, direction="out")

    await deliver(client, oa_echo(APP_ID, OA_ID, USER, _zalo_id(1), "Dạ shop gửi mẫu ạ", ms()))
    [shown] = await Message.filter(conversation_id=conv.id, direction="out")
    assert (shown.id, shown.delivery_status, shown.external_id) == (reply.id, "sent", _zalo_id(1))

    fake_zalo.hold.set()  # only now does the send answer, with the same id
    # The API answers after its 3 s wait for the held send, with the message as it was then: "sent" once the echo
    # was applied, "pending" on a machine slow enough that it was not yet. What is stored is checked below.
    answered = await sending
    assert (answered["id"], answered["delivery_status"] in ("pending", "sent")) == (reply.id, True)
    await eventually(lambda: _outbox_done(reply.id))
    [shown] = await Message.filter(conversation_id=conv.id, direction="out")
    assert (shown.id, shown.origin, shown.delivery_status, shown.external_id) == (
        reply.id, "hopthu", "sent", _zalo_id(1),
    )  # fmt: skip
    assert len(fake_zalo.sent_messages()) == 1


async def test_echoes_of_two_identical_replies_confirm_each_its_own_oldest_first(
    client: TestClient, zinbox: Inbox, fake_zalo: FakeZaloAPI
) -> None:
    agent = await quick_user("agent", inboxes=[zinbox])
    conv = await _conversation_with_incoming(client, ms(-60))
    first_hold = fake_zalo.hold = asyncio.Event()
    first = await _reply_in_background(client, agent, conv, "Dạ vâng")
    await eventually(lambda: _sends_seen(fake_zalo, 1))
    second = await _reply_in_background(client, agent, conv, "Dạ vâng")  # waits behind the first in the outbox
    older, newer = await eventually(lambda: _outgoing(conv, 2))
    await deliver(client, oa_echo(APP_ID, OA_ID, USER, _zalo_id(1), "Dạ vâng", ms()))
    assert (await Message.get(id=older.id)).external_id == _zalo_id(1)
    assert (await Message.get(id=newer.id)).delivery_status == "pending"  # never sent yet: not its echo

    fake_zalo.hold = asyncio.Event()  # the second send is held in its turn
    first_hold.set()
    await eventually(lambda: _sends_seen(fake_zalo, 2))
    await deliver(client, oa_echo(APP_ID, OA_ID, USER, _zalo_id(2), "Dạ vâng", ms()))
    fake_zalo.hold.set()
    await asyncio.gather(first, second)
    await eventually(lambda: _outbox_done(newer.id))
    shown = await Message.filter(conversation_id=conv.id, direction="out").order_by("id")
    assert [(m.id, m.delivery_status, m.external_id) for m in shown] == [
        (older.id, "sent", _zalo_id(1)), (newer.id, "sent", _zalo_id(2)),
    ]  # fmt: skip
    assert len(fake_zalo.sent_messages()) == 2


async def test_the_same_text_sent_from_zalo_after_a_refused_reply_is_its_own_message(
    client: TestClient, zinbox: Inbox, fake_zalo: FakeZaloAPI
) -> None:
    """A refused reply never went out: the staff typing the same words in Zalo's own tool does not turn it into
    a sent one (only replies still in the outbox are matched by text)."""
    agent = await quick_user("agent", inboxes=[zinbox])
    conv = await _conversation_with_incoming(client, ms(-49 * 3600))
    refused = await (await _reply_in_background(client, agent, conv, "Dạ shop xin lỗi ạ"))
    assert refused["delivery_status"] == "failed"
    await deliver(client, oa_echo(APP_ID, OA_ID, USER, "oa-typed", "Dạ shop xin lỗi ạ", ms()))
    shown = await Message.filter(conversation_id=conv.id, direction="out").order_by("id")
    assert [(m.origin, m.delivery_status, m.external_id) for m in shown] == [
        ("hopthu", "failed", None), ("platform", "sent", "oa-typed"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("receipts", "final"), [(("received",), "delivered"), (("received", "seen"), "read")], ids=["received", "seen"]
)
async def test_a_receipt_before_the_send_answers_is_not_lost(
    client: TestClient, zinbox: Inbox, fake_zalo: FakeZaloAPI, receipts: tuple[str, ...], final: str
) -> None:
    """Zalo reports "received"/"seen" for the id its send answers with; when that report comes first (the reply
    still pending, without the id), the reply still ends up delivered/read, for the API and the live frame."""
    agent = await quick_user("agent", inboxes=[zinbox])
    conv = await _conversation_with_incoming(client, ms(-60))
    bus = client.app[BUS]
    fake_zalo.hold = asyncio.Event()
    sending = await _reply_in_background(client, agent, conv, "Dạ shop gửi ạ")
    await eventually(lambda: _sends_seen(fake_zalo, 1))
    reply = await Message.get(conversation_id=conv.id, direction="out")
    since = bus.last_seq
    for n, kind in enumerate(receipts):
        body = received(APP_ID, OA_ID, USER, _zalo_id(1), ms(n)) if kind == "received" else (
            seen(APP_ID, OA_ID, USER, [_zalo_id(1)], ms(n))
        )  # fmt: skip
        await deliver(client, body)
    assert (await Message.get(id=reply.id)).delivery_status == "pending"  # not sent yet as far as we know

    fake_zalo.hold.set()
    await sending
    await eventually(lambda: _outbox_done(reply.id))
    listed = await client.get(f"/api/conversations/{conv.id}/messages", headers=agent.headers)
    [shown] = [m for m in (await listed.json())["items"] if m["id"] == reply.id]
    assert (shown["delivery_status"], shown["external_id"]) == (final, _zalo_id(1))

    async def last_frame() -> dict | None:
        frames = [
            e.data for e in published_since(bus, since) if e.type == "message.updated" and e.data["id"] == reply.id
        ]
        return frames[-1] if frames else None

    assert (await eventually(last_frame))["delivery_status"] == final


async def test_an_early_receipt_older_than_an_hour_is_not_applied(
    client: TestClient, zinbox: Inbox, fake_zalo: FakeZaloAPI
) -> None:
    agent = await quick_user("agent", inboxes=[zinbox])
    conv = await _conversation_with_incoming(client, ms(-60))
    fake_zalo.hold = asyncio.Event()
    sending = await _reply_in_background(client, agent, conv, "Dạ shop gửi ạ")
    await eventually(lambda: _sends_seen(fake_zalo, 1))
    # Seen two hours ago (before the reply was written, so its time covers nothing of it): only its id could.
    await deliver(client, seen(APP_ID, OA_ID, USER, [_zalo_id(1)], ms(-2 * 3600)))
    await EarlyReceipt.all().update(received_at=datetime.now(UTC) - timedelta(hours=2))
    fake_zalo.hold.set()
    reply = await sending
    await eventually(lambda: _outbox_done(reply["id"]))
    assert (await Message.get(id=reply["id"])).delivery_status == "sent"


# ---------------------------------------------------------------------------------------------- tokens


async def _expiring(inbox: Inbox) -> None:
    pair = {"access_token": "zalo-access-0", "refresh_token": "zalo-refresh-0"}
    await ZaloToken.update_or_create(
        defaults={**pair, "expires_at": datetime.now(UTC) + timedelta(minutes=5)}, inbox_id=inbox.id
    )


async def test_concurrent_requests_make_exactly_one_refresh(client: TestClient, zinbox: Inbox, fake_zalo: FakeZaloAPI):
    await _expiring(zinbox)
    fake_zalo.refresh_delay = 0.2  # every caller arrives while the refresh is in flight
    async with aiohttp.ClientSession() as session:
        tokens = ZaloTokens(zalo.ZaloClient(fake_zalo.base_url, fake_zalo.base_url, session))
        got = await asyncio.gather(*(tokens.access_token(zinbox) for _ in range(20)))
    assert set(got) == {"zalo-access-1"}
    assert len(fake_zalo.refresh_calls) == 1
    assert fake_zalo.refresh_calls[0] == {"refresh_token": "zalo-refresh-0", "app_id": APP_ID,
                                          "grant_type": "refresh_token"}  # fmt: skip
    row = await ZaloToken.get(inbox_id=zinbox.id)
    assert row.refresh_token == "zalo-refresh-1" and row.expires_at > datetime.now(UTC) + timedelta(hours=24)


async def test_two_processes_refreshing_at_once_spend_the_refresh_token_once(
    client: TestClient, zinbox: Inbox, fake_zalo: FakeZaloAPI
) -> None:
    """Two `ZaloTokens` (as in two server processes: separate locks) share only the database."""
    await _expiring(zinbox)
    fake_zalo.refresh_delay = 0.2
    async with aiohttp.ClientSession() as session:
        first = ZaloTokens(zalo.ZaloClient(fake_zalo.base_url, fake_zalo.base_url, session))
        second = ZaloTokens(zalo.ZaloClient(fake_zalo.base_url, fake_zalo.base_url, session))
        got = await asyncio.gather(*(t.access_token(zinbox) for t in (first, second) for _ in range(5)))
    assert set(got) == {"zalo-access-1"}
    assert len(fake_zalo.refresh_calls) == 1
    assert (await Inbox.get(id=zinbox.id)).state == "active"


async def test_a_refused_refresh_puts_the_inbox_into_needs_reauthorisation(
    client: TestClient, zinbox: Inbox, fake_zalo: FakeZaloAPI
) -> None:
    admin = await quick_user("admin")
    agent = await quick_user("agent", inboxes=[zinbox])
    conv = await _conversation_with_incoming(client, ms(-60))
    await _expiring(zinbox)
    fake_zalo.refuse_refresh = True
    response = await client.post(f"/api/conversations/{conv.id}/messages", json={"text": "Dạ"}, headers=agent.headers)
    body = await response.json()
    assert body["delivery_status"] == "failed" and "cấp quyền lại" in body["failure_reason"]
    listed = await (await client.get("/api/inboxes", headers=admin.headers)).json()
    [shown] = [i for i in listed["items"] if i["id"] == zinbox.id]
    assert shown["state"] == "needs_reauth" and "refresh" in shown["state_reason"]
    assert len(fake_zalo.refresh_calls) == 1  # no retry storm with a dead token
    # The admin stores a new pair from Zalo's consent screen: active again, replies flow.
    fake_zalo.refuse_refresh = False
    fake_zalo.access_token = "fresh-access"
    pair = {"access_token": "fresh-access", "refresh_token": "fresh-refresh", "expires_in": 90000}
    put = await client.put(f"/api/inboxes/{zinbox.id}/zalo-tokens", headers=admin.headers, json=pair)
    assert put.status == 200 and (await put.json())["state"] == "active"
    again = await client.post(f"/api/conversations/{conv.id}/messages", json={"text": "Dạ ạ"}, headers=agent.headers)
    assert (await again.json())["delivery_status"] == "sent"


async def test_a_nul_character_in_zalos_token_refresh_answers_is_stored_not_a_failed_write(
    client: TestClient, zinbox: Inbox, fake_zalo: FakeZaloAPI
) -> None:
    """PostgreSQL's text cannot hold U+0000. A new pair carrying one is stored (U+FFFD in its place) once the
    refresh token is spent, rather than the refresh failing after Zalo took it; a refusal carrying one is shown to
    the admin as the reason the OA needs authorising again."""
    admin = await quick_user("admin")
    await _expiring(zinbox)
    pair = {"access_token": "zalo-access-1\x00", "refresh_token": "zalo-refresh-1\x00", "expires_in": "90000"}
    fake_zalo.fail_next_refresh(1, status=200, body=pair)
    assert await client.app[ZALO_TOKENS].access_token(zinbox) == "zalo-access-1\ufffd"
    row = await ZaloToken.get(inbox_id=zinbox.id)
    assert (row.refresh_token, row.refreshed_at is not None) == ("zalo-refresh-1\ufffd", True)

    await ZaloToken.filter(inbox_id=zinbox.id).update(expires_at=datetime.now(UTC) + timedelta(minutes=5))
    refusal = {"error": -14014, "error_description": "refresh_token\x00 is invalid or already used"}
    fake_zalo.fail_next_refresh(1, status=200, body=refusal)
    with pytest.raises(SendError, match="cấp quyền lại"):
        await client.app[ZALO_TOKENS].access_token(zinbox)
    state = await (await client.get(f"/api/inboxes/{zinbox.id}/zalo-tokens", headers=admin.headers)).json()
    assert state["state"] == "needs_reauth"
    assert "refresh_token\ufffd is invalid or already used" in state["state_reason"]


NOT_A_REFUSAL = {  # answers that do not judge the refresh token: tried again later with the same one
    "rate limited (HTTP 429)": (429, ""),
    "Zalo's rate-limit code": (200, {"error": -32, "message": "Exceed rate limit"}),
    "a proxy's timeout (HTTP 408)": (408, "<html>408 Request Timeout</html>"),
    "a gateway's error page": (502, "<html>502 Bad Gateway</html>"),
    "an answer that is not Zalo's": (200, "<html>Bảo trì hệ thống</html>"),
}


@pytest.mark.parametrize("answer", NOT_A_REFUSAL.values(), ids=NOT_A_REFUSAL.keys())
async def test_a_refresh_not_answered_leaves_the_oa_active_and_the_reply_goes_out(
    client: TestClient, zinbox: Inbox, fake_zalo: FakeZaloAPI, answer: tuple[int, dict | str]
) -> None:
    """Refreshing ahead of expiry meets a rate limit or an outage: the current token still works, so the reply goes
    out with it; the OA stays active, and the unspent refresh token works at the next try."""
    agent = await quick_user("agent", inboxes=[zinbox])
    conv = await _conversation_with_incoming(client, ms(-60))
    await _expiring(zinbox)
    status, body = answer
    fake_zalo.fail_next_refresh(1, status=status, body=body)
    response = await client.post(f"/api/conversations/{conv.id}/messages", json={"text": "Dạ"}, headers=agent.headers)
    sent = await response.json()
    assert sent["delivery_status"] == "sent", sent["failure_reason"]
    assert fake_zalo.sent_messages()[-1] is not None
    assert (await Inbox.get(id=zinbox.id)).state == "active"
    assert await client.app[ZALO_TOKENS].access_token(zinbox) == "zalo-access-1"  # the same refresh token, spent now
    assert [call["refresh_token"] for call in fake_zalo.refresh_calls] == ["zalo-refresh-0", "zalo-refresh-0"]


async def test_a_rate_limited_refresh_of_an_expired_token_is_retried_not_a_reauthorisation(
    client: TestClient, zinbox: Inbox, fake_zalo: FakeZaloAPI
) -> None:
    """No usable token left and the refresh is rate limited: the reply waits and goes out on a later try."""
    agent = await quick_user("agent", inboxes=[zinbox])
    conv = await _conversation_with_incoming(client, ms(-60))
    await ZaloToken.filter(inbox_id=zinbox.id).update(expires_at=datetime.now(UTC) - timedelta(minutes=1))
    fake_zalo.expire_access_token()
    fake_zalo.fail_next_refresh(2, status=429)
    response = await client.post(f"/api/conversations/{conv.id}/messages", json={"text": "Dạ"}, headers=agent.headers)
    first = await response.json()
    assert first["delivery_status"] in ("pending", "sent"), first["failure_reason"]
    await eventually(lambda: _outbox_done(first["id"]))
    msg = await Message.get(id=first["id"])
    assert msg.delivery_status == "sent", msg.failure_reason
    assert (await Inbox.get(id=zinbox.id)).state == "active"
    assert len(fake_zalo.refresh_calls) == 3


async def test_zalos_refusal_of_the_refresh_token_is_told_apart_from_a_failure_to_answer(
    fake_zalo: FakeZaloAPI,
) -> None:
    refusal = {"error": -14014, "error_name": "Invalid parameter", "error_reason": "Invalid refresh token",
               "error_description": "refresh_token is invalid or already used"}  # fmt: skip
    async with aiohttp.ClientSession() as session:
        client = zalo.ZaloClient(fake_zalo.base_url, fake_zalo.base_url, session)
        for status in (200, 400):
            fake_zalo.fail_next_refresh(1, status=status, body=refusal)
            with pytest.raises(zalo.TokenRefused, match="already used"):
                await client.refresh(APP_ID, "zalo-app-secret", "zalo-refresh-0")
        for status, body in NOT_A_REFUSAL.values():
            fake_zalo.fail_next_refresh(1, status=status, body=body)
            with pytest.raises(SendError) as failed:
                await client.refresh(APP_ID, "zalo-app-secret", "zalo-refresh-0")
            assert failed.value.retryable, (status, body)
        pair = await client.refresh(APP_ID, "zalo-app-secret", "zalo-refresh-0")
    assert pair.refresh_token == "zalo-refresh-1"


async def test_a_shared_phone_is_found_in_its_local_form(client: TestClient, zinbox: Inbox) -> None:
    """Agents type Vietnamese numbers as 0912…; a phone the customer shared is stored +84912…, and search finds
    both forms (as it does for a phone typed into the profile)."""
    agent = await quick_user("agent", inboxes=[zinbox])
    await deliver(client, submit_info(APP_ID, OA_ID, USER, ms(), phone="84912345678"))
    contact = await Contact.get()
    for q in ("0912345678", "+84912345678"):
        found = await client.get("/api/contacts", params={"q": q}, headers=agent.headers)
        assert [c["id"] for c in (await found.json())["items"]] == [contact.id], q


async def test_invalid_parameters_are_not_reported_as_the_interaction_window(
    client: TestClient, zinbox: Inbox, fake_zalo: FakeZaloAPI
) -> None:
    agent = await quick_user("agent", inboxes=[zinbox])
    conv = await _conversation_with_incoming(client, ms(-60))
    fake_zalo.fail_next(1, error=-201, message="Parameters are invalid")
    reply = await client.post(f"/api/conversations/{conv.id}/messages", json={"text": "Dạ"}, headers=agent.headers)
    body = await reply.json()
    assert body["delivery_status"] == "failed"
    assert "Parameters are invalid" in body["failure_reason"] and "interaction window" not in body["failure_reason"]


async def test_replies_sent_together_never_exceed_the_free_quota(
    client: TestClient, zinbox: Inbox, fake_zalo: FakeZaloAPI
) -> None:
    """Two agents (or an agent and the bot) answer at once: the outbox sends a conversation's replies one after
    another, so the eight free replies are counted as they go and the ninth is refused, not sent."""
    agent = await quick_user("agent", inboxes=[zinbox])
    conv = await _conversation_with_incoming(client, ms(-60))
    fake_zalo.delay = 0.2

    async def reply(i: int) -> dict:
        response = await client.post(f"/api/conversations/{conv.id}/messages", json={"text": f"tin {i}"},
                                     headers=agent.headers)  # fmt: skip
        return await response.json()

    await asyncio.gather(*(reply(i) for i in range(10)))

    async def settled() -> bool:
        return not await Message.filter(conversation_id=conv.id, direction="out", delivery_status="pending").exists()

    await eventually(settled, timeout=20)
    assert len(fake_zalo.sent_messages()) == 8
    assert await Message.filter(conversation_id=conv.id, direction="out", delivery_status="failed").count() == 2
