"""Replies on their way out: retries with backoff, giving up with a readable reason, Messenger's 24 h / 7 day
windows, refusals from the platform, private notes, and the delivery status as agents watch it live.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from channels.fakes import FakeGraphAPI, messenger_delivery, messenger_echo
from inbox.app import create_app
from inbox.keys import BUS, OUTBOX
from inbox.models import Conversation, InboundEvent, Message, OutboxItem
from inbox.outbox import Outbox
from tests.conftest import PAGE_ID, Staff, eventually, make_inbox, make_user, now_ms, post_webhook, send_text

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
TRANSIENT = {
    "message": "An unexpected error has occurred. Please retry your request later.",
    "type": "OAuthException",
    "code": 2,
    "is_transient": True,
}
OUTSIDE_WINDOW = {
    "message": "(#10) This message is sent outside of allowed window.",
    "type": "OAuthException",
    "code": 10,
    "error_subcode": 2018278,
}


class FlakyGraph(FakeGraphAPI):
    """The fake Graph API, plus customers it cannot reach at all (every send to them answers 500), and `hold`:
    while set, the Send API takes the request and answers only once the event is set (a slow platform)."""

    def __init__(self) -> None:
        super().__init__()
        self.unreachable: set[str] = set()
        self.hold: asyncio.Event | None = None

    async def _send(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        if self.hold is not None:
            await self.hold.wait()
        psid = ((recorded.json or {}).get("recipient") or {}).get("id")
        if psid in self.unreachable:
            return web.json_response({"error": TRANSIENT}, status=500)
        failure = self._failure("send", recorded.query.get("access_token"))
        if failure is not None:
            return failure
        self._counter += 1
        return web.json_response({"recipient_id": str(psid), "message_id": f"m_{self._counter}"})


@pytest.fixture
async def fake_graph() -> AsyncIterator[FlakyGraph]:
    fake = FlakyGraph()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def agent(client, inbox) -> Staff:
    return await make_user(client, "agent", inboxes=[inbox])


async def open_conversation(client, psid: str, ts_ms: int | None = None) -> int:
    mid = f"m_{psid}_{ts_ms or 'now'}"
    await send_text(client, psid, mid, "Shop ơi cho mình hỏi", ts_ms)
    msg = await eventually(lambda: Message.get_or_none(external_id=mid))
    return msg.conversation_id


async def reply(client, staff: Staff, conv_id: int, text: str, **extra: Any) -> dict[str, Any]:
    response = await client.post(
        f"/api/conversations/{conv_id}/messages", json={"text": text, **extra}, headers=staff.headers
    )
    assert response.status == 201, await response.text()
    return await response.json()


def sends_to(fake: FakeGraphAPI, psid: str) -> list[dict[str, Any]]:
    return [body for body in fake.sent_messages() if body["recipient"]["id"] == psid]


async def status_is(message_id: int, *statuses: str) -> Message | None:
    msg = await Message.get(id=message_id)
    return msg if msg.delivery_status in statuses else None


# ---------------------------------------------------------------------------------------------- retries


async def test_reply_is_retried_through_platform_errors_and_sent_once(client, agent, fake_graph):
    conv_id = await open_conversation(client, "PSID-1")
    fake_graph.fail_next(2, status=500)
    first = await reply(client, agent, conv_id, "Dạ shop còn size M ạ")
    assert first["delivery_status"] == "pending"  # the first try failed; the outbox keeps trying
    assert first["failure_reason"] is None

    msg = await eventually(lambda: status_is(first["id"], "sent", "failed"))
    assert msg.delivery_status == "sent"
    assert msg.external_id == "m_1"  # the id the platform gave the one successful send
    assert msg.failure_reason is None
    attempts = sends_to(fake_graph, "PSID-1")
    assert len(attempts) == 3
    assert {json.dumps(a, sort_keys=True) for a in attempts} == {json.dumps(attempts[0], sort_keys=True)}
    assert attempts[0]["message"] == {"text": "Dạ shop còn size M ạ", "metadata": f"hopthu:{first['id']}"}
    assert await Message.filter(conversation_id=conv_id, direction="out").count() == 1
    item = await OutboxItem.get(message_id=first["id"])
    assert (item.state, item.attempts) == ("sent", 3)


async def test_reply_that_keeps_failing_gives_up_with_a_reason_and_others_still_go_out(client, agent, fake_graph):
    stuck = await open_conversation(client, "PSID-down")
    fine = await open_conversation(client, "PSID-ok")
    fake_graph.unreachable.add("PSID-down")

    doomed = await reply(client, agent, stuck, "Dạ em gửi chị mã giảm giá")
    assert doomed["delivery_status"] == "pending"
    # While the first reply waits for its next try, another customer's reply is not held up behind it.
    ok = await reply(client, agent, fine, "Dạ đơn của anh đã giao ạ")
    assert ok["delivery_status"] == "sent"

    msg = await eventually(lambda: status_is(doomed["id"], "failed", "sent"))
    assert msg.delivery_status == "failed"
    assert len(sends_to(fake_graph, "PSID-down")) == 4  # settings.outbox_max_attempts
    item = await OutboxItem.get(message_id=doomed["id"])
    assert (item.state, item.attempts) == ("failed", 4)
    # A reason the agent can act on: what went wrong, that hopthu gave up, and no promise of another try.
    reason = msg.failure_reason or ""
    assert "Facebook" in reason
    assert "4" in reason
    assert "thử lại" not in reason.lower() and "will retry" not in reason.lower()
    assert msg.external_id is None

    # Other replies still go out afterwards, too.
    later = await reply(client, agent, fine, "Anh cần gì thêm cứ nhắn shop nhé")
    assert later["delivery_status"] == "sent"
    assert len(sends_to(fake_graph, "PSID-ok")) == 2


# ---------------------------------------------------------------------------------------------- windows


async def test_reply_within_24_hours_is_a_response(client, agent, fake_graph):
    conv_id = await open_conversation(client, "PSID-1", now_ms() - 23 * HOUR_MS)
    sent = await reply(client, agent, conv_id, "Dạ shop trả lời chị ạ")
    assert sent["delivery_status"] == "sent"
    [body] = fake_graph.sent_messages()
    assert body["messaging_type"] == "RESPONSE"
    assert "tag" not in body


async def test_human_reply_after_24_hours_uses_the_human_agent_tag(client, agent, fake_graph):
    conv_id = await open_conversation(client, "PSID-1", now_ms() - 25 * HOUR_MS)
    sent = await reply(client, agent, conv_id, "Xin lỗi chị vì trả lời muộn ạ")
    assert sent["delivery_status"] == "sent"
    [body] = fake_graph.sent_messages()
    assert body["messaging_type"] == "MESSAGE_TAG"
    assert body["tag"] == "HUMAN_AGENT"
    assert body["recipient"] == {"id": "PSID-1"}


async def test_reply_after_7_days_is_refused_before_calling_the_platform(client, agent, fake_graph):
    conv_id = await open_conversation(client, "PSID-1", now_ms() - 8 * DAY_MS)
    refused = await reply(client, agent, conv_id, "Chị ơi shop có hàng rồi ạ")
    assert refused["delivery_status"] == "failed"
    reason = refused["failure_reason"]
    assert "7 ngày" in reason  # Vietnamese for the agent…
    assert "7 days" in reason  # …and English
    assert fake_graph.sent_messages() == []
    assert not await OutboxItem.exists()

    # The refused reply stays visible in the thread with its reason.
    listed = await (await client.get(f"/api/conversations/{conv_id}/messages", headers=agent.headers)).json()
    last = listed["items"][-1]
    assert (last["id"], last["delivery_status"], last["failure_reason"]) == (refused["id"], "failed", reason)


async def test_platform_window_refusal_fails_at_once_with_a_readable_reason(client, agent, fake_graph):
    conv_id = await open_conversation(client, "PSID-1")
    fake_graph.fail_next(1, status=400, error=OUTSIDE_WINDOW)
    refused = await reply(client, agent, conv_id, "Dạ shop gửi chị ạ")
    assert refused["delivery_status"] == "failed"
    assert "24" in refused["failure_reason"]
    assert "window" in refused["failure_reason"]
    item = await OutboxItem.get(message_id=refused["id"])
    assert (item.state, item.attempts) == ("failed", 1)  # never retried: it cannot succeed
    assert len(fake_graph.sent_messages()) == 1


async def test_platform_refusal_of_a_human_agent_reply_speaks_of_the_7_day_window(client, agent, fake_graph):
    """Sent with the HUMAN_AGENT tag (3 days after the customer's message) and still refused as outside the window:
    the reason is about the 7-day human agent window, not the 24 hours that no longer apply."""
    conv_id = await open_conversation(client, "PSID-1", now_ms() - 3 * DAY_MS)
    fake_graph.fail_next(1, status=400, error=OUTSIDE_WINDOW)
    refused = await reply(client, agent, conv_id, "Xin lỗi chị vì trả lời muộn ạ")
    [body] = fake_graph.sent_messages()
    assert body["tag"] == "HUMAN_AGENT"
    assert refused["delivery_status"] == "failed"
    reason = refused["failure_reason"]
    assert "7 ngày" in reason and "HUMAN_AGENT" in reason  # Vietnamese for the agent…
    assert "7-day human agent window" in reason  # …and English
    assert "24" not in reason
    item = await OutboxItem.get(message_id=refused["id"])
    assert (item.state, item.attempts) == ("failed", 1)


async def test_token_refusal_fails_at_once(client, agent, fake_graph):
    conv_id = await open_conversation(client, "PSID-1")
    error = {"message": "Error validating access token", "type": "OAuthException", "code": 190}
    fake_graph.fail_next(1, status=400, error=error)
    refused = await reply(client, agent, conv_id, "Dạ")
    assert refused["delivery_status"] == "failed"
    assert "token" in refused["failure_reason"]
    assert len(fake_graph.sent_messages()) == 1


async def test_a_nul_character_in_a_graph_refusal_still_fails_the_reply_with_a_readable_reason(
    client, agent, fake_graph
):
    """PostgreSQL's text cannot hold U+0000: a refusal whose message carried one could not be recorded, and the
    reply stayed pending. It fails with Facebook's words, U+FFFD in place of the NUL."""
    conv_id = await open_conversation(client, "PSID-1")
    error = {"message": "(#100) Tin nhắn\x00 không hợp lệ", "type": "OAuthException", "code": 100}
    fake_graph.fail_next(1, status=400, error=error)
    refused = await reply(client, agent, conv_id, "Dạ")
    assert refused["delivery_status"] == "failed"
    assert "(#100) Tin nhắn\ufffd không hợp lệ" in refused["failure_reason"]
    assert (await OutboxItem.get(message_id=refused["id"])).state == "failed"


# ---------------------------------------------------------------------------------------------- notes


async def test_private_note_is_never_sent_to_the_customer(client, agent, fake_graph):
    conv_id = await open_conversation(client, "PSID-1")
    note = await reply(client, agent, conv_id, "Khách này hay đổi size, kiểm tra kỹ nhé", private=True)
    assert note["private"] is True
    assert note["delivery_status"] is None
    assert note["failure_reason"] is None
    assert note["sender_id"] == agent.user.id
    assert fake_graph.sent_messages() == []
    assert not await OutboxItem.exists()

    listed = await (await client.get(f"/api/conversations/{conv_id}/messages", headers=agent.headers)).json()
    assert [(m["text"], m["private"]) for m in listed["items"]] == [
        ("Shop ơi cho mình hỏi", False),
        ("Khách này hay đổi size, kiểm tra kỹ nhé", True),
    ]
    conv = await (await client.get(f"/api/conversations/{conv_id}", headers=agent.headers)).json()
    assert conv["last_message_preview"] == "Shop ơi cho mình hỏi"  # a note is not what the customer last saw


async def test_private_note_is_allowed_outside_the_window(client, agent, fake_graph):
    conv_id = await open_conversation(client, "PSID-1", now_ms() - 30 * DAY_MS)
    note = await reply(client, agent, conv_id, "Khách cũ, đã hoàn tiền", private=True)
    assert (note["private"], note["delivery_status"], note["failure_reason"]) == (True, None, None)
    assert fake_graph.sent_messages() == []


# ---------------------------------------------------------------------------------------------- echo vs. outbox


async def test_echo_confirming_a_failed_try_prevents_a_second_send(aiohttp_client, settings, fake_graph):
    """Facebook answered 500 but the message went out (its echo says so): the retry must not send it again."""
    # A long backoff: the retry comes only when the test says so (below), after the echo.
    client = await aiohttp_client(create_app(replace(settings, outbox_base_delay=30.0)))
    agent = await make_user(client, "agent", inboxes=[await make_inbox()])
    conv_id = await open_conversation(client, "PSID-1")
    fake_graph.fail_next(1, status=500)
    pending = await reply(client, agent, conv_id, "Dạ shop gửi ảnh mẫu ạ")
    assert pending["delivery_status"] == "pending"

    echo = messenger_echo(PAGE_ID, "PSID-1", "m_went_out", "Dạ shop gửi ảnh mẫu ạ", now_ms(), f"hopthu:{pending['id']}")
    assert (await post_webhook(client, echo)).status == 200
    await eventually(lambda: status_is(pending["id"], "sent"))
    # The retry falls due.
    await OutboxItem.filter(message_id=pending["id"]).update(next_attempt_at=datetime.now(UTC))
    client.app[OUTBOX].notify()
    await eventually(lambda: _outbox_done(pending["id"]))

    assert len(fake_graph.sent_messages()) == 1
    msg = await Message.get(id=pending["id"])
    assert (msg.delivery_status, msg.external_id) == ("sent", "m_went_out")
    assert await Message.filter(direction="out").count() == 1


async def test_receipts_during_a_slow_send_are_not_undone(client, agent, fake_graph):
    """The echo and the delivery report can arrive before the Send API answers: the answer must not move the
    message back from "delivered" to "sent"."""
    conv_id = await open_conversation(client, "PSID-1")
    fake_graph.hold = asyncio.Event()
    sending = asyncio.ensure_future(reply(client, agent, conv_id, "Dạ shop đã nhận đơn ạ"))
    msg = await eventually(lambda: Message.get_or_none(conversation_id=conv_id, direction="out"))
    await eventually(lambda: _send_seen(fake_graph))
    echo = messenger_echo(PAGE_ID, "PSID-1", "m_1", "Dạ shop đã nhận đơn ạ", now_ms(), f"hopthu:{msg.id}")
    assert (await post_webhook(client, echo)).status == 200
    await eventually(lambda: status_is(msg.id, "sent"))
    assert (await post_webhook(client, messenger_delivery(PAGE_ID, "PSID-1", now_ms()))).status == 200
    await eventually(lambda: status_is(msg.id, "delivered"))

    fake_graph.hold.set()  # only now does the Send API answer
    answered = await sending
    assert answered["delivery_status"] == "delivered"
    await eventually(lambda: _outbox_done(msg.id))
    msg = await Message.get(id=msg.id)
    assert (msg.delivery_status, msg.external_id) == ("delivered", "m_1")
    assert len(fake_graph.sent_messages()) == 1


async def test_delivery_watermark_applied_before_the_send_answers_is_kept(client, agent, fake_graph):
    """Messenger's delivery webhook can be applied while the Send API has not answered yet (the reply still
    pending, so the receipt skips it) and no echo came: the answer stores the reply "delivered", as the watermark
    said, and agents see that. A watermark is sent once: "sent" would stay for good."""
    conv_id = await open_conversation(client, "PSID-1")
    ws = await client.ws_connect(f"/ws?token={agent.token}")
    try:
        await _frames_until(ws, lambda f: f["type"] == "ready")
        fake_graph.hold = asyncio.Event()
        sending = asyncio.ensure_future(reply(client, agent, conv_id, "Dạ shop đã nhận đơn ạ"))
        msg = await eventually(lambda: Message.get_or_none(conversation_id=conv_id, direction="out"))
        await eventually(lambda: _send_seen(fake_graph))
        assert (await post_webhook(client, messenger_delivery(PAGE_ID, "PSID-1", now_ms()))).status == 200
        await eventually(_processed)
        assert (await Message.get(id=msg.id)).delivery_status == "pending"

        fake_graph.hold.set()  # only now does the Send API answer
        await sending
        frames = await _frames_until(
            ws, lambda f: f["type"] == "message.updated" and f["data"]["id"] == msg.id and f["data"]["external_id"]
        )
    finally:
        await ws.close()
    assert frames[-1]["data"]["delivery_status"] == "delivered"
    msg = await Message.get(id=msg.id)
    assert (msg.delivery_status, msg.external_id) == ("delivered", "m_1")


async def test_refusal_answered_after_the_echo_does_not_mark_the_message_failed(client, agent, fake_graph):
    """The echo says the message reached the customer: a late error answer must not show it as failed."""
    conv_id = await open_conversation(client, "PSID-1")
    fake_graph.hold = asyncio.Event()
    fake_graph.fail_next(
        1, status=400, error={"message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100}
    )
    sending = asyncio.ensure_future(reply(client, agent, conv_id, "Dạ shop gửi ạ"))
    msg = await eventually(lambda: Message.get_or_none(conversation_id=conv_id, direction="out"))
    await eventually(lambda: _send_seen(fake_graph))
    echo = messenger_echo(PAGE_ID, "PSID-1", "m_echoed", "Dạ shop gửi ạ", now_ms(), f"hopthu:{msg.id}")
    assert (await post_webhook(client, echo)).status == 200
    await eventually(lambda: status_is(msg.id, "sent"))

    fake_graph.hold.set()  # only now does the Send API answer (with its refusal)
    answered = await sending
    assert (answered["delivery_status"], answered["failure_reason"]) == ("sent", None)
    await eventually(lambda: _outbox_done(msg.id))
    msg = await Message.get(id=msg.id)
    assert (msg.delivery_status, msg.external_id, msg.failure_reason) == ("sent", "m_echoed", None)


async def _outbox_done(message_id: int) -> bool:
    item = await OutboxItem.get(message_id=message_id)
    return item.state != "pending"


async def _send_seen(fake: FakeGraphAPI) -> bool:
    return bool(fake.sent_messages())


# ---------------------------------------------------------------------------------------------- live status


async def test_agent_socket_receives_delivery_status_changes(client, agent, fake_graph):
    conv_id = await open_conversation(client, "PSID-1")
    ws = await client.ws_connect(f"/ws?token={agent.token}")
    try:
        await _frames_until(ws, lambda f: f["type"] == "ready")
        sent = await reply(client, agent, conv_id, "Dạ shop gửi chị ạ")
        watermark = now_ms()
        assert (await post_webhook(client, messenger_delivery(PAGE_ID, "PSID-1", watermark))).status == 200

        frames = await _frames_until(
            ws,
            lambda f: (
                f["type"] == "message.updated"
                and f["data"]["id"] == sent["id"]
                and f["data"]["delivery_status"] == "delivered"
            ),
        )
    finally:
        await ws.close()
    seqs = [f["seq"] for f in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    mine = [f for f in frames if f["type"].startswith("message.") and f["data"]["id"] == sent["id"]]
    assert mine[0]["type"] == "message.created"
    assert [f["data"]["delivery_status"] for f in mine if f["type"] == "message.updated"] == ["sent", "delivered"]
    assert mine[-1]["data"]["conversation_id"] == conv_id
    assert mine[-1]["data"]["external_id"] == sent["external_id"]


async def _frames_until(ws, done, timeout: float = 5.0) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    while True:
        message = await ws.receive(timeout=timeout)
        assert message.type == web.WSMsgType.TEXT, message
        frame = json.loads(message.data)
        frames.append(frame)
        if done(frame):
            return frames


async def test_window_uses_the_customers_last_message_not_the_pages(client, agent, fake_graph):
    """A message the page sent from Business Suite does not reopen the 24-hour window."""
    conv_id = await open_conversation(client, "PSID-1", now_ms() - 25 * HOUR_MS)
    echo = messenger_echo(PAGE_ID, "PSID-1", "m_bs", "Chào chị", now_ms() - HOUR_MS)
    assert (await post_webhook(client, echo)).status == 200
    await eventually(lambda: Message.filter(external_id="m_bs").exists())
    await eventually(lambda: _processed())
    conv = await Conversation.get(id=conv_id)
    assert conv.last_incoming_at is not None
    await reply(client, agent, conv_id, "Dạ chị cần gì thêm ạ")
    assert fake_graph.sent_messages()[-1]["messaging_type"] == "MESSAGE_TAG"


async def _processed() -> bool:
    return not await InboundEvent.filter(processed=False).exists()


async def test_two_outbox_workers_never_send_the_same_reply_twice(client, agent, fake_graph):
    """Several server processes share one outbox: each due reply is claimed and sent by exactly one of them."""
    conv_id = await open_conversation(client, "PSID-1")
    app_outbox = client.app[OUTBOX]
    await app_outbox.stop()  # two other workers (as in two processes) take over
    first, second = (Outbox(client.app[BUS], app_outbox._senders) for _ in range(2))
    msg = await Message.create(
        conversation_id=conv_id, inbox_id=1, direction="out", sender_type="agent", text="Dạ 250k ạ",
        created_at=datetime.now(UTC), delivery_status="pending",
    )  # fmt: skip
    item = await OutboxItem.create(message_id=msg.id, inbox_id=1, next_attempt_at=datetime.now(UTC))

    stale_copies = [await OutboxItem.get(id=item.id), await OutboxItem.get(id=item.id)]
    assert [await first._claim(stale_copies[0]), await second._claim(stale_copies[1])] == [True, False]

    await OutboxItem.filter(id=item.id).update(next_attempt_at=datetime.now(UTC))  # due again
    await asyncio.gather(first.send_due(), second.send_due())
    assert (await Message.get(id=msg.id)).delivery_status == "sent"
    assert [m["message"]["text"] for m in fake_graph.sent_messages()] == ["Dạ 250k ạ"]


async def test_replies_reach_the_customer_in_the_order_the_agent_wrote_them(aiohttp_client, settings, fake_graph):
    """The first reply meets a transient Graph error and backs off: the second waits behind it, so the customer
    never reads the second before the first."""
    client = await aiohttp_client(create_app(replace(settings, outbox_base_delay=1.0)))
    inbox = await make_inbox()
    agent = await make_user(client, "agent", inboxes=[inbox])
    await send_text(client, "PSID-ORDER", "m_in", "Shop ơi")
    conv_id = (await eventually(lambda: Message.get_or_none(external_id="m_in"))).conversation_id
    fake_graph.fail_next(1, status=500)
    texts = ["Dạ chị cho em xin size ạ", "Mẫu này còn màu đen thôi ạ"]
    for text in texts:
        reply = await client.post(f"/api/conversations/{conv_id}/messages", json={"text": text}, headers=agent.headers)
        assert reply.status == 201

    async def both_sent() -> bool:
        out = await Message.filter(conversation_id=conv_id, direction="out")
        return len(out) == 2 and all(m.delivery_status == "sent" for m in out)

    await eventually(both_sent, timeout=20)
    delivered = [m["message"]["text"] for m in fake_graph.sent_messages()]
    assert delivered[-2:] == texts and delivered.count(texts[1]) == 1


async def test_a_sender_that_raises_gives_up_with_a_reason_and_holds_nothing_back(
    client, agent, fake_graph, monkeypatch
):
    """A sender's bug (any exception, not a platform's refusal) is retried, then the reply fails with a reason:
    never pending for good, which would also hold the conversation's later replies."""
    conv_id = await open_conversation(client, "PSID-bug")
    facebook = client.app[OUTBOX]._senders["facebook"]
    send = facebook.send

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("page_token")

    monkeypatch.setattr(facebook, "send", broken)
    doomed = await reply(client, agent, conv_id, "Dạ em gửi chị ảnh mẫu")
    msg = await eventually(lambda: status_is(doomed["id"], "failed"))
    assert "unexpected error" in msg.failure_reason
    assert (await OutboxItem.get(message_id=doomed["id"])).attempts == 4  # settings.outbox_max_attempts
    monkeypatch.setattr(facebook, "send", send)
    after = await reply(client, agent, conv_id, "Dạ shop gửi lại ạ")
    assert (await eventually(lambda: status_is(after["id"], "sent"))).delivery_status == "sent"


async def test_a_send_whose_recording_fails_once_is_recorded_and_not_sent_again(client, agent, fake_graph, monkeypatch):
    """The platform took the reply, then writing that down met a database error: the reply ends up sent (not
    pending for good behind an item already marked sent), and the customer gets it once."""
    from inbox import outbox

    conv_id = await open_conversation(client, "PSID-hiccup")
    real = outbox.in_transaction
    failures = [RuntimeError("database is locked")]

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return real(*args, **kwargs)

    monkeypatch.setattr(outbox, "in_transaction", flaky)
    sent = await reply(client, agent, conv_id, "Dạ đơn của chị đã lên rồi ạ")
    msg = await eventually(lambda: status_is(sent["id"], "sent"))
    assert msg.external_id is not None and not failures
    assert (await OutboxItem.get(message_id=sent["id"])).state == "sent"
    assert [body["message"]["text"] for body in sends_to(fake_graph, "PSID-hiccup")] == ["Dạ đơn của chị đã lên rồi ạ"]
