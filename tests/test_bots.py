"""The FAQ bot, welcome/away messages and hand-off, through real signed webhooks and the fake Graph API."""

from __future__ import annotations

import time

import pytest
from aiohttp.test_utils import TestClient

from agents.faq_seed import DEFAULT_VARIABLES, FAQ, install
from agents.models import BotSession
from channels.fakes import FakeGraphAPI, messenger_echo
from inbox.keys import BOTS, PIPELINE
from inbox.models import Conversation, ConversationEvent, Inbox, Message
from tests.conftest import PAGE_ID, eventually, make_user, now_ms, post_webhook, send_text

ANSWERS = {entry["key"]: entry["answer"] for entry in FAQ}


def answer_of(key: str, name: str = "mình") -> str:
    text = ANSWERS[key].replace("{contact.name}", name)
    for variable, value in DEFAULT_VARIABLES.items():
        text = text.replace("{" + variable + "}", value)
    return text


@pytest.fixture
async def bot_inbox(client: TestClient, inbox: Inbox) -> Inbox:
    await install(inbox.id)
    client.app[BOTS].forget()
    return inbox


async def customer_says(client: TestClient, psid: str, text: str, ts_ms: int | None = None) -> Message:
    """Send a customer message and wait until the whole post-commit pipeline (bot included) has handled it."""
    mid = f"mid.{time.monotonic_ns()}"
    await send_text(client, psid, mid, text, ts_ms)
    msg = await eventually(lambda: Message.get_or_none(external_id=mid))
    await eventually(lambda: _handled(client, msg.id))
    return msg


async def _handled(client: TestClient, message_id: int) -> bool:
    return client.app[PIPELINE].handled_up_to >= message_id


async def bot_said(conv_id: int, kind: str | None = None) -> list[Message]:
    msgs = await Message.filter(conversation_id=conv_id, sender_type="bot").order_by("id")
    return [m for m in msgs if kind is None or m.extra.get("bot", {}).get("kind") == kind]


async def handoffs(conv_id: int) -> list[str]:
    events = await ConversationEvent.filter(conversation_id=conv_id, kind="handoff").order_by("id")
    return [e.data["reason"] for e in events]


@pytest.mark.parametrize(
    ("question", "key"),
    [
        ("Shop mở cửa tới mấy giờ vậy ạ?", "store_hours"),
        ("cho minh xin dia chi cua hang", "store_address"),
        ("phí ship về Hải Phòng bao nhiêu shop", "shipping_fee"),
        ("ship ve da nang mat bao lau", "shipping_time"),
        ("shop có nhận cod không ạ", "payment"),
        ("cao 1m58 nặng 50kg mặc size gì shop", "size_guide"),
        ("mac khong vua co doi size duoc khong", "return_policy"),
        ("dạo này shop có khuyến mãi gì không", "promotion"),
        ("kiểm tra giúp mình đơn hàng tới đâu rồi", "order_status"),
        ("muốn đặt hàng thì làm sao shop", "how_to_order"),
        ("áo này chất liệu vải gì vậy", "material"),
    ],
)
async def test_routine_questions_are_answered_in_vietnamese(
    client: TestClient, bot_inbox: Inbox, fake_graph: FakeGraphAPI, question: str, key: str
) -> None:
    msg = await customer_says(client, "PSID-Q", question)
    faq = await eventually(lambda: bot_said(msg.conversation_id, "faq"))
    # The customer's name arrives from the Graph API off the ack path: the answer has it if it was known by then.
    assert faq[0].text in (answer_of(key), answer_of(key, name=await _contact_name(msg)))
    assert faq[0].direction == "out" and faq[0].sender_type == "bot"
    # Sent to Messenger as a plain response: a bot never uses the HUMAN_AGENT tag.
    sent = await eventually(lambda: _sent_texts(fake_graph, faq[0].text))
    assert all(body.get("tag") is None for body in sent)
    session = await BotSession.get(conversation_id=msg.conversation_id)
    assert session.state == "bot"
    conv = await Conversation.get(id=msg.conversation_id)
    assert conv.assignee_id is None  # still with the bot: not routed
    assert conv.last_message_at == faq[0].created_at  # an answer, unlike a welcome: the customer is not waiting


async def _contact_name(msg: Message) -> str:
    conv = await Conversation.get(id=msg.conversation_id).prefetch_related("contact")
    return conv.contact.name or "mình"


async def _sent_texts(fake_graph: FakeGraphAPI, text: str) -> list[dict]:
    return [body for body in fake_graph.sent_messages() if (body.get("message") or {}).get("text") == text]


