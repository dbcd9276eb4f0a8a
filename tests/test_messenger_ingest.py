"""Messenger events as the agent sees them: texts, attachments, postbacks and referrals; echoes of the page's
own messages; delivery and read receipts; customer profiles; reopening; the conversation's event log.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from channels.fakes import (
    messenger_app_roles,
    messenger_attachment,
    messenger_delivery,
    messenger_echo,
    messenger_edit,
    messenger_handover,
    messenger_postback,
    messenger_reaction,
    messenger_read,
    messenger_text,
)
from contacts.models import ContactIdentity
from inbox.app import create_app
from inbox.keys import PROFILES
from inbox.models import Conversation, ConversationEvent, DeadLetter, InboundEvent, Message
from tests.conftest import PAGE_ID, Staff, eventually, make_inbox, make_user, now_ms, post_webhook, send_text

PSID = "7130042218899012"
CDN = "https://scontent.xx.fbcdn.net/v/t1.15752-9"


async def deliver(client, body: dict[str, Any]) -> None:
    """Post a signed webhook and wait until the processor has applied everything stored."""
    response = await post_webhook(client, body)
    assert response.status == 200, await response.text()
    await eventually(all_processed)


async def all_processed() -> bool:
    pending = await InboundEvent.filter(processed=False).exists()
    failed = await InboundEvent.filter(error__isnull=False).values_list("error", flat=True)
    assert not failed, f"the processor could not apply an event: {failed}"
    return not pending


async def only_conversation(client, staff: Staff) -> dict[str, Any]:
    listing = await (await client.get("/api/conversations", headers=staff.headers)).json()
    assert len(listing["items"]) == 1, listing
    return listing["items"][0]


async def messages_of(client, staff: Staff, conv_id: int) -> list[dict[str, Any]]:
    response = await client.get(f"/api/conversations/{conv_id}/messages", headers=staff.headers)
    assert response.status == 200
    return (await response.json())["items"]


def message_body(mid: str, **message: Any) -> dict[str, Any]:
    body = messenger_text(PAGE_ID, PSID, mid, "", now_ms())
    body["entry"][0]["messaging"][0]["message"] = {"mid": mid, **message}
    return body


@pytest.fixture
async def agent(client, inbox) -> Staff:
    return await make_user(client, "agent", inboxes=[inbox])


# ---------------------------------------------------------------------------------------------- content


async def test_text_message_is_shown_with_its_preview(client, agent):
    await deliver(client, messenger_text(PAGE_ID, PSID, "m_text", "Áo sơ mi trắng còn size S không shop?", now_ms()))
    conv = await only_conversation(client, agent)
    assert conv["last_message_preview"] == "Áo sơ mi trắng còn size S không shop?"
    assert conv["unread_count"] == 1
    assert conv["status"] == "open"
    [msg] = await messages_of(client, agent, conv["id"])
    assert msg["text"] == "Áo sơ mi trắng còn size S không shop?"
    assert (msg["direction"], msg["sender_type"], msg["private"]) == ("in", "contact", False)
    assert msg["external_id"] == "m_text"
    assert msg["attachments"] == []


async def test_a_nul_character_in_a_signed_webhook_is_stored_not_refused_for_ever(client, agent):
    """PostgreSQL's text and jsonb cannot hold U+0000. A signed payload carrying one (in a message, or in something
    no adapter knows) once got 503 on every delivery, and failed the webhooks sharing its commit too. It is stored,
    the NUL as U+FFFD, and the message reaches the agent."""
    await deliver(client, messenger_text(PAGE_ID, PSID, "m_nul\x00", "Cho mình hỏi\x00 giá áo", now_ms()))
    conv = await only_conversation(client, agent)
    [msg] = await messages_of(client, agent, conv["id"])
    assert msg["text"] == "Cho mình hỏi\ufffd giá áo"
    assert msg["external_id"] == "m_nul\ufffd"
    # A literal backslash and "u0000" typed by the customer is text, not a NUL: it stays as it is.
    await deliver(client, messenger_text(PAGE_ID, PSID, "m_backslash", "C:\\u0000 là gì", now_ms()))
    assert (await messages_of(client, agent, conv["id"]))[-1]["text"] == "C:\\u0000 là gì"
    response = await post_webhook(client, {"object": "page", "entry": [{"id": PAGE_ID, "nul\x00": "a\x00b"}]})
    assert response.status == 200, await response.text()
    [letter] = await DeadLetter.all()
    assert letter.payload == {"id": PAGE_ID, "nul\ufffd": "a\ufffdb"}  # the entry no adapter knows, kept raw


async def test_an_edited_message_shows_the_new_text_and_keeps_the_old_one(client, agent):
    """Webhook field `message_edits`: the customer corrects a message; the agent reads the new words and its
    history, and a redelivery of the same edit changes nothing twice."""
    sent_at = now_ms()
    await deliver(client, messenger_text(PAGE_ID, PSID, "m_edit", "Lấy áo size S nhé shop", sent_at))
    conv = await only_conversation(client, agent)
    edit = messenger_edit(PAGE_ID, PSID, "m_edit", "Lấy áo size M nhé shop", sent_at + 20_000)
    await deliver(client, edit)
    await deliver(client, edit)

    async def edited():
        [msg] = await messages_of(client, agent, conv["id"])
        return msg if msg["text"] == "Lấy áo size M nhé shop" else None

    msg = await eventually(edited)
    assert [h["text"] for h in msg["edit_history"]] == ["Lấy áo size S nhé shop"]
    assert await DeadLetter.all().count() == 0


async def test_a_reaction_shows_on_the_message_until_the_customer_takes_it_back(client, agent):
    """Webhook field `message_reactions`: the customer's ❤ shows on the message reacted to; "unreact" removes it,
    and a late redelivery of the older reaction does not bring it back."""
    at = now_ms()
    await deliver(client, messenger_text(PAGE_ID, PSID, "m_loved", "Cảm ơn shop nhiều nha", at))
    conv = await only_conversation(client, agent)

    async def reaction():
        [msg] = [m for m in await messages_of(client, agent, conv["id"]) if m["external_id"] == "m_loved"]
        return (msg["extra"].get("reaction") or {}).get("emoji")

    loved = messenger_reaction(PAGE_ID, PSID, "m_loved", at + 5_000)
    await deliver(client, loved)
    assert await eventually(reaction) == "❤️"
    await deliver(client, messenger_reaction(PAGE_ID, PSID, "m_loved", at + 6_000, "wow", emoji=None))
    assert await eventually(lambda: _equals(reaction, "😮")) is True
    await deliver(client, messenger_reaction(PAGE_ID, PSID, "m_loved", at + 9_000, "wow", None, action="unreact"))
    assert await eventually(lambda: _equals(reaction, None)) is True
    await deliver(client, messenger_reaction(PAGE_ID, PSID, "m_loved", at + 7_000, "like", emoji="👍"))
    await deliver(client, messenger_text(PAGE_ID, PSID, "m_after", "Mai shop giao nhé", at + 10_000))
    await eventually(lambda: Message.get_or_none(external_id="m_after"))
    assert await reaction() is None  # the older reaction, delivered late, does not undo the unreact
    assert await DeadLetter.all().count() == 0


async def _equals(read, expected) -> bool | None:
    return True if await read() == expected else None


@pytest.mark.parametrize("kind", ["image", "video", "audio", "file", "sticker"])
async def test_attachment_without_text_is_stored_and_previewed(client, agent, kind):
    url = f"{CDN}/{kind}.bin?_nc_cat=1"
    await deliver(client, messenger_attachment(PAGE_ID, PSID, f"m_{kind}", kind, url, now_ms()))
    conv = await only_conversation(client, agent)
    assert conv["last_message_preview"] == f"[{kind}]"
    [msg] = await messages_of(client, agent, conv["id"])
    assert msg["text"] is None
    assert msg["attachments"] == [{"kind": kind, "url": url}]


async def test_location_is_stored_with_its_coordinates(client, agent):
    location = {
        "type": "location",
        "title": "Vị trí của Lan",
        "url": "https://l.facebook.com/l.php?u=https%3A%2F%2Fmaps",
        "payload": {"coordinates": {"lat": 21.028511, "long": 105.804817}},
    }
    await deliver(client, message_body("m_loc", attachments=[location]))
    conv = await only_conversation(client, agent)
    assert conv["last_message_preview"] == "[location]"
    [msg] = await messages_of(client, agent, conv["id"])
    assert msg["attachments"] == [
        {
            "kind": "location",
            "url": "https://l.facebook.com/l.php?u=https%3A%2F%2Fmaps",
            "latitude": 21.028511,
            "longitude": 105.804817,
            "title": "Vị trí của Lan",
        }
    ]


@pytest.mark.parametrize("attachment", [{"type": "fallback"}, {"type": "fallback", "payload": None}])
async def test_fallback_attachment_without_payload_is_kept(client, agent, attachment):
    await deliver(client, message_body("m_fb", attachments=[attachment]))
    conv = await only_conversation(client, agent)
    assert conv["last_message_preview"] == "[fallback]"
    [msg] = await messages_of(client, agent, conv["id"])
    assert msg["attachments"] == [{"kind": "fallback"}]


async def test_text_with_attachments_previews_the_text(client, agent):
    photos = [
        {"type": "image", "payload": {"url": f"{CDN}/a.jpg"}},
        {"type": "image", "payload": {"url": f"{CDN}/b.jpg"}},
    ]
    await deliver(client, message_body("m_both", text="Mẫu này còn không ạ?", attachments=photos))
    conv = await only_conversation(client, agent)
    assert conv["last_message_preview"] == "Mẫu này còn không ạ?"
    [msg] = await messages_of(client, agent, conv["id"])
    assert [a["url"] for a in msg["attachments"]] == [f"{CDN}/a.jpg", f"{CDN}/b.jpg"]


async def test_quick_reply_payload_and_reply_to_are_kept(client, agent):
    body = message_body("m_qr", text="Size M", quick_reply={"payload": "SIZE_M"}, reply_to={"mid": "m_question"})
    await deliver(client, body)
    conv = await only_conversation(client, agent)
    [msg] = await messages_of(client, agent, conv["id"])
    assert msg["text"] == "Size M"
    assert msg["extra"]["quick_reply_payload"] == "SIZE_M"
    assert msg["extra"]["reply_to_external_id"] == "m_question"


async def test_postback_is_a_message_with_its_payload_and_title(client, agent):
    await deliver(client, messenger_postback(PAGE_ID, PSID, "Bắt đầu", "GET_STARTED", now_ms(), mid="m_pb"))
    conv = await only_conversation(client, agent)
    assert conv["last_message_preview"] == "Bắt đầu"
    [msg] = await messages_of(client, agent, conv["id"])
    assert msg["text"] == "Bắt đầu"
    assert msg["extra"]["postback_payload"] == "GET_STARTED"
    assert msg["extra"]["postback_title"] == "Bắt đầu"
    assert msg["external_id"] == "m_pb"


async def test_postback_without_mid_is_stored_once_on_redelivery(client, agent):
    body = messenger_postback(PAGE_ID, PSID, "Xem giỏ hàng", "VIEW_CART", now_ms())
    await deliver(client, body)
    await deliver(client, body)
    conv = await only_conversation(client, agent)
    [msg] = await messages_of(client, agent, conv["id"])
    assert msg["extra"]["postback_payload"] == "VIEW_CART"


async def test_referral_on_a_message_is_recorded(client, agent):
    ref = {"source": "ADS", "type": "OPEN_THREAD", "ad_id": "6045246247433"}
    await deliver(client, message_body("m_ref", text="Mình thấy quảng cáo váy hoa", referral=ref))
    conv = await only_conversation(client, agent)
    [msg] = await messages_of(client, agent, conv["id"])
    assert msg["extra"]["referral"] == ref


async def test_postback_referral_is_recorded(client, agent):
    ref = {"ref": "summer-sale", "source": "SHORTLINK", "type": "OPEN_THREAD"}
    await deliver(client, messenger_postback(PAGE_ID, PSID, "Get Started", "GS", now_ms(), mid="m_pbr", referral=ref))
    conv = await only_conversation(client, agent)
    [msg] = await messages_of(client, agent, conv["id"])
    assert msg["extra"]["referral"] == ref


async def test_standalone_referral_opens_the_thread_and_is_recorded(client, agent):
    ref = {"ref": "fb-ad-123", "source": "ADS", "type": "OPEN_THREAD", "ad_id": "6045246247433"}
    ts = now_ms()
    body = messenger_text(PAGE_ID, PSID, "unused", "", ts)
    event = body["entry"][0]["messaging"][0]
    del event["message"]
    event["referral"] = ref
    await deliver(client, body)
    await deliver(client, body)  # redelivered: recorded once

    conv = await Conversation.get()
    events = await ConversationEvent.filter(conversation_id=conv.id).order_by("id")
    assert [e.kind for e in events] == ["opened", "referral"]
    assert events[1].data == {"referral": ref}
    assert events[1].occurred_at == datetime.fromtimestamp(ts / 1000, UTC)
    assert await Message.all().count() == 0
    # The customer then writes: the same conversation.
    await deliver(client, messenger_text(PAGE_ID, PSID, "m_after_ref", "Váy này giá sao ạ?", now_ms()))
    listed = await only_conversation(client, agent)
    assert listed["id"] == conv.id


# ---------------------------------------------------------------------------------------------- echoes


async def test_echo_from_business_suite_is_an_outgoing_message_not_a_customer_one(client, agent):
    asked_at = now_ms() - 60_000
    await deliver(client, messenger_text(PAGE_ID, PSID, "m_ask", "Shop ơi còn hàng không?", asked_at))
    before = await Conversation.get()
    assert before.unread_count == 1

    body = messenger_echo(PAGE_ID, PSID, "m_bs", "Dạ còn ạ, chị lấy màu gì?", now_ms(), app_id="263902037430900")
    await deliver(client, body)

    after = await Conversation.get()
    assert after.id == before.id
    assert after.last_incoming_at == before.last_incoming_at == datetime.fromtimestamp(asked_at / 1000, UTC)
    assert after.unread_count == 1
    assert after.last_message_preview == "Dạ còn ạ, chị lấy màu gì?"
    conv = await only_conversation(client, agent)
    msgs = await messages_of(client, agent, conv["id"])
    assert [m["external_id"] for m in msgs] == ["m_ask", "m_bs"]
    echo = msgs[1]
    assert (echo["direction"], echo["sender_type"], echo["origin"]) == ("out", "agent", "platform")
    assert echo["sender_id"] is None
    assert echo["delivery_status"] == "sent"
    assert echo["text"] == "Dạ còn ạ, chị lấy màu gì?"
    kinds = await ConversationEvent.filter(conversation_id=conv["id"]).order_by("id").values_list("kind", flat=True)
    assert kinds == ["opened", "message_in", "message_out"]


async def test_echo_first_makes_the_customer_the_contact_never_the_page(client, agent):
    await deliver(client, messenger_echo(PAGE_ID, PSID, "m_first", "Chào chị, đơn hàng đã gửi ạ", now_ms()))
    assert not await ContactIdentity.filter(external_id=PAGE_ID).exists()
    conv = await Conversation.get().prefetch_related("identity")
    assert conv.identity.external_id == PSID
    assert conv.last_incoming_at is None
    assert conv.unread_count == 0
    [msg] = await Message.all()
    assert (msg.direction, msg.origin) == ("out", "platform")


@pytest.mark.parametrize("with_metadata", [True, False], ids=["hopthu-metadata", "same-mid-only"])
async def test_echo_of_a_reply_hopthu_sent_is_not_duplicated(client, agent, fake_graph, with_metadata):
    await deliver(client, messenger_text(PAGE_ID, PSID, "m_q", "Phí ship bao nhiêu ạ?", now_ms()))
    conv = await only_conversation(client, agent)
    reply = await client.post(
        f"/api/conversations/{conv['id']}/messages", json={"text": "Dạ 30k ạ"}, headers=agent.headers
    )
    assert reply.status == 201
    sent = await reply.json()
    assert sent["delivery_status"] == "sent"
    mid = sent["external_id"]
    assert fake_graph.sent_messages()[-1]["message"]["metadata"] == f"hopthu:{sent['id']}"

    # The echo carries the metadata hopthu gave the Send API, or (another app's subscription) only the mid.
    metadata = f"hopthu:{sent['id']}" if with_metadata else None
    await deliver(client, messenger_echo(PAGE_ID, PSID, mid, "Dạ 30k ạ", now_ms(), metadata=metadata))

    msgs = await messages_of(client, agent, conv["id"])
    assert [(m["direction"], m["origin"], m["external_id"]) for m in msgs] == [
        ("in", "platform", "m_q"),
        ("out", "hopthu", mid),
    ]
    assert msgs[1]["sender_id"] == agent.user.id
    assert msgs[1]["delivery_status"] == "sent"
    conv_row = await Conversation.get()
    assert conv_row.unread_count == 1
    assert conv_row.last_message_preview == "Dạ 30k ạ"
    kinds = await ConversationEvent.filter(conversation_id=conv_row.id).values_list("kind", flat=True)
    assert sorted(kinds) == ["message_in", "message_out", "opened"]


async def test_echo_confirms_a_reply_that_is_still_pending(client, agent, fake_graph):
    """The Send API failed but the message did go out: the echo (matched by hopthu's metadata) confirms it."""
    await deliver(client, messenger_text(PAGE_ID, PSID, "m_q", "Shop ơi", now_ms()))
    conv = await only_conversation(client, agent)
    fake_graph.fail_next(
        1, status=400, error={"message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100}
    )
    reply = await client.post(f"/api/conversations/{conv['id']}/messages", json={"text": "Dạ"}, headers=agent.headers)
    failed = await reply.json()
    assert failed["delivery_status"] == "failed"

    await deliver(
        client, messenger_echo(PAGE_ID, PSID, "m_really_sent", "Dạ", now_ms(), metadata=f"hopthu:{failed['id']}")
    )
    msgs = await messages_of(client, agent, conv["id"])
    assert [(m["external_id"], m["delivery_status"], m["failure_reason"]) for m in msgs] == [
        ("m_q", None, None),
        ("m_really_sent", "sent", None),
    ]


@pytest.mark.parametrize(("receipt", "status"), [(messenger_delivery, "delivered"), (messenger_read, "read")])
async def test_echo_confirming_a_failed_reply_after_a_receipt_that_covers_it_keeps_that_status(
    client, agent, fake_graph, receipt, status
):
    """The Send API refused a reply that did go out, the customer's receipt came before its echo: the echo confirms
    the reply as the receipt said, not "sent" for good (Messenger sends a watermark once)."""
    await deliver(client, messenger_text(PAGE_ID, PSID, "m_q", "Shop ơi", now_ms()))
    conv = await only_conversation(client, agent)
    fake_graph.fail_next(
        1, status=400, error={"message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100}
    )
    reply = await client.post(f"/api/conversations/{conv['id']}/messages", json={"text": "Dạ"}, headers=agent.headers)
    failed = await reply.json()
    assert failed["delivery_status"] == "failed"

    sent_at = now_ms()
    await deliver(client, receipt(PAGE_ID, PSID, sent_at + 500))
    await deliver(client, messenger_echo(PAGE_ID, PSID, "m_really_sent", "Dạ", sent_at, f"hopthu:{failed['id']}"))
    msgs = await messages_of(client, agent, conv["id"])
    assert [(m["external_id"], m["delivery_status"], m["failure_reason"]) for m in msgs] == [
        ("m_q", None, None),
        ("m_really_sent", status, None),
    ]


async def test_echo_without_metadata_confirming_a_pending_reply_after_a_receipt_keeps_its_status(
    aiohttp_client, settings, fake_graph
):
    """A reply waits for its retry (the Send API answered 500, yet it went out), its delivery watermark comes, then
    its echo without hopthu's metadata (another app's subscription): the reply is confirmed "delivered"."""
    client = await aiohttp_client(create_app(replace(settings, outbox_base_delay=30.0)))  # the retry waits
    agent = await make_user(client, "agent", inboxes=[await make_inbox()])
    await deliver(client, messenger_text(PAGE_ID, PSID, "m_q", "Shop ơi", now_ms()))
    conv = await only_conversation(client, agent)
    fake_graph.fail_next(1, status=500)
    reply = await client.post(f"/api/conversations/{conv['id']}/messages", json={"text": "Dạ"}, headers=agent.headers)
    assert (await reply.json())["delivery_status"] == "pending"

    sent_at = now_ms()
    await deliver(client, messenger_delivery(PAGE_ID, PSID, sent_at + 500))
    await deliver(client, messenger_echo(PAGE_ID, PSID, "m_went_out", "Dạ", sent_at))
    msgs = await messages_of(client, agent, conv["id"])
    assert [(m["origin"], m["external_id"], m["delivery_status"]) for m in msgs] == [
        ("platform", "m_q", None),
        ("hopthu", "m_went_out", "delivered"),
    ]


# ---------------------------------------------------------------------------------------------- receipts


async def _reply(client, staff: Staff, conv_id: int, text: str) -> dict[str, Any]:
    response = await client.post(f"/api/conversations/{conv_id}/messages", json={"text": text}, headers=staff.headers)
    assert response.status == 201
    body = await response.json()
    assert body["delivery_status"] == "sent"
    return body


async def _statuses(client, staff: Staff, conv_id: int) -> dict[str, str]:
    return {
        m["text"]: m["delivery_status"] for m in await messages_of(client, staff, conv_id) if m["direction"] == "out"
    }


async def test_delivery_and_read_watermarks_move_statuses_forward_only(client, agent):
    await deliver(client, messenger_text(PAGE_ID, PSID, "m_q", "Cho mình xin bảng size", now_ms()))
    conv_id = (await only_conversation(client, agent))["id"]
    await _reply(client, agent, conv_id, "Dạ bảng size đây ạ")
    delivered_up_to = now_ms()
    await _reply(client, agent, conv_id, "Chị cao bao nhiêu ạ?")

    await deliver(client, messenger_delivery(PAGE_ID, PSID, delivered_up_to))
    assert await _statuses(client, agent, conv_id) == {
        "Dạ bảng size đây ạ": "delivered",
        "Chị cao bao nhiêu ạ?": "sent",
    }

    read_up_to = now_ms()
    await deliver(client, messenger_read(PAGE_ID, PSID, read_up_to))
    assert await _statuses(client, agent, conv_id) == {"Dạ bảng size đây ạ": "read", "Chị cao bao nhiêu ạ?": "read"}

    # A delivery report that arrives late never takes "read" back to "delivered".
    await deliver(client, messenger_delivery(PAGE_ID, PSID, now_ms()))
    assert await _statuses(client, agent, conv_id) == {"Dạ bảng size đây ạ": "read", "Chị cao bao nhiêu ạ?": "read"}
    # The customer's own message is untouched by receipts.
    [incoming] = [m for m in await messages_of(client, agent, conv_id) if m["direction"] == "in"]
    assert incoming["delivery_status"] is None


async def test_delivery_by_mids_marks_those_messages(client, agent):
    await deliver(client, messenger_text(PAGE_ID, PSID, "m_q", "Alo shop", now_ms()))
    conv_id = (await only_conversation(client, agent))["id"]
    long_ago = now_ms() - 3_600_000
    first = await _reply(client, agent, conv_id, "Dạ em nghe")
    await _reply(client, agent, conv_id, "Chị cần gì ạ?")
    await deliver(client, messenger_delivery(PAGE_ID, PSID, long_ago, mids=[first["external_id"]]))
    assert await _statuses(client, agent, conv_id) == {"Dạ em nghe": "delivered", "Chị cần gì ạ?": "sent"}


@pytest.mark.parametrize(("receipt", "status"), [(messenger_delivery, "delivered"), (messenger_read, "read")])
async def test_echo_after_a_receipt_that_covers_it_is_stored_with_that_status(client, agent, receipt, status):
    """Webhooks arrive in any order: the page's reply from the Page inbox on a phone, its delivery or read watermark
    first, then the echo. The echo is stored as the receipt said, not "sent" for ever; a later one stays "sent"."""
    t0 = now_ms() - 10_000
    await deliver(client, messenger_text(PAGE_ID, PSID, "m_q", "Áo này còn size M không shop?", t0))
    conv_id = (await only_conversation(client, agent))["id"]
    await deliver(client, receipt(PAGE_ID, PSID, t0 + 2_000))

    await deliver(client, messenger_echo(PAGE_ID, PSID, "m_phone", "Dạ còn ạ", t0 + 1_000, app_id="263902037430900"))
    await deliver(client, messenger_echo(PAGE_ID, PSID, "m_later", "Chị lấy mấy cái ạ?", t0 + 3_000))
    assert await _statuses(client, agent, conv_id) == {"Dạ còn ạ": status, "Chị lấy mấy cái ạ?": "sent"}


async def test_receipt_for_an_unknown_customer_changes_nothing(client, agent):
    await deliver(client, messenger_read(PAGE_ID, "PSID-nobody", now_ms()))
    assert await Conversation.all().count() == 0


# ---------------------------------------------------------------------------------------------- handover


BOT_PLATFORM_APP = "1781234567890123"  # a chatbot platform subscribed to the same page
PAGE_INBOX_APP = "263902037430900"


async def test_thread_control_changes_are_noted_in_the_conversation(client, agent):
    """A chatbot platform takes the thread, hands it to the Page inbox, which another app then asks for: each
    webhook is answered 200, nothing is dead-lettered, and the conversation's events say who holds the thread."""
    t0 = now_ms() - 10_000
    await deliver(client, messenger_text(PAGE_ID, PSID, "m_q", "Cho em gặp nhân viên ạ", t0))
    conv_id = (await only_conversation(client, agent))["id"]

    taken = messenger_handover(
        PAGE_ID, PSID, t0 + 1_000, "take_thread_control", new_owner_app_id=BOT_PLATFORM_APP, standby=True
    )
    passed = messenger_handover(
        PAGE_ID, PSID, t0 + 2_000, new_owner_app_id=PAGE_INBOX_APP, previous_owner_app_id=BOT_PLATFORM_APP,
        metadata="Khách cần tư vấn viên", standby=True,
    )  # fmt: skip
    requested = messenger_handover(
        PAGE_ID, PSID, t0 + 3_000, "request_thread_control", new_owner_app_id=BOT_PLATFORM_APP, metadata="quay lại bot"
    )
    for body in (taken, passed, requested, passed):  # the pass redelivered: noted once
        await deliver(client, body)
    await deliver(client, messenger_app_roles(PAGE_ID, t0 + 4_000, {PAGE_INBOX_APP: ["primary_receiver"]}))

    assert await DeadLetter.all().count() == 0
    events = await ConversationEvent.filter(conversation_id=conv_id, kind="thread_control").order_by("id")
    assert [(e.actor_type, e.occurred_at, e.data) for e in events] == [
        ("system", datetime.fromtimestamp((t0 + 1_000) / 1000, UTC),
         {"action": "taken", "new_owner_app_id": BOT_PLATFORM_APP, "previous_owner_app_id": None, "metadata": None}),
        ("system", datetime.fromtimestamp((t0 + 2_000) / 1000, UTC),
         {"action": "passed", "new_owner_app_id": PAGE_INBOX_APP, "previous_owner_app_id": BOT_PLATFORM_APP,
          "metadata": "Khách cần tư vấn viên"}),
        ("system", datetime.fromtimestamp((t0 + 3_000) / 1000, UTC),
         {"action": "requested", "new_owner_app_id": BOT_PLATFORM_APP, "previous_owner_app_id": None,
          "metadata": "quay lại bot"}),
    ]  # fmt: skip
    # Nothing else about the conversation moves: no message, no unread, the customer's words stay last.
    conv = await only_conversation(client, agent)
    assert (conv["unread_count"], conv["last_message_preview"]) == (1, "Cho em gặp nhân viên ạ")
    assert [m["external_id"] for m in await messages_of(client, agent, conv_id)] == ["m_q"]


async def test_thread_control_for_a_customer_without_a_conversation_opens_none(client, agent):
    await deliver(client, messenger_handover(PAGE_ID, "PSID-nobody", now_ms(), new_owner_app_id=PAGE_INBOX_APP))
    assert await Conversation.all().count() == 0
    assert not await ContactIdentity.filter(external_id="PSID-nobody").exists()
    assert await DeadLetter.all().count() == 0


# ---------------------------------------------------------------------------------------------- profiles


async def test_customer_name_and_picture_come_from_the_graph_api(client, agent, fake_graph):
    fake_graph.profiles[PSID] = {
        "first_name": "Hương",
        "last_name": "Nguyễn",
        "name": "Nguyễn Thị Hương",
        "profile_pic": "https://fake-graph.invalid/pic/huong.jpg",
    }
    await deliver(client, messenger_text(PAGE_ID, PSID, "m_hi", "Chào shop", now_ms()))
    conv_id = (await only_conversation(client, agent))["id"]

    async def named() -> dict | None:
        detail = await (await client.get(f"/api/conversations/{conv_id}", headers=agent.headers)).json()
        return detail["contact"] if detail["contact"]["name"] else None

    contact = await eventually(named)
    assert contact["name"] == "Nguyễn Thị Hương"
    assert contact["picture_url"] == "https://fake-graph.invalid/pic/huong.jpg"
    profile_calls = [r for r in fake_graph.requests if r.method == "GET" and r.path.endswith(f"/{PSID}")]
    assert len(profile_calls) == 1
    assert profile_calls[0].query["access_token"] == "page-token-1"
    # Searchable by the fetched name, with or without diacritics.
    found = await (await client.get("/api/conversations", params={"q": "huong"}, headers=agent.headers)).json()
    assert [c["id"] for c in found["items"]] == [conv_id]


async def test_failing_profile_fetch_keeps_the_message_and_leaves_the_name_empty(client, agent, fake_graph):
    fake_graph.fail_next(on="profile")
    await deliver(client, messenger_text(PAGE_ID, PSID, "m_hi", "Chào shop", now_ms()))
    await eventually(lambda: _profile_requested(fake_graph))
    await client.app[PROFILES].idle()
    conv = await only_conversation(client, agent)
    assert conv["contact"]["name"] == ""
    assert conv["contact"]["picture_url"] is None
    [msg] = await messages_of(client, agent, conv["id"])
    assert msg["text"] == "Chào shop"


async def test_a_nul_character_in_the_graph_profile_does_not_keep_the_name_from_loading(client, agent, fake_graph):
    """PostgreSQL's text cannot hold U+0000: a profile carrying one failed to store, and every later fetch failed
    the same way. The name shows with U+FFFD in its place, and the picture is stored with it."""
    fake_graph.profiles[PSID] = {"name": "Nguyễn\x00Thị Hương", "profile_pic": "https://fake-graph.invalid/pic\x00.jpg"}
    await deliver(client, messenger_text(PAGE_ID, PSID, "m_hi", "Chào shop", now_ms()))
    await eventually(lambda: _profile_requested(fake_graph))
    await client.app[PROFILES].idle()
    contact = (await only_conversation(client, agent))["contact"]
    assert contact["name"] == "Nguyễn\ufffdThị Hương"
    assert contact["picture_url"] == "https://fake-graph.invalid/pic\ufffd.jpg"


async def _profile_requested(fake_graph) -> bool:
    return any(r.method == "GET" and r.path.endswith(f"/{PSID}") for r in fake_graph.requests)


# ---------------------------------------------------------------------------------------------- lifecycle


async def test_resolved_conversation_reopens_when_the_customer_writes_again(client, agent):
    await deliver(client, messenger_text(PAGE_ID, PSID, "m_1", "Cảm ơn shop nhé", now_ms()))
    conv_id = (await only_conversation(client, agent))["id"]
    resolved = await client.post(
        f"/api/conversations/{conv_id}/status", json={"status": "resolved"}, headers=agent.headers
    )
    assert resolved.status == 200
    assert (await resolved.json())["status"] == "resolved"

    await deliver(client, messenger_text(PAGE_ID, PSID, "m_2", "À shop ơi cho mình đổi size", now_ms()))
    conv = await only_conversation(client, agent)
    assert conv["id"] == conv_id
    assert conv["status"] == "open"
    assert conv["last_message_preview"] == "À shop ơi cho mình đổi size"
    reopened = await ConversationEvent.get(conversation_id=conv_id, kind="reopened")
    assert reopened.data == {"previous": "resolved"}
    assert reopened.actor_type == "contact"
    assert reopened.message_id == (await Message.get(external_id="m_2")).id


async def test_conversation_events_are_appended_in_order(client, agent):
    t1, t2 = now_ms() - 2_000, now_ms() - 1_000
    await deliver(client, messenger_text(PAGE_ID, PSID, "m_1", "Chào shop", t1))
    await deliver(client, messenger_text(PAGE_ID, PSID, "m_2", "Cho mình hỏi chút", t2))
    conv = await Conversation.get()
    events = await ConversationEvent.filter(conversation_id=conv.id).order_by("id")
    m1, m2 = await Message.get(external_id="m_1"), await Message.get(external_id="m_2")
    assert [(e.kind, e.message_id) for e in events] == [("opened", None), ("message_in", m1.id), ("message_in", m2.id)]
    assert [e.occurred_at for e in events] == [
        datetime.fromtimestamp(t1 / 1000, UTC),
        datetime.fromtimestamp(t1 / 1000, UTC),
        datetime.fromtimestamp(t2 / 1000, UTC),
    ]
    assert all(e.actor_type == "contact" and e.actor_id == conv.contact_id for e in events)
    assert conv.unread_count == 2


async def test_two_customers_get_two_conversations_and_the_same_customer_one(client, agent):
    await send_text(client, "PSID-A", "m_a1", "Chào shop")
    await send_text(client, "PSID-B", "m_b1", "Hello")
    await send_text(client, "PSID-A", "m_a2", "Còn hàng không?")
    await eventually(lambda: _messages(3))
    await eventually(all_processed)
    listing = await (await client.get("/api/conversations", headers=agent.headers)).json()
    previews = sorted(c["last_message_preview"] for c in listing["items"])
    assert previews == ["Còn hàng không?", "Hello"]


async def _messages(n: int) -> bool:
    return await Message.all().count() == n
