"""Telegram through aiogram, against a local fake Bot API: every update kind, the secret token, replies,
"bot was blocked by the user" and flood control's `retry_after`."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from channels import telegram
from channels.events import InboundMessage, MessageEdit, ParseError, Referral
from channels.fakes_telegram import FakeBotAPI, Updates, running_fake_bot_api
from contacts.models import Contact, ContactIdentity
from inbox.config import Settings
from inbox.keys import BUS, OUTBOX
from inbox.models import Conversation, ConversationEvent, DeadLetter, InboundEvent, Inbox, Message, OutboxItem
from inbox.profiles import ProfileFetcher
from inbox.senders_telegram import TelegramSender
from inbox.webhooks_telegram import TELEGRAM
from tests.conftest import eventually, quick_user

BOT_TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
BOT_ID = "7012345678"
SECRET = "bi-mat-cua-shop_123"
HEADERS = {telegram.SECRET_HEADER: SECRET}


@pytest.fixture
async def fake_bot_api() -> AsyncIterator[FakeBotAPI]:
    async with running_fake_bot_api() as fake:
        fake.add_bot(BOT_TOKEN)
        yield fake


@pytest.fixture
def settings(settings: Settings, fake_bot_api: FakeBotAPI) -> Settings:
    return dataclasses.replace(settings, telegram_api_url=fake_bot_api.base_url, profile_fetch=False)


@pytest.fixture
async def bot_inbox(client: TestClient) -> Inbox:
    return await Inbox.create(
        name="Shop Mai Anh — Telegram",
        channel="telegram",
        external_id=BOT_ID,
        credentials={"bot_token": BOT_TOKEN, "secret_token": SECRET, "username": "shop_mai_anh_bot"},
    )


async def post_update(client: TestClient, inbox: Inbox, update: Any, headers: dict[str, str] | None = None) -> Any:
    body = update if isinstance(update, bytes) else json.dumps(update).encode()
    return await client.post(
        f"/webhooks/telegram/{inbox.id}", data=body, headers=HEADERS if headers is None else headers
    )


async def messages_of(chat_id: int) -> list[Message]:
    return await Message.filter(conversation__identity__external_id=str(chat_id)).order_by("id")


# ---------------------------------------------------------------------------------------------- parsing


def test_parse_every_private_message_kind() -> None:
    u = Updates()
    file_url = "/files/{}".format

    def one(update: dict) -> Any:
        [event] = telegram.parse(update, BOT_ID, file_url)
        return event

    text = one(u.text("Chào shop, áo này còn size M không ạ?"))
    assert isinstance(text, InboundMessage)
    assert (text.channel, text.account_id, text.contact_external_id) == ("telegram", BOT_ID, str(u.chat_id))
    assert text.external_id == f"{u.chat_id}:1" and text.contact_name == "Thu Hà Lê"
    assert text.occurred_at.tzinfo is not None and abs(text.occurred_at - datetime.now(UTC)) < timedelta(minutes=1)

    photo = one(u.photo(caption="mẫu này nè shop"))
    assert photo.text == "mẫu này nè shop"
    assert [(a.kind, a.url) for a in photo.attachments] == [("image", "/files/AgACAgIAAxkBAAMElarge")]
    assert [(a.kind, a.name) for a in one(u.document()).attachments] == [("file", "don-hang.pdf")]
    assert [a.kind for a in one(u.voice()).attachments] == ["audio"]
    assert [a.kind for a in one(u.video()).attachments] == ["video"]
    sticker = one(u.sticker()).attachments[0]
    assert (sticker.kind, sticker.title) == ("sticker", "👍")
    place = one(u.location()).attachments[0]
    assert (place.kind, place.latitude, place.longitude) == ("location", 16.0544, 108.2022)

    own = one(u.contact("84912345678"))
    assert own.shared_phone == "84912345678" and own.attachments[0].kind == "contact"
    assert one(u.contact("84987654321", own=False)).shared_phone is None  # someone else's card

    original = u.text("mình lấy size M")
    edit = one(u.edited(original, "à nhầm, size L nha"))
    assert isinstance(edit, MessageEdit)
    assert edit.external_id == one(original).external_id and edit.text == "à nhầm, size L nha"


def test_groups_channels_and_other_updates_are_ignored() -> None:
    u = Updates()
    assert telegram.parse(u.in_group("ai bán áo không"), BOT_ID) == []
    assert telegram.parse(u.channel_post("Khuyến mãi 50%"), BOT_ID) == []
    assert (
        telegram.parse({"update_id": 1, "callback_query": {"id": "1", "from": u.user, "chat_instance": "x"}}, BOT_ID)
        == []
    )
    for bad in ({"message": {}}, {"update_id": 1, "message": {"message_id": "x"}}, ["update_id"]):
        with pytest.raises(ParseError):
            telegram.parse(bad, BOT_ID)


def test_secret_compare() -> None:
    assert telegram.verify_secret(SECRET, SECRET)
    assert not telegram.verify_secret(None, SECRET)
    assert not telegram.verify_secret("", "")
    assert not telegram.verify_secret(SECRET + "x", SECRET)


# ---------------------------------------------------------------------------------------------- webhook


async def test_wrong_or_missing_secret_is_401_and_stores_nothing(client: TestClient, bot_inbox: Inbox) -> None:
    update = Updates().text("xin chào")
    for headers in ({}, {telegram.SECRET_HEADER: "doan-bua"}):
        response = await post_update(client, bot_inbox, update, headers)
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "invalid_secret_token"
    assert (await client.post("/webhooks/telegram/999999", json=update, headers=HEADERS)).status == 401
    assert (await client.post("/webhooks/telegram/abc", json=update, headers=HEADERS)).status == 401
    assert await InboundEvent.all().count() == 0


async def test_bad_bodies(client: TestClient, bot_inbox: Inbox) -> None:
    assert (await post_update(client, bot_inbox, b"{not json")).status == 400
    assert (await post_update(client, bot_inbox, b"x" * (1024 * 1024 + 1))).status == 413
    weird = {"update_id": 5, "message": {"message_id": "không phải số", "chat": {}, "date": "hôm qua"}}
    assert (await post_update(client, bot_inbox, weird)).status == 200  # kept, not lost
    assert await DeadLetter.filter(channel="telegram").count() == 1


async def test_every_kind_lands_in_one_conversation(client: TestClient, bot_inbox: Inbox) -> None:
    u = Updates()
    first = u.text("Chào shop, váy hoa nhí còn không ạ?")
    updates = [first, u.photo("mẫu này"), u.document(), u.voice(), u.video(), u.sticker(), u.location(),
               u.contact("0912 345 678")]  # fmt: skip
    for update in updates:
        assert (await post_update(client, bot_inbox, update)).status == 200
    assert (await post_update(client, bot_inbox, first)).status == 200  # redelivered: no duplicate
    assert (await post_update(client, bot_inbox, u.in_group("ai bán áo"))).status == 200
    assert (await post_update(client, bot_inbox, u.channel_post("sale"))).status == 200

    async def all_stored() -> list[Message]:
        rows = await messages_of(u.chat_id)
        return rows if len(rows) == len(updates) else []

    stored = await all_stored() or await eventually(all_stored)
    kinds = [m.attachments[0]["kind"] if m.attachments else "text" for m in stored]
    assert kinds == ["text", "image", "file", "audio", "video", "sticker", "location", "contact"]
    assert await Conversation.filter(inbox_id=bot_inbox.id).count() == 1
    conv = await Conversation.get(inbox_id=bot_inbox.id)
    contact = await Contact.get(id=conv.contact_id)
    assert contact.name == "Thu Hà Lê"
    await eventually(lambda: Contact.filter(id=contact.id, phone="+84912345678").exists())

    await post_update(client, bot_inbox, u.edited(first, "Chào shop, váy hoa nhí size S còn không ạ?"))

    async def edited() -> Message | None:
        msg = await Message.get(id=stored[0].id)
        return msg if msg.text.endswith("size S còn không ạ?") else None

    msg = await eventually(edited)
    assert [h["text"] for h in msg.edit_history] == ["Chào shop, váy hoa nhí còn không ạ?"]


# ---------------------------------------------------------------------------------------------- replies


async def customer_conversation(client: TestClient, inbox: Inbox, u: Updates) -> Conversation:
    await post_update(client, inbox, u.text("shop ơi tư vấn giúp mình"))
    return await eventually(lambda: Conversation.get_or_none(inbox_id=inbox.id))


async def test_reply_goes_through_aiogram(client: TestClient, bot_inbox: Inbox, fake_bot_api: FakeBotAPI) -> None:
    agent = await quick_user("agent", inboxes=[bot_inbox])
    u = Updates()
    conv = await customer_conversation(client, bot_inbox, u)
    response = await client.post(
        f"/api/conversations/{conv.id}/messages", json={"text": "Dạ shop chào bạn ạ"}, headers=agent.headers
    )
    assert response.status == 201
    reply = await response.json()
    assert reply["delivery_status"] == "sent"
    [sent] = fake_bot_api.sent()
    assert (sent.method, sent.token) == ("sendMessage", BOT_TOKEN)
    assert (int(sent.params["chat_id"]), sent.params["text"]) == (u.chat_id, "Dạ shop chào bạn ạ")
    assert reply["external_id"].startswith(f"{u.chat_id}:")


async def test_blocked_by_user_is_a_readable_failure(
    client: TestClient, bot_inbox: Inbox, fake_bot_api: FakeBotAPI
) -> None:
    agent = await quick_user("agent", inboxes=[bot_inbox])
    conv = await customer_conversation(client, bot_inbox, Updates())
    fake_bot_api.fail_next("blocked", method="sendMessage")
    response = await client.post(
        f"/api/conversations/{conv.id}/messages", json={"text": "Dạ shop gửi lại ạ"}, headers=agent.headers
    )
    reply = await response.json()
    assert reply["delivery_status"] == "failed"
    assert "chặn bot" in reply["failure_reason"] and "bot was blocked by the user" in reply["failure_reason"]
    assert len(fake_bot_api.sent()) == 1  # not retried: it cannot succeed


async def test_flood_control_retry_after_is_honoured(
    client: TestClient, bot_inbox: Inbox, fake_bot_api: FakeBotAPI
) -> None:
    agent = await quick_user("agent", inboxes=[bot_inbox])
    conv = await customer_conversation(client, bot_inbox, Updates())
    fake_bot_api.fail_next("retry_after", method="sendMessage", retry_after=60)
    response = await client.post(
        f"/api/conversations/{conv.id}/messages", json={"text": "Dạ shop đây ạ"}, headers=agent.headers
    )
    reply = await response.json()
    assert reply["delivery_status"] == "pending"
    item = await OutboxItem.get(message_id=reply["id"])
    # The outbox's own backoff in tests is 50 ms: only Telegram's retry_after puts the next try a minute away.
    assert item.next_attempt_at - datetime.now(UTC) > timedelta(seconds=45)
    assert "retry after 60" in item.last_error
    await OutboxItem.filter(id=item.id).update(next_attempt_at=datetime.now(UTC))  # the minute has passed
    client.app[OUTBOX].notify()
    await eventually(lambda: Message.filter(id=reply["id"], delivery_status="sent").exists())
    assert len(fake_bot_api.sent()) == 2


async def test_profile_name_from_get_chat(fake_bot_api: FakeBotAPI) -> None:
    fake_bot_api.chats[42] = {"first_name": "Minh", "last_name": "Trần", "username": "tranminh"}
    client = telegram.TelegramClient(fake_bot_api.base_url)
    try:
        assert (await client.fetch_profile(BOT_TOKEN, "42")).name == "Minh Trần"
        me = await client.get_me(BOT_TOKEN)
        assert me == {"id": int(BOT_ID), "username": "shop_mai_anh_bot", "first_name": "Shop Mai Anh"}
    finally:
        await client.close()


async def test_a_nul_character_in_bot_api_answers_is_stored_not_a_failed_write(
    client: TestClient, fake_bot_api: FakeBotAPI
) -> None:
    """PostgreSQL's text and jsonb cannot hold U+0000. A bot's username (getMe, when the inbox is added), a
    customer's name (getChat) and a refusal's description are stored with U+FFFD in its place: the inbox is added,
    the profile loads, and the failed reply says why."""
    admin = await quick_user("admin")
    fake_bot_api.bots[BOT_TOKEN].username = "shop\x00bot"
    bot = {"channel": "telegram", "name": "Bot Shop", "bot_token": BOT_TOKEN, "secret_token": SECRET}
    response = await client.post("/api/inboxes", json=bot, headers=admin.headers)
    assert response.status == 201, await response.text()
    inbox = await Inbox.get(id=(await response.json())["id"])
    assert inbox.credentials["username"] == "shop\ufffdbot"

    u = Updates()
    conv = await customer_conversation(client, inbox, u)
    fake_bot_api.chats[u.chat_id] = {"first_name": "Thu\x00 Hà", "last_name": "Lê"}
    fetcher = ProfileFetcher(client.app[BUS], {"telegram": TelegramSender(client.app[TELEGRAM])})
    await fetcher.fetch(conv.identity_id)
    identity = await ContactIdentity.get(id=conv.identity_id)
    assert (identity.name, identity.profile_fetched_at is not None) == ("Thu\ufffd Hà Lê", True)

    agent = await quick_user("agent", inboxes=[inbox])
    fake_bot_api.fail_next("bad_request", method="sendMessage", description="Bad Request: chat\x00 not found")
    reply = await client.post(f"/api/conversations/{conv.id}/messages", json={"text": "Dạ"}, headers=agent.headers)
    body = await reply.json()
    assert body["delivery_status"] == "failed" and "Bad Request: chat\ufffd not found" in body["failure_reason"]


async def test_agents_fetch_telegram_files_through_hopthu(
    client: TestClient, bot_inbox: Inbox, fake_bot_api: FakeBotAPI
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x01" * 40
    fake_bot_api.files["AgACAgIAAxkBAAMElarge"] = png
    fake_bot_api.files["BQACAgIAAxkBAAMFdoc"] = b"%PDF-1.4 hoa don"
    member = await quick_user("agent", inboxes=[bot_inbox])
    outsider = await quick_user("agent")
    u = Updates()
    await post_update(client, bot_inbox, u.photo())
    await post_update(client, bot_inbox, u.document())

    async def both() -> list[Message]:
        rows = await messages_of(u.chat_id)
        return rows if len(rows) == 2 else []

    photo, document = await eventually(both)
    url = photo.attachments[0]["url"]
    assert BOT_TOKEN not in url  # the token never leaves the server
    image = await client.get(url, headers=member.headers)
    assert image.status == 200 and image.content_type == "image/png" and await image.read() == png
    doc = await client.get(document.attachments[0]["url"], headers=member.headers)
    assert doc.status == 200 and doc.headers["Content-Disposition"].startswith("attachment")
    assert (await client.get(url, headers=outsider.headers)).status == 404
    assert (await client.get(url)).status == 401
    missing = await client.get(f"/api/telegram/{bot_inbox.id}/files/nope", headers=member.headers)
    assert missing.status == 502 and "invalid file_id" in (await missing.json())["error"]["message"]


async def test_a_voice_note_plays_in_the_browser_and_a_document_downloads_with_its_extension(
    client: TestClient, bot_inbox: Inbox, fake_bot_api: FakeBotAPI
) -> None:
    fake_bot_api.files["AwACAgIAAxkBAAMGvoice"] = b"OggS\x00\x02" + b"\x00" * 40  # Opus in Ogg, as Telegram sends
    fake_bot_api.files["BAACAgIAAxkBAAMHvideo"] = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 40
    fake_bot_api.files["BQACAgIAAxkBAAMFdoc"] = b"%PDF-1.4 hoa don"
    member = await quick_user("agent", inboxes=[bot_inbox])
    u = Updates()
    for update in (u.voice(), u.video(), u.document()):
        await post_update(client, bot_inbox, update)

    async def all_three() -> list[Message]:
        rows = await messages_of(u.chat_id)
        return rows if len(rows) == 3 else []

    voice, video, document = await eventually(all_three)
    sound = await client.get(voice.attachments[0]["url"], headers=member.headers)
    assert sound.status == 200 and sound.content_type == "audio/ogg" and "Content-Disposition" not in sound.headers
    clip = await client.get(video.attachments[0]["url"], headers=member.headers)
    assert clip.content_type == "video/mp4" and "Content-Disposition" not in clip.headers
    doc = await client.get(document.attachments[0]["url"], headers=member.headers)
    assert doc.content_type == "application/octet-stream"
    assert doc.headers["Content-Disposition"] == 'attachment; filename="BQACAgIAAxkBAAMFdoc.pdf"'


async def test_out_of_range_edit_date_is_kept_as_a_dead_letter(client: TestClient, bot_inbox: Inbox) -> None:
    update = {
        "update_id": 77,
        "edited_message": {
            "message_id": 5, "date": 1700000000, "edit_date": 10**12,
            "chat": {"id": 42, "type": "private"}, "from": {"id": 42, "is_bot": False, "first_name": "Lan"},
            "text": "sửa lại",
        },
    }  # fmt: skip
    response = await post_update(client, bot_inbox, update)
    assert response.status == 200, (response.status, await response.text())
    assert await DeadLetter.filter(channel="telegram").count() == 1


async def test_content_hopthu_cannot_show_is_named_and_service_messages_are_dropped(
    client: TestClient, bot_inbox: Inbox
) -> None:
    """A dice or a poll is something the customer sent: the agent sees what it was, never an empty bubble. A
    service message (the customer pinned a message in the chat) is not something they said: nothing is stored."""
    u = Updates()
    poll = {"id": "5", "question": "Màu nào đẹp hơn?", "total_voter_count": 0, "is_closed": False,
            "is_anonymous": True, "type": "regular", "allows_multiple_answers": False, "allows_revoting": False,
            "members_only": False, "options": [{"persistent_id": "1", "text": "Đỏ", "voter_count": 0},
                                               {"persistent_id": "2", "text": "Xanh", "voter_count": 0}]}  # fmt: skip
    pinned = {"message_id": 1, "date": 1700000000, "chat": {"id": u.chat_id, "type": "private"}, "text": "đơn hàng"}
    updates = [u.message(dice={"emoji": "🎲", "value": 4}), u.message(poll=poll), u.message(pinned_message=pinned),
               u.text("shop ơi")]  # fmt: skip
    for update in updates:
        assert (await post_update(client, bot_inbox, update)).status == 200

    async def stored() -> list[Message]:
        rows = await messages_of(u.chat_id)
        return rows if rows and rows[-1].text == "shop ơi" else []

    rows = await eventually(stored)
    assert [(m.text, m.attachments) for m in rows] == [
        (None, [{"kind": "fallback", "name": "dice", "title": "🎲 4"}]),
        (None, [{"kind": "fallback", "name": "poll", "title": "Màu nào đẹp hơn? — Đỏ / Xanh"}]),
        ("shop ơi", []),
    ]


# ---------------------------------------------------------------------------------------------- block / unblock


async def test_a_customer_blocking_and_unblocking_the_bot_is_recorded(
    client: TestClient, bot_inbox: Inbox, fake_bot_api: FakeBotAPI
) -> None:
    """`my_chat_member` in the customer's chat: "kicked" is the customer blocking the bot, "member" unblocking it."""
    agent = await quick_user("agent", inboxes=[bot_inbox])
    u = Updates()
    conv = await customer_conversation(client, bot_inbox, u)
    fake_bot_api.blocked.add(u.chat_id)
    blocked = u.bot_status(int(BOT_ID), "kicked")
    for _ in range(2):  # redelivered: recorded once
        assert (await post_update(client, bot_inbox, blocked)).status == 200
    await eventually(lambda: ConversationEvent.filter(conversation_id=conv.id, kind="unfollowed").exists())

    response = await client.post(
        f"/api/conversations/{conv.id}/messages", json={"text": "Dạ shop nhắn lại ạ"}, headers=agent.headers
    )
    reply = await response.json()
    assert reply["delivery_status"] == "failed"
    assert "chặn bot" in reply["failure_reason"] and "bot was blocked by the user" in reply["failure_reason"]

    fake_bot_api.blocked.discard(u.chat_id)
    assert (await post_update(client, bot_inbox, u.bot_status(int(BOT_ID), "member", old="kicked"))).status == 200

    async def unblocked() -> list[ConversationEvent]:
        return await ConversationEvent.filter(conversation_id=conv.id, kind="referral")

    [event] = await eventually(unblocked)
    assert event.data["referral"]["type"] == "follow"
    assert await ConversationEvent.filter(conversation_id=conv.id, kind="unfollowed").count() == 1
    assert await Conversation.filter(inbox_id=bot_inbox.id).count() == 1
    assert await DeadLetter.filter(channel="telegram").count() == 0
    response = await client.post(
        f"/api/conversations/{conv.id}/messages", json={"text": "Cảm ơn bạn đã quay lại ạ"}, headers=agent.headers
    )
    assert (await response.json())["delivery_status"] == "sent"