async def test_welcome_message_only_for_a_new_conversation(client: TestClient, bot_inbox: Inbox) -> None:
    first = await customer_says(client, "PSID-W", "Chào shop")
    second = await customer_says(client, "PSID-W", "Shop ở đâu vậy?")
    welcome = await bot_said(first.conversation_id, "welcome")
    assert len(welcome) == 1 and welcome[0].text.startswith("Chào ")
    assert "Shop Thời Trang Mai" in welcome[0].text
    assert second.conversation_id == first.conversation_id


async def test_hand_off_when_the_customer_asks_for_a_person(client: TestClient, bot_inbox: Inbox) -> None:
    msg = await customer_says(client, "PSID-H", "cho mình gặp nhân viên tư vấn với")
    assert await handoffs(msg.conversation_id) == ["requested"]
    assert len(await bot_said(msg.conversation_id, "handoff")) == 1
    # From now on the bot is quiet, even for a question it knows.
    later = await customer_says(client, "PSID-H", "phí ship bao nhiêu vậy")
    assert await bot_said(later.conversation_id, "faq") == []


async def test_hand_off_without_diacritics(client: TestClient, bot_inbox: Inbox) -> None:
    msg = await customer_says(client, "PSID-H2", "cho gap nhan vien di shop")
    assert await handoffs(msg.conversation_id) == ["requested"]


async def test_hand_off_on_a_complaint(client: TestClient, bot_inbox: Inbox) -> None:
    msg = await customer_says(client, "PSID-C", "Hàng giao tới bị rách hết, mình rất bực, shop làm ăn kiểu gì vậy")
    reasons = await handoffs(msg.conversation_id)
    assert reasons and reasons[0] in ("complaint", "negative_sentiment")
    assert await bot_said(msg.conversation_id, "faq") == []


async def test_hand_off_after_two_answers_below_the_threshold(client: TestClient, bot_inbox: Inbox) -> None:
    first = await customer_says(client, "PSID-L", "bạn tên là gì thế")
    assert len(await bot_said(first.conversation_id, "fallback")) == 1
    assert await handoffs(first.conversation_id) == []
    await customer_says(client, "PSID-L", "hôm nay trời mưa to quá nhỉ")
    assert await handoffs(first.conversation_id) == ["low_confidence"]
    assert len(await bot_said(first.conversation_id, "handoff")) == 1


async def test_a_good_answer_resets_the_low_confidence_count(client: TestClient, bot_inbox: Inbox) -> None:
    msg = await customer_says(client, "PSID-R", "bạn tên là gì thế")
    await customer_says(client, "PSID-R", "phí ship bao nhiêu vậy shop")
    await customer_says(client, "PSID-R", "hôm nay trời mưa to quá nhỉ")
    assert await handoffs(msg.conversation_id) == []
    assert len(await bot_said(msg.conversation_id, "fallback")) == 2


async def test_silent_after_an_agent_replies(client: TestClient, bot_inbox: Inbox) -> None:
    msg = await customer_says(client, "PSID-A", "Chào shop")
    agent = await make_user(client, "agent", inboxes=[bot_inbox])
    response = await client.post(
        f"/api/conversations/{msg.conversation_id}/messages", json={"text": "Dạ em chào chị ạ"}, headers=agent.headers
    )
    assert response.status == 201, await response.text()
    before = len(await bot_said(msg.conversation_id))
    await customer_says(client, "PSID-A", "phí ship bao nhiêu vậy")
    assert len(await bot_said(msg.conversation_id)) == before
    assert await handoffs(msg.conversation_id) == ["agent_replied"]


async def test_silent_once_a_person_holds_the_conversation(client: TestClient, bot_inbox: Inbox) -> None:
    msg = await customer_says(client, "PSID-B", "Chào shop")
    agent = await make_user(client, "agent", inboxes=[bot_inbox])
    response = await client.post(
        f"/api/conversations/{msg.conversation_id}/assign", json={"agent_id": agent.user.id}, headers=agent.headers
    )
    assert response.status == 200
    await customer_says(client, "PSID-B", "phí ship bao nhiêu vậy")
    assert await bot_said(msg.conversation_id, "faq") == []
    assert await handoffs(msg.conversation_id) == ["assigned"]


async def test_no_loop_with_echoes_of_the_bot_or_other_tools(
    client: TestClient, bot_inbox: Inbox, fake_graph: FakeGraphAPI
) -> None:
    msg = await customer_says(client, "PSID-E", "phí ship bao nhiêu vậy shop")
    answer = (await eventually(lambda: bot_said(msg.conversation_id, "faq")))[0]
    # The page's echo of the bot's own answer, and a message another tool of the page sent, come back as echoes.
    await post_webhook(
        client, messenger_echo(PAGE_ID, "PSID-E", "mid.echo-bot", answer.text, now_ms(), metadata=f"hopthu:{answer.id}")
    )
    await post_webhook(
        client, messenger_echo(PAGE_ID, "PSID-E", "mid.echo-other", "Shop có ship COD nha", now_ms(), app_id="999")
    )
    await eventually(lambda: Message.get_or_none(external_id="mid.echo-other"))
    probe = await customer_says(client, "PSID-Z", "Chào shop")  # a later message: the echoes are handled by now
    assert probe.id > answer.id
    bot_messages = await bot_said(msg.conversation_id)
    assert [m.extra["bot"]["kind"] for m in bot_messages] == ["welcome", "faq"]


