"""Facebook Page comments end to end: feed webhooks → comment conversations, edits, removals, the page's own
comments, public / private replies, hide / unhide / delete and auto-hide — against the local fake Graph API."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient

from agents import reports
from agents.models import MetricFact
from channels.fakes import FakeGraphAPI, messenger_text, page_comment, page_reaction
from contacts.models import ContactIdentity
from inbox.api import comments as comments_api
from inbox.app import create_app
from inbox.autohide import COMMENTS
from inbox.bus import Event
from inbox.config import Settings
from inbox.keys import BUS, OUTBOX
from inbox.models import Conversation, ConversationEvent, DeadLetter, InboundEvent, Inbox, Message, OutboxItem
from tests.conftest import (
    PAGE_ID,
    PAGE_TOKEN,
    Staff,
    eventually,
    make_inbox,
    now_ms,
    post_webhook,
    published_since,
    quick_user,
)

POST = f"{PAGE_ID}_712750021053074"
BIG_USER = "24260000000000001234"  # beyond 2^53: must survive as a string
OTHER_USER = "24260000000000005678"


def comment_id(n: int) -> str:
    return f"712750021053074_10638249115378{n:02d}"


def now_s() -> int:
    return int(time.time())


async def comment(
    client: TestClient, n: int, text: str | None, *, user: str = BIG_USER, created: int | None = None, **kw
) -> Message | None:
    created = created if created is not None else now_s()
    body = page_comment(PAGE_ID, kw.pop("post", POST), comment_id(n), user, text, created, **kw)
    response = await post_webhook(client, body)
    assert response.status == 200, await response.text()
    return await eventually(lambda: Message.get_or_none(external_id=comment_id(n)))


async def processed(client: TestClient) -> None:
    await eventually(lambda: _all_processed())


async def _all_processed() -> bool:
    return not await InboundEvent.filter(processed=False).exists()


@pytest.fixture
async def agent(client: TestClient, inbox: Inbox) -> Staff:
    return await quick_user("agent", inboxes=[inbox])


async def test_a_comment_opens_a_comment_conversation_with_the_post_as_context(
    client: TestClient, inbox: Inbox, fake_graph: FakeGraphAPI
) -> None:
    fake_graph.posts[POST] = {"message": "Áo thun cotton mới về, đủ size S–XL", "permalink_url": "https://fb.com/p/1"}
    created = 1707211876  # seconds, as the feed sends them
    msg = await comment(client, 1, "Áo này giá bao nhiêu shop?", created=created, name="Trần Thị Lan")
    assert msg.created_at == datetime.fromtimestamp(created, UTC)  # not 1970: seconds, not milliseconds
    assert msg.direction == "in" and msg.text == "Áo này giá bao nhiêu shop?"
    assert msg.extra["comment"]["post_id"] == POST
    conv = await Conversation.get(id=msg.conversation_id).prefetch_related("contact")
    assert conv.thread_key == f"post:{POST}"
    assert conv.contact.name == "Trần Thị Lan"
    identity = await ContactIdentity.get(id=conv.identity_id)
    assert identity.external_id == BIG_USER

    async def context_filled() -> dict | None:
        c = await Conversation.get(id=conv.id)
        return c.thread_context if (c.thread_context or {}).get("post_text") else None

    context = await eventually(context_filled)
    assert context == {
        "post_id": POST,
        "post_text": "Áo thun cotton mới về, đủ size S–XL",
        "permalink": "https://fb.com/p/1",
    }


async def test_a_nul_character_in_graph_answers_about_a_comment_is_stored_readably(
    client: TestClient, inbox: Inbox, fake_graph: FakeGraphAPI
) -> None:
    """PostgreSQL's text and jsonb cannot hold U+0000. The post's text and link (the thread's context) and the
    reason an auto-hide was refused are stored with U+FFFD in its place, not lost to a failed write."""
    fake_graph.posts[POST] = {"message": "Áo\x00 thun mới về", "permalink_url": "https://fb.com/p/1\x00"}
    refusal = {"message": "(#200) Permissions\x00 error", "type": "OAuthException", "code": 200}
    fake_graph.fail_next(status=400, error=refusal)  # the auto-hide of the comment below
    msg = await comment(client, 1, "sđt em 0912 345 678")

    async def context_filled() -> dict | None:
        c = await Conversation.get(id=msg.conversation_id)
        return c.thread_context if (c.thread_context or {}).get("post_text") else None

    async def hide_failed() -> dict | None:
        await msg.refresh_from_db()
        auto_hide = msg.extra["comment"].get("auto_hide") or {}
        return auto_hide if auto_hide.get("state") == "failed" else None

    context = await eventually(context_filled)
    assert (context["post_text"], context["permalink"]) == ("Áo\ufffd thun mới về", "https://fb.com/p/1\ufffd")
    assert "(#200) Permissions\ufffd error" in (await eventually(hide_failed))["reason"]


async def test_one_conversation_per_customer_per_post_and_messenger_shares_the_contact(
    client: TestClient, inbox: Inbox
) -> None:
    first = await comment(client, 1, "Còn size M không?")
    again = await comment(client, 2, "Màu trắng nha", parent_id=comment_id(1))  # a reply in the same thread
    other_post = await comment(client, 3, "Cái này nữa", post=f"{PAGE_ID}_999")
    someone_else = await comment(client, 4, "Mình cũng hỏi", user=OTHER_USER)
    assert first.conversation_id == again.conversation_id
    assert len({first.conversation_id, other_post.conversation_id, someone_else.conversation_id}) == 3
    # The same page-scoped id writing on Messenger: the same contact, in its own direct-message thread.
    await post_webhook(client, messenger_text(PAGE_ID, BIG_USER, "m_dm1", "Shop ơi", now_ms()))
    dm = await eventually(lambda: Message.get_or_none(external_id="m_dm1"))
    convs = {c.id: c for c in await Conversation.all()}
    assert convs[dm.conversation_id].thread_key == "dm"
    assert convs[dm.conversation_id].contact_id == convs[first.conversation_id].contact_id
    assert convs[someone_else.conversation_id].contact_id != convs[first.conversation_id].contact_id


async def test_redelivered_comment_is_stored_once(client: TestClient, inbox: Inbox) -> None:
    created = now_s()
    await comment(client, 1, "Ship COD không?", created=created)
    await comment(client, 1, "Ship COD không?", created=created)
    await processed(client)
    assert await Message.filter(external_id=comment_id(1)).count() == 1
    conv = await Conversation.get()
    assert conv.unread_count == 1


async def test_edit_keeps_the_original_text_in_history_and_redelivery_changes_nothing(
    client: TestClient, inbox: Inbox
) -> None:
    created = now_s() - 60
    msg = await comment(client, 1, "Giá bao nhiu", created=created)
    edit = page_comment(PAGE_ID, POST, comment_id(1), BIG_USER, "Giá bao nhiêu ạ?", created, verb="edited",
                        entry_time_s=created + 30)  # fmt: skip
    for _ in range(2):  # the same delivery twice
        assert (await post_webhook(client, edit)).status == 200
    await processed(client)
    await msg.refresh_from_db()
    assert msg.text == "Giá bao nhiêu ạ?"
    assert [h["text"] for h in msg.edit_history] == ["Giá bao nhiu"]
    later = page_comment(PAGE_ID, POST, comment_id(1), BIG_USER, "Giá bao nhiêu vậy shop?", created, verb="edited",
                         entry_time_s=created + 50)  # fmt: skip
    await post_webhook(client, later)
    await processed(client)
    await msg.refresh_from_db()
    assert msg.text == "Giá bao nhiêu vậy shop?"
    assert [h["text"] for h in msg.edit_history] == ["Giá bao nhiu", "Giá bao nhiêu ạ?"]
    assert await ConversationEvent.filter(kind="message_edited").count() == 2


async def _edit(client: TestClient, n: int, text: str, created: int, edited: int) -> None:
    body = page_comment(PAGE_ID, POST, comment_id(n), BIG_USER, text, created, verb="edited", entry_time_s=edited)
    assert (await post_webhook(client, body)).status == 200


async def _analysed(msg: Message, text: str) -> Message | None:
    """The message once the analysis of `text` (its current text) is stored."""
    return await Message.get_or_none(id=msg.id, text=text, sentiment__not_isnull=True)


async def test_an_edit_is_analysed_again_and_agents_get_the_new_analysis(client: TestClient, inbox: Inbox) -> None:
    """The analysis of the old text would be wrong for the new one: it is read again and pushed. The conversation's
    latest sentiment stays that of its newest message, even when an older one is edited."""
    bus = client.app[BUS]
    created = now_s() - 120
    happy = "Áo đẹp quá, cảm ơn shop nhiều nha 😍"
    first = await comment(client, 1, happy, created=created)
    await eventually(lambda: _analysed(first, happy), timeout=20)
    angry = "giao sai màu rồi, shop làm ăn chán quá 😡"
    second = await comment(client, 2, angry, created=created + 10, parent_id=comment_id(1))
    await eventually(lambda: _analysed(second, angry), timeout=20)
    conv = await Conversation.get(id=first.conversation_id)
    assert second.conversation_id == conv.id and conv.sentiment == "negative"
    since = bus.last_seq

    edited = "Áo đẹp quá, cảm ơn shop nhiều nha 😍 sđt em 0912 345 678"
    await _edit(client, 1, edited, created, created + 60)
    again = await eventually(lambda: _analysed(first, edited), timeout=20)
    assert [e["normalized"] for e in again.entities if e["type"] == "phone"] == ["+84912345678"]
    assert again.sentiment == "positive"
    conv = await Conversation.get(id=conv.id)
    assert (conv.sentiment, conv.worst_sentiment) == ("negative", "negative")  # the newest message's, not the edit's

    async def pushed() -> list[Event]:
        replay = published_since(bus, since)
        frames = [e for e in replay if e.type == "message.updated" and e.data["id"] == first.id]
        return frames if frames and frames[-1].data["sentiment"] else []

    frames = await eventually(pushed)
    assert frames[0].data["text"] == edited and frames[0].data["sentiment"] is None  # the edit, before NLP read it
    assert any(e["type"] == "phone" for e in frames[-1].data["entities"])

    # The newest message edited into a happy one: the conversation's summary changes, and agents are told.
    calmer = "Dạ em nhận được hàng rồi, đẹp lắm, cảm ơn shop nha 😍"
    since = bus.last_seq
    await _edit(client, 2, calmer, created + 10, created + 90)
    await eventually(lambda: _analysed(second, calmer), timeout=20)

    async def summary_pushed() -> list[Event]:
        replay = published_since(bus, since)
        # An earlier analysis's frame may come late: wait for the one with the new sentiment.
        return [e for e in replay if e.type == "conversation.updated" and e.data["id"] == conv.id
                and e.data["sentiment"] == "positive"]  # fmt: skip

    update = (await eventually(summary_pushed))[-1]
    assert update.data["sentiment"] == "positive"
    assert (await Conversation.get(id=conv.id)).sentiment == "positive"


async def test_an_edit_that_leaves_no_text_takes_its_analysis_out_of_the_conversation(
    client: TestClient, inbox: Inbox
) -> None:
    """A photo comment whose angry caption is deleted: the conversation no longer shows an angry customer."""
    bus = client.app[BUS]
    created = now_s() - 120
    angry = "giao sai màu rồi, shop làm ăn chán quá 😡"
    msg = await comment(client, 1, angry, created=created)
    await eventually(lambda: _analysed(msg, angry), timeout=20)
    conv = await Conversation.get(id=msg.conversation_id)
    assert (conv.sentiment, conv.worst_sentiment) == ("negative", "negative") and conv.intent is not None
    since = bus.last_seq

    await _edit(client, 1, "", created, created + 60)

    async def cleared_summary_pushed() -> list[Event]:
        # A frame of the first analysis may still come after `since`: wait for the one the edit brings.
        replay = published_since(bus, since)
        return [e for e in replay if e.type == "conversation.updated" and e.data["id"] == conv.id
                and e.data["sentiment"] is None]  # fmt: skip

    update = (await eventually(cleared_summary_pushed))[-1]
    assert (update.data["sentiment"], update.data["worst_sentiment"], update.data["intent"]) == (None, None, None)
    conv = await Conversation.get(id=conv.id)
    assert (conv.sentiment, conv.worst_sentiment, conv.intent) == (None, None, None)
    await msg.refresh_from_db()
    assert msg.text == "" and msg.sentiment is None and msg.edit_history[-1]["text"] == angry


async def test_a_comment_edited_to_show_a_phone_number_is_hidden(
    client: TestClient, inbox: Inbox, fake_graph: FakeGraphAPI
) -> None:
    """Competitors read edits too: a customer who adds their number to a comment afterwards is hidden then."""
    created = now_s() - 60
    msg = await comment(client, 1, "Áo này còn size M không shop?", created=created)
    await eventually(lambda: _analysed(msg, "Áo này còn size M không shop?"), timeout=20)
    await processed(client)
    await client.app[COMMENTS].idle()
    assert fake_graph.hidden == {}

    await _edit(client, 1, "Áo này còn size M không shop? Gọi em 0912.345.678 nha", created, created + 30)
    hidden = await eventually(lambda: _auto_hidden(msg))
    assert fake_graph.hidden[comment_id(1)] is True
    assert hidden.extra["comment"]["auto_hide"]["found"] == ["phone"]
    assert hidden.extra["comment"]["hidden"] is True and hidden.extra["comment"]["auto_hidden"] is True


async def test_removed_comment_is_kept_and_marked(client: TestClient, inbox: Inbox) -> None:
    msg = await comment(client, 1, "sdt mình 0912345678", created=now_s() - 10)
    removal = page_comment(PAGE_ID, POST, comment_id(1), BIG_USER, None, now_s(), verb="remove")
    assert (await post_webhook(client, removal)).status == 200
    await processed(client)
    await msg.refresh_from_db()
    assert msg.removed_at is not None and msg.text == "sdt mình 0912345678"


async def test_page_own_comment_is_an_outgoing_message_in_the_customers_thread(
    client: TestClient, inbox: Inbox
) -> None:
    msg = await comment(client, 1, "Còn hàng không shop?")
    reply = await comment(client, 2, "Dạ còn ạ, bạn inbox shop nhé", user=PAGE_ID, parent_id=comment_id(1))
    assert reply.direction == "out" and reply.sender_type == "agent" and reply.origin == "platform"
    assert reply.conversation_id == msg.conversation_id
    conv = await Conversation.get(id=msg.conversation_id)
    assert conv.unread_count == 1  # the page's own words are not something to read
    assert await ContactIdentity.filter(external_id=PAGE_ID).count() == 0  # the page is never a customer


async def test_reactions_and_likes_are_ignored_without_error(client: TestClient, inbox: Inbox) -> None:
    assert (await post_webhook(client, page_reaction(PAGE_ID, POST, BIG_USER, now_s()))).status == 200
    like = page_comment(PAGE_ID, POST, comment_id(1), BIG_USER, None, now_s(), item="like")
    assert (await post_webhook(client, like)).status == 200
    await processed(client)
    assert await Message.all().count() == 0 and await DeadLetter.all().count() == 0


async def test_unknown_feed_change_goes_to_dead_letters_with_200(client: TestClient, inbox: Inbox) -> None:
    odd = page_comment(PAGE_ID, POST, comment_id(1), BIG_USER, "x", now_s(), item="comment", verb="teleport")
    assert (await post_webhook(client, odd)).status == 200
    other_field = {"object": "page", "entry": [{"id": PAGE_ID, "time": now_s(),
                                                "changes": [{"field": "mention", "value": {"x": 1}}]}]}  # fmt: skip
    assert (await post_webhook(client, other_field)).status == 200
    letters = await eventually(lambda: _count_letters(2))
    assert {d.reason for d in letters} == {"unsupported comment verb 'teleport'", "unsupported change field 'mention'"}
    assert all(d.inbox_id == inbox.id for d in letters)


async def _count_letters(n: int) -> list[DeadLetter] | None:
    letters = await DeadLetter.all()
    return letters if len(letters) == n else None


async def test_bad_signature_on_a_comment_is_refused_and_nothing_stored(client: TestClient, inbox: Inbox) -> None:
    body = page_comment(PAGE_ID, POST, comment_id(1), BIG_USER, "hi", now_s())
    assert (await post_webhook(client, body, secret="wrong-secret")).status == 401
    assert await InboundEvent.all().count() == 0


# ---------------------------------------------------------------------------------------------- agent actions


async def test_public_reply_goes_under_the_comment_and_its_echo_is_not_duplicated(
    client: TestClient, inbox: Inbox, agent: Staff, fake_graph: FakeGraphAPI
) -> None:
    msg = await comment(client, 1, "Còn size L không?")
    response = await client.post(f"/api/messages/{msg.id}/comment/reply", json={"text": "Dạ còn ạ"},
                                 headers=agent.headers)  # fmt: skip
    assert response.status == 201, await response.text()
    sent = await response.json()
    assert sent["delivery_status"] == "sent" and sent["conversation_id"] == msg.conversation_id
    assert fake_graph.comment_replies() == [(comment_id(1), "Dạ còn ạ")]
    assert fake_graph.requests[-1].query["access_token"] == PAGE_TOKEN
    # Facebook reports the page's new comment back through the feed: the same message, not a second one.
    echo = page_comment(PAGE_ID, POST, sent["external_id"], PAGE_ID, "Dạ còn ạ", now_s(), parent_id=comment_id(1))
    assert (await post_webhook(client, echo)).status == 200
    await processed(client)
    assert await Message.filter(conversation_id=msg.conversation_id, direction="out").count() == 1


def _reply_id(n: int) -> str:
    return f"712750021053074_9{n:08d}"  # the id the fake Graph API gives the n-th comment reply on POST


async def _outbox_done(message_id: int) -> bool:
    return (await OutboxItem.get(message_id=message_id)).state != "pending"


async def test_a_public_reply_echoed_before_its_answer_is_one_message(
    client: TestClient, inbox: Inbox, agent: Staff, fake_graph: FakeGraphAPI
) -> None:
    """The page's new comment can come back through the feed before Graph answers the reply: it confirms the
    agent's reply (matched by its thread and text) instead of showing a second copy."""
    msg = await comment(client, 1, "Còn size L không?")
    fake_graph.hold_comment_replies = asyncio.Event()

    async def reply() -> dict:
        response = await client.post(f"/api/messages/{msg.id}/comment/reply", json={"text": "Dạ còn ạ"},
                                     headers=agent.headers)  # fmt: skip
        return await response.json()

    sending = asyncio.ensure_future(reply())
    await eventually(lambda: _replies_seen(fake_graph))
    echo = page_comment(PAGE_ID, POST, _reply_id(1), PAGE_ID, "Dạ còn ạ", now_s(), parent_id=comment_id(1))
    assert (await post_webhook(client, echo)).status == 200
    await processed(client)
    [shown] = await Message.filter(conversation_id=msg.conversation_id, direction="out")
    assert (shown.origin, shown.delivery_status, shown.external_id) == ("hopthu", "sent", _reply_id(1))

    fake_graph.hold_comment_replies.set()  # Graph answers now, with the same id
    assert (await sending)["external_id"] == _reply_id(1)
    await eventually(lambda: _outbox_done(shown.id))
    [shown] = await Message.filter(conversation_id=msg.conversation_id, direction="out")
    assert (shown.delivery_status, shown.external_id) == ("sent", _reply_id(1))


async def test_a_public_reply_that_went_through_despite_a_500_is_not_posted_again(
    aiohttp_client, settings: Settings, fake_graph: FakeGraphAPI
) -> None:
    """Graph answered 500 but the comment was posted, and its echo came: the retry must not post it twice."""
    # A long backoff: the retry comes only when the test says so (below), after the echo.
    client = await aiohttp_client(create_app(replace(settings, outbox_base_delay=30.0)))
    agent = await quick_user("agent", inboxes=[await make_inbox()])
    msg = await comment(client, 1, "Ship Đà Nẵng bao lâu?")
    fake_graph.fail_next(1, status=500)
    response = await client.post(f"/api/messages/{msg.id}/comment/reply", json={"text": "Dạ 2-3 ngày ạ"},
                                 headers=agent.headers)  # fmt: skip
    pending = await response.json()
    assert pending["delivery_status"] == "pending"

    echo = page_comment(PAGE_ID, POST, "712750021053074_977", PAGE_ID, "Dạ 2-3 ngày ạ", now_s(),
                        parent_id=comment_id(1))  # fmt: skip
    assert (await post_webhook(client, echo)).status == 200
    await processed(client)
    # The retry falls due.
    await OutboxItem.filter(message_id=pending["id"]).update(next_attempt_at=datetime.now(UTC))
    client.app[OUTBOX].notify()
    await eventually(lambda: _outbox_done(pending["id"]))

    assert fake_graph.comment_replies() == [(comment_id(1), "Dạ 2-3 ngày ạ")]  # the one that went through
    [shown] = await Message.filter(conversation_id=msg.conversation_id, direction="out")
    assert (shown.id, shown.delivery_status, shown.external_id) == (pending["id"], "sent", "712750021053074_977")


async def _replies_seen(fake: FakeGraphAPI) -> bool:
    return bool(fake.comment_replies())


async def test_a_plain_reply_in_a_comment_thread_answers_the_latest_comment(
    client: TestClient, inbox: Inbox, agent: Staff, fake_graph: FakeGraphAPI
) -> None:
    await comment(client, 1, "Size M?", created=now_s() - 5)
    latest = await comment(client, 2, "Màu đen nha", created=now_s())
    response = await client.post(f"/api/conversations/{latest.conversation_id}/messages", json={"text": "Dạ có ạ"},
                                 headers=agent.headers)  # fmt: skip
    assert (await response.json())["delivery_status"] == "sent"
    assert fake_graph.comment_replies() == [(comment_id(2), "Dạ có ạ")]
    assert fake_graph.sent_messages() == []  # not a Messenger message


async def test_private_reply_reaches_messenger_by_comment_id_and_the_thread_continues(
    client: TestClient, inbox: Inbox, agent: Staff, fake_graph: FakeGraphAPI
) -> None:
    psid = "7000000000000000123"  # Facebook answers with the commenter's Messenger id
    fake_graph.comment_authors[comment_id(1)] = psid
    msg = await comment(client, 1, "Inbox giá giúp mình")
    response = await client.post(f"/api/messages/{msg.id}/comment/private-reply", json={"text": "Dạ giá 250k ạ"},
                                 headers=agent.headers)  # fmt: skip
    assert response.status == 201, await response.text()
    sent = await response.json()
    assert sent["delivery_status"] == "sent"
    assert fake_graph.sent_messages()[-1]["recipient"] == {"comment_id": comment_id(1)}
    dm = await Conversation.get(id=sent["conversation_id"])
    assert dm.thread_key == "dm" and dm.id != msg.conversation_id
    comment_conv = await Conversation.get(id=msg.conversation_id)
    assert dm.contact_id == comment_conv.contact_id
    # The customer answers on Messenger with that PSID: the same conversation, the same contact.
    await post_webhook(client, messenger_text(PAGE_ID, psid, "m_answer", "Ok shop, lấy 1 cái", now_ms()))
    answer = await eventually(lambda: Message.get_or_none(external_id="m_answer"))
    assert answer.conversation_id == dm.id
    # A second private reply to the same comment is refused with a reason, and nothing is sent.
    calls = len(fake_graph.sent_messages())
    again = await client.post(f"/api/messages/{msg.id}/comment/private-reply", json={"text": "Nhắc lại"},
                              headers=agent.headers)  # fmt: skip
    body = await again.json()
    assert again.status == 201 and body["delivery_status"] == "failed" and "một lần" in body["failure_reason"]
    assert len(fake_graph.sent_messages()) == calls


async def test_private_reply_to_a_customer_already_on_messenger_joins_that_conversation(
    client: TestClient, inbox: Inbox, agent: Staff, fake_graph: FakeGraphAPI
) -> None:
    """The commenter wrote to the page on Messenger before, under their PSID (not the comment's author id): the
    private reply lands in that conversation, and no empty Messenger conversation is left in the list."""
    psid = "7000000000000000123"
    await post_webhook(client, messenger_text(PAGE_ID, psid, "m_before", "Shop ơi áo còn không", now_ms()))
    earlier = await eventually(lambda: Message.get_or_none(external_id="m_before"))
    fake_graph.comment_authors[comment_id(1)] = psid
    msg = await comment(client, 1, "Inbox giá giúp mình")
    since = client.app[BUS].last_seq
    fake_graph.delay = 0.5  # the reports count the reply where it waits to go out, before the PSID is known
    url = f"/api/messages/{msg.id}/comment/private-reply"
    replying = asyncio.create_task(client.post(url, json={"text": "Dạ giá 250k ạ"}, headers=agent.headers))
    await eventually(lambda: OutboxItem.exists())
    await reports.project_all()
    sent = await (await replying).json()
    fake_graph.delay = 0
    assert sent["delivery_status"] == "sent"
    assert sent["conversation_id"] == earlier.conversation_id
    texts = await Message.filter(conversation_id=earlier.conversation_id).order_by("id").values_list("text", flat=True)
    assert texts == ["Shop ơi áo còn không", "Dạ giá 250k ạ"]
    listed = await (await client.get("/api/conversations", headers=agent.headers)).json()
    assert sorted(c["id"] for c in listed["items"]) == sorted([earlier.conversation_id, msg.conversation_id])
    dm = next(c for c in listed["items"] if c["id"] == earlier.conversation_id)
    assert dm["last_message_preview"] == "Dạ giá 250k ạ"
    assert await Conversation.filter(messages=None).count() == 0  # no conversation without a message
    await reports.project_all()  # the reply counts once, in the conversation it joined
    facts = await MetricFact.filter(kind="message").values_list("conversation_id", flat=True)
    assert facts == [earlier.conversation_id]
    # Agents' screens drop the placeholder that the pending reply was shown in, and see the thread it joined.
    kinds = {(e.type, (e.data or {}).get("id")) for e in published_since(client.app[BUS], since)}
    assert ("conversation.updated", earlier.conversation_id) in kinds
    assert any(kind == "conversation.deleted" for kind, _ in kinds)
    # A second private reply, on another comment, joins the same conversation too.
    fake_graph.comment_authors[comment_id(2)] = psid
    other = await comment(client, 2, "Còn màu đen không?")
    again = await client.post(f"/api/messages/{other.id}/comment/private-reply", json={"text": "Dạ còn ạ"},
                              headers=agent.headers)  # fmt: skip
    assert (await again.json())["conversation_id"] == earlier.conversation_id
    assert await Conversation.filter(thread_key="dm").count() == 1


async def test_a_hide_by_another_agent_during_a_private_reply_is_kept(
    client: TestClient, inbox: Inbox, agent: Staff, fake_graph: FakeGraphAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two agents act on one comment at once: the private reply's mark must not undo the other agent's hide
    (hopthu would show a comment as visible that Facebook hides, and the next hide would look like a no-op)."""
    fake_graph.comment_authors[comment_id(1)] = "7000000000000000123"
    msg = await comment(client, 1, "Inbox giá giúp mình")
    other = await quick_user("agent", inboxes=[inbox])
    send_outgoing = comments_api.actions.send_outgoing

    async def sent_while_the_other_agent_hides(*args: object, **kwargs: object) -> Message:
        hidden = await client.post(f"/api/messages/{msg.id}/comment/hide", json={}, headers=other.headers)
        assert hidden.status == 200
        return await send_outgoing(*args, **kwargs)

    monkeypatch.setattr(comments_api.actions, "send_outgoing", sent_while_the_other_agent_hides)
    response = await client.post(f"/api/messages/{msg.id}/comment/private-reply", json={"text": "Dạ giá 250k ạ"},
                                 headers=agent.headers)  # fmt: skip
    assert response.status == 201 and (await response.json())["delivery_status"] == "sent"
    await msg.refresh_from_db()
    assert msg.extra["comment"]["hidden"] is True and fake_graph.hidden[comment_id(1)] is True
    assert msg.extra["comment"]["private_reply_message_id"] == (await response.json())["id"]


async def test_private_reply_refused_by_facebook_says_why_in_terms_of_private_replies(
    client: TestClient, inbox: Inbox, agent: Staff, fake_graph: FakeGraphAPI
) -> None:
    """Someone already answered the comment privately from Meta Business Suite: Facebook refuses with its window
    error, and the reason speaks of private replies, not of Messenger's 24 hours."""
    msg = await comment(client, 1, "Inbox giá giúp mình")
    fake_graph.privately_answered.add(comment_id(1))
    response = await client.post(f"/api/messages/{msg.id}/comment/private-reply", json={"text": "Dạ giá 250k ạ"},
                                 headers=agent.headers)  # fmt: skip
    body = await response.json()
    assert body["delivery_status"] == "failed"
    assert "một lần" in body["failure_reason"] and "once per comment" in body["failure_reason"]
    assert "24" not in body["failure_reason"]


async def test_private_reply_after_seven_days_is_refused_before_sending(
    client: TestClient, inbox: Inbox, agent: Staff, fake_graph: FakeGraphAPI
) -> None:
    msg = await comment(client, 1, "Còn hàng không?", created=now_s() - 8 * 86400)
    response = await client.post(f"/api/messages/{msg.id}/comment/private-reply", json={"text": "Dạ còn"},
                                 headers=agent.headers)  # fmt: skip
    body = await response.json()
    assert body["delivery_status"] == "failed" and "7 ngày" in body["failure_reason"]
    assert fake_graph.sent_messages() == []


async def test_hide_unhide_and_delete(client: TestClient, inbox: Inbox, agent: Staff, fake_graph: FakeGraphAPI) -> None:
    msg = await comment(client, 1, "Shop lừa đảo")
    hide = await client.post(f"/api/messages/{msg.id}/comment/hide", json={}, headers=agent.headers)
    assert hide.status == 200 and (await hide.json())["extra"]["comment"]["hidden"] is True
    assert fake_graph.hidden[comment_id(1)] is True
    unhide = await client.post(f"/api/messages/{msg.id}/comment/hide", json={"hidden": False}, headers=agent.headers)
    assert (await unhide.json())["extra"]["comment"]["hidden"] is False
    assert fake_graph.hidden[comment_id(1)] is False
    deleted = await client.delete(f"/api/messages/{msg.id}/comment", headers=agent.headers)
    assert deleted.status == 200 and (await deleted.json())["removed_at"] is not None
    assert comment_id(1) in fake_graph.deleted
    await msg.refresh_from_db()
    assert msg.removed_at is not None and msg.text == "Shop lừa đảo"
    kinds = await ConversationEvent.filter(message_id=msg.id).values_list("kind", flat=True)
    assert {"comment_hidden", "comment_unhidden", "comment_deleted"} <= set(kinds)


async def test_a_refused_hide_is_an_error_and_changes_nothing(
    client: TestClient, inbox: Inbox, agent: Staff, fake_graph: FakeGraphAPI
) -> None:
    msg = await comment(client, 1, "abc")
    fake_graph.fail_next(
        status=400, error={"message": "(#200) Permissions error", "type": "OAuthException", "code": 200}
    )
    response = await client.post(f"/api/messages/{msg.id}/comment/hide", json={}, headers=agent.headers)
    assert response.status == 502 and (await response.json())["error"]["code"] == "platform_refused"
    await msg.refresh_from_db()
    assert msg.extra["comment"]["hidden"] is False


async def test_comment_actions_refuse_a_messenger_message(client: TestClient, inbox: Inbox, agent: Staff) -> None:
    await post_webhook(client, messenger_text(PAGE_ID, BIG_USER, "m_1", "hi", now_ms()))
    dm = await eventually(lambda: Message.get_or_none(external_id="m_1"))
    response = await client.post(f"/api/messages/{dm.id}/comment/hide", json={}, headers=agent.headers)
    assert response.status == 409


# ---------------------------------------------------------------------------------------------- auto-hide


async def _auto_hidden(msg: Message) -> Message | None:
    await msg.refresh_from_db()
    return msg if (msg.extra["comment"].get("auto_hide") or {}).get("state") == "hidden" else None


@pytest.mark.parametrize(
    "text",
    ["0912 345 678", "0912.345.678", "+84 912345678", "84912345678", "Em lấy 1 cái, sđt 0912 345 678 nha",
     "Giao giúp em tới 12 Nguyễn Trãi, phường 2, quận 5, TP HCM"],
)  # fmt: skip
async def test_comments_with_a_phone_or_an_address_are_hidden_at_once(
    client: TestClient, inbox: Inbox, fake_graph: FakeGraphAPI, text: str
) -> None:
    msg = await comment(client, 1, text)
    hidden = await eventually(lambda: _auto_hidden(msg))
    assert fake_graph.hidden[comment_id(1)] is True
    assert hidden.extra["comment"]["hidden"] is True and hidden.extra["comment"]["auto_hidden"] is True
    assert set(hidden.extra["comment"]["auto_hide"]["found"]) & {"phone", "address"}


async def test_ordinary_comments_stay_visible_and_the_setting_turns_auto_hide_off(
    client: TestClient, inbox: Inbox, fake_graph: FakeGraphAPI
) -> None:
    admin = await quick_user("admin")
    await comment(client, 1, "Giá 150000 hả shop, mua 2 cái")
    off = await client.put(
        f"/api/inboxes/{inbox.id}/comment-settings", json={"auto_hide": False}, headers=admin.headers
    )
    assert off.status == 200
    client.app[COMMENTS]._inboxes.clear()  # the worker caches settings for 30 s
    await comment(client, 2, "sdt 0912345678")
    await processed(client)
    await client.app[COMMENTS].idle()
    assert fake_graph.hidden == {}


async def test_a_failed_auto_hide_is_retried(client: TestClient, inbox: Inbox, fake_graph: FakeGraphAPI) -> None:
    client.app[COMMENTS]._retry_delay = 0.01
    fake_graph.fail_next(1)  # a transient Graph error
    msg = await comment(client, 1, "0912.345.678")
    await eventually(lambda: _auto_hidden(msg))
    assert fake_graph.hidden[comment_id(1)] is True


async def test_a_private_reply_that_failed_can_be_sent_again(client: TestClient, inbox: Inbox, fake_graph) -> None:
    """The first private reply failed (the page token had expired): it reached nobody, so once the token is fixed
    the agent may send it again; one that went out still closes the comment to a second one."""
    agent = await quick_user("agent", inboxes=[inbox])
    fake_graph.comment_authors[comment_id(1)] = "7000000000000000123"
    msg = await comment(client, 1, "Inbox giá giúp mình")
    expired = {"message": "Error validating access token: Session has expired", "type": "OAuthException",
               "code": 190, "error_subcode": 463}  # fmt: skip
    fake_graph.fail_next(1, status=400, error=expired)
    url = f"/api/messages/{msg.id}/comment/private-reply"
    first = await client.post(url, json={"text": "Dạ giá 250k ạ"}, headers=agent.headers)
    assert (await first.json())["delivery_status"] == "failed" and fake_graph.privately_answered == set()
    again = await client.post(url, json={"text": "Dạ giá 250k ạ"}, headers=agent.headers)
    body = await again.json()
    assert body["delivery_status"] == "sent", body["failure_reason"]
    assert fake_graph.privately_answered == {comment_id(1)}
    third = await client.post(url, json={"text": "Nhắc lại"}, headers=agent.headers)
    assert (await third.json())["delivery_status"] == "failed"  # one private reply per comment, as before