def test_only_the_customers_own_chat_member_changes_are_events() -> None:
    u = Updates()
    [block] = telegram.parse(u.bot_status(int(BOT_ID), "kicked"), BOT_ID)
    assert isinstance(block, Referral) and block.referral == {"type": "unfollow", "source": "telegram_block"}
    assert block.contact_external_id == str(u.chat_id)
    in_group = u.bot_status(int(BOT_ID), "left")
    in_group["my_chat_member"]["chat"] = {"id": -1001234567890, "type": "supergroup", "title": "Hội mua sắm"}
    assert telegram.parse(in_group, BOT_ID) == []  # the bot removed from a group: no customer to tell about


# ---------------------------------------------------------------------------------------------- update kinds


POLL = {"id": "5381462847619", "question": "Bạn thích màu nào?", "total_voter_count": 1, "is_closed": False,
        "is_anonymous": False, "type": "regular", "allows_multiple_answers": False,
        "options": [{"text": "Đỏ", "voter_count": 1}, {"text": "Xanh", "voter_count": 0}]}  # fmt: skip


async def test_update_kinds_hopthu_does_not_show_are_acknowledged_not_dead_lettered(
    client: TestClient, bot_inbox: Inbox
) -> None:
    """A poll's results, a vote, an update kind newer than aiogram: 200 and nothing stored — not dead letters,
    even when aiogram's model of them wants fields the update does not carry."""
    u = Updates()
    updates = [
        {"update_id": 900_001, "poll": POLL},
        {"update_id": 900_002, "poll_answer": {"poll_id": POLL["id"], "user": u.user, "option_ids": [0]}},
        {"update_id": 900_003, "business_weather": {"forecast": "mưa"}},  # a kind no Bot API version has yet
    ]
    for update in updates:
        response = await post_update(client, bot_inbox, update)
        assert response.status == 200, await response.text()
    assert await DeadLetter.filter(channel="telegram").count() == 0


