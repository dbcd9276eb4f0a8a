"""The bot and the satisfaction survey stay out of public comment threads and away from conversations a person holds;
one survey per resolution however many server processes hear of it; bad bot and capacity settings are a 4xx."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient

from agents.csat import Csat
from agents.faq_seed import install
from agents.models import CsatSurvey
from channels.fakes import FakeGraphAPI, page_comment
from inbox import db
from inbox.keys import BOTS, BUS, OUTBOX, PIPELINE
from inbox.models import Conversation, Inbox, Message
from inbox.processing import record
from tests.conftest import PAGE_ID, eventually, make_user, post_webhook, quick_user, send_text
from tests.test_routing_helpers import conversation


async def _handled(client: TestClient, message_id: int) -> bool:
    return client.app[PIPELINE].handled_up_to >= message_id


async def _all_sent(conv_id: int) -> bool:
    return not await Message.filter(conversation_id=conv_id, direction="out", delivery_status="pending").exists()


async def customer_says(client: TestClient, psid: str, text: str) -> Message:
    mid = f"mid.{time.monotonic_ns()}"
    await send_text(client, psid, mid, text)
    msg = await eventually(lambda: Message.get_or_none(external_id=mid))
    await eventually(lambda: _handled(client, msg.id))
    return msg


async def test_faq_bot_does_not_answer_public_comments(
    client: TestClient, inbox: Inbox, fake_graph: FakeGraphAPI
) -> None:
    await install(inbox.id)  # the shipped FAQ bot (welcome + FAQ + away message)
    client.app[BOTS].forget()
    post = f"{PAGE_ID}_712750021053074"
    cid = "712750021053074_1063824911537801"
    body = page_comment(PAGE_ID, post, cid, "24260000000000001234", "phí ship bao nhiêu vậy shop", int(time.time()))
    assert (await post_webhook(client, body)).status == 200
    msg = await eventually(lambda: Message.get_or_none(external_id=cid))
    await eventually(lambda: _handled(client, msg.id))
    conv = await Conversation.get(id=msg.conversation_id)
    assert conv.thread_key.startswith("post:")
    bot = await Message.filter(conversation_id=conv.id, sender_type="bot")
    if bot:  # show where they went: as public replies under the customer's comment
        await eventually(lambda: _all_sent(conv.id))
    assert fake_graph.comment_replies() == []
    assert bot == [], [(m.extra, m.text) for m in bot]


async def test_away_message_not_sent_to_a_conversation_an_agent_holds(client: TestClient, inbox: Inbox) -> None:
    inbox.settings = {**(inbox.settings or {}), "bot": {"away_message": "Shop đã nghỉ, mai trả lời ạ"}}
    await inbox.save()
    client.app[BOTS].forget()
    first = await customer_says(client, "PSID-AW", "Chào shop")
    agent = await make_user(client, "agent", inboxes=[inbox])
    response = await client.post(
        f"/api/conversations/{first.conversation_id}/assign", json={"agent_id": agent.user.id}, headers=agent.headers
    )
    assert response.status == 200
    response = await client.post(
        f"/api/conversations/{first.conversation_id}/messages", json={"text": "Dạ em nghe ạ"}, headers=agent.headers
    )
    assert response.status == 201
    client.app[BOTS].hours_open = lambda inbox, at: False  # the evening comes; the agent is still chatting
    await customer_says(client, "PSID-AW", "Vậy size M còn không em?")
    away = await Message.filter(conversation_id=first.conversation_id, sender_type="bot")
    assert away == [], [m.text for m in away]


async def test_faq_try_out_with_a_numeric_variable_is_not_a_500(client: TestClient, inbox: Inbox) -> None:
    admin = await quick_user("admin")
    r = await client.put(f"/api/inboxes/{inbox.id}/bot", json={"variables": {"free_ship": 300000}},
                         headers=admin.headers)  # fmt: skip
    assert r.status == 200, await r.text()  # accepted: numbers are allowed as variable values
    r = await client.post(
        f"/api/inboxes/{inbox.id}/faq",
        json={"questions": ["phí ship bao nhiêu"], "answer": "Miễn phí ship từ {free_ship}đ ạ"},
        headers=admin.headers,
    )
    assert r.status == 201, await r.text()
    r = await client.post(f"/api/inboxes/{inbox.id}/faq/test", json={"text": "phí ship bao nhiêu"},
                          headers=admin.headers)  # fmt: skip
    assert r.status == 200, await r.text()
    assert "300000" in (await r.json())["answer"]


@pytest.mark.parametrize("capacity", [2**63, 2**64 - 1])
async def test_huge_agent_capacity_is_a_4xx_not_a_500(client: TestClient, inbox: Inbox, capacity: int) -> None:
    supervisor = await quick_user("supervisor")
    agent = await quick_user("agent", inboxes=[inbox])
    r = await client.put(f"/api/agents/{agent.user.id}/capacity", json={"capacity": capacity},
                         headers=supervisor.headers)  # fmt: skip
    assert r.status in (400, 422), (r.status, await r.text())


async def test_one_survey_per_resolution_even_when_two_processes_react(client: TestClient, inbox: Inbox) -> None:
    """With HOPTHU_REDIS_URL every process's Supervision receives the same `conversation.updated` (resolved) frame
    and calls `on_resolved`: the customer must still get one survey."""
    inbox.settings = {**(inbox.settings or {}), "csat": {"enabled": True}}
    await inbox.save()
    agent = await quick_user("agent", inboxes=[inbox])
    conv = await conversation(inbox)
    await Conversation.filter(id=conv.id).update(status="resolved", assignee_id=agent.user.id)
    await record(db.connection(), conv, "status_changed", "agent", agent.user.id, datetime.now(UTC),
                 previous="open", status="resolved", reason="manual")  # fmt: skip
    one, two = (Csat(client.app[BUS], client.app[OUTBOX]) for _ in range(2))  # one per server process
    await asyncio.gather(one.on_resolved(conv.id), two.on_resolved(conv.id))
    assert await CsatSurvey.filter(conversation_id=conv.id).count() == 1
    assert await Message.filter(conversation_id=conv.id, sender_type="system").count() == 1