async def test_away_message_only_outside_business_hours(client: TestClient, bot_inbox: Inbox) -> None:
    inside = await customer_says(client, "PSID-IN", "Chào shop")
    assert await bot_said(inside.conversation_id, "away") == []
    client.app[BOTS].hours_open = lambda inbox, at: False
    outside = await customer_says(client, "PSID-OUT", "Chào shop")
    away = await bot_said(outside.conversation_id, "away")
    assert len(away) == 1 and DEFAULT_VARIABLES["store.hours"] in away[0].text
    await customer_says(client, "PSID-OUT", "shop ơi")
    assert len(await bot_said(outside.conversation_id, "away")) == 1  # once, not on every message


async def test_bot_outside_the_24_hour_window_is_refused_not_tagged(
    client: TestClient, bot_inbox: Inbox, fake_graph: FakeGraphAPI
) -> None:
    two_days_ago = now_ms() - 2 * 24 * 3600 * 1000
    msg = await customer_says(client, "PSID-OLD", "phí ship bao nhiêu vậy shop", ts_ms=two_days_ago)
    faq = (await eventually(lambda: bot_said(msg.conversation_id, "faq")))[0]
    assert faq.delivery_status == "failed" and "24" in faq.failure_reason
    assert not any(body.get("tag") == "HUMAN_AGENT" for body in fake_graph.sent_messages())


async def test_rate_limit_per_conversation(client: TestClient, bot_inbox: Inbox) -> None:
    await bot_inbox.refresh_from_db()
    bot_inbox.settings["bot"] |= {"max_replies_per_minute": 2, "welcome_message": None}
    await bot_inbox.save()
    client.app[BOTS].forget()
    first = await customer_says(client, "PSID-RL", "phí ship bao nhiêu vậy shop")
    for question in ("shop ở đâu vậy", "shop mở cửa mấy giờ", "có cod không shop"):
        await customer_says(client, "PSID-RL", question)
    assert len(await bot_said(first.conversation_id)) == 2


async def test_bot_off_by_default(client: TestClient, inbox: Inbox) -> None:
    msg = await customer_says(client, "PSID-OFF", "phí ship bao nhiêu vậy shop")
    assert await bot_said(msg.conversation_id) == []
    assert not await BotSession.exists(conversation_id=msg.conversation_id)


async def test_away_message_follows_the_inbox_business_hours(client: TestClient, bot_inbox: Inbox) -> None:
    """Today declared a holiday in the inbox's own settings (Asia/Ho_Chi_Minh): the away message goes out."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    today = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat()
    await bot_inbox.refresh_from_db()
    bot_inbox.settings["business_hours"] = {
        "days": {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        "holidays": [today],
    }
    await bot_inbox.save()
    client.app[BOTS].forget()
    msg = await customer_says(client, "PSID-HOL", "Chào shop")
    assert len(await bot_said(msg.conversation_id, "away")) == 1


async def test_order_code_in_the_question_gets_that_order_status(client: TestClient, bot_inbox: Inbox) -> None:
    from datetime import UTC, datetime

    from contacts.models import Order

    first = await customer_says(client, "PSID-ORD", "Chào shop")
    conv = await Conversation.get(id=first.conversation_id)
    await Order.create(
        contact_id=conv.contact_id, status="shipped", external_id="DH123456", ordered_at=datetime.now(UTC)
    )
    stranger = await customer_says(client, "PSID-STR", "Chào shop")
    stranger_conv = await Conversation.get(id=stranger.conversation_id)
    await Order.create(
        contact_id=stranger_conv.contact_id, status="cancelled", external_id="DH999999", ordered_at=datetime.now(UTC)
    )

    await customer_says(client, "PSID-ORD", "đơn DH123456 của mình tới đâu rồi shop")
    answer = (await bot_said(conv.id, "faq"))[-1]
    assert "DH123456" in answer.text and "đang được giao" in answer.text
    # Someone else's order code gets the generic answer: the bot never tells one customer about another's order.
    await customer_says(client, "PSID-ORD", "thế đơn DH999999 tới đâu rồi shop")
    other = (await bot_said(conv.id, "faq"))[-1]
    assert "DH999999" not in other.text and "huỷ" not in other.text