async def test_messages_with_fields_aiogram_does_not_know_are_still_shown(client: TestClient, bot_inbox: Inbox) -> None:
    """A new top-level field is kept aside; a sub-object shaped unlike aiogram's model (a poll without the fields
    this aiogram version requires) costs that part only: the message is still the customer's message."""
    u = Updates()
    newer = u.message(text="shop ơi còn hàng không", paid_star_count=0, future_thing={"a": 1})
    old_poll = u.message(poll=POLL)
    with_reply = u.message(text="chọn màu đỏ nha", reply_to_message={**old_poll["message"]})
    for update in (newer, old_poll, with_reply):
        response = await post_update(client, bot_inbox, update)
        assert response.status == 200, await response.text()

    async def stored() -> list[Message]:
        rows = await messages_of(u.chat_id)
        return rows if len(rows) == 3 else []

    rows = await eventually(stored)
    assert [(m.text, m.attachments) for m in rows] == [
        ("shop ơi còn hàng không", []),
        (None, [{"kind": "fallback", "name": "poll", "title": "Bạn thích màu nào? — Đỏ / Xanh"}]),
        ("chọn màu đỏ nha", []),
    ]
    assert await DeadLetter.filter(channel="telegram").count() == 0


async def test_a_poll_aiogram_cannot_read_still_shows_its_question_to_the_agent(
    client: TestClient, bot_inbox: Inbox
) -> None:
    """The customer asks the shop with a poll shaped by another Bot API version: aiogram's model drops the part,
    but the agent still reads what was asked and the choices, not only the word "poll"."""
    agent = await quick_user("agent", inboxes=[bot_inbox])
    u = Updates()
    conv = await customer_conversation(client, bot_inbox, u)
    assert (await post_update(client, bot_inbox, u.message(poll=POLL))).status == 200

    async def shown() -> list[dict[str, Any]]:
        response = await client.get(f"/api/conversations/{conv.id}/messages", headers=agent.headers)
        items = (await response.json())["items"]
        return items if len(items) == 2 else []

    poll = (await eventually(shown))[-1]
    assert poll["attachments"] == [{"kind": "fallback", "name": "poll", "title": "Bạn thích màu nào? — Đỏ / Xanh"}]
    assert await DeadLetter.filter(channel="telegram").count() == 0


async def test_malformed_updates_are_still_refused_or_kept(client: TestClient, bot_inbox: Inbox) -> None:
    """Not JSON: 400 (Telegram delivers it again). JSON that is no update, or a message without the ids hopthu
    needs: kept as a dead letter, never silently dropped as an "unknown kind"."""
    response = await post_update(client, bot_inbox, b'{"update_id": 1, "poll": ')
    assert response.status == 400 and (await response.json())["error"]["code"] == "malformed_json"
    broken = [
        ["update_id", 1],
        {"update_id": "vài", "poll": POLL},
        {"update_id": 900_010, "message": {"message_id": 3, "date": 1700000000, "text": "thiếu chat"}},
        {"update_id": 900_011, "message": {**u_message(), "poll": "không phải object"}},
        {"update_id": 900_012, "my_chat_member": {"chat": {"id": 42, "type": "private"}, "date": 1700000000}},
    ]
    for update in broken:
        assert (await post_update(client, bot_inbox, update)).status == 200
    letters = await DeadLetter.filter(channel="telegram").order_by("id")
    assert len(letters) == len(broken)
    assert all(letter.reason for letter in letters)


def u_message() -> dict[str, Any]:
    return Updates(chat_id=42).message(text="x")["message"]
