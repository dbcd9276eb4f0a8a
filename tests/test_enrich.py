"""NLP enrichment in the product: stored on messages, pushed as message.updated, summarised on the conversation,
filterable in the list API, and the contact's attitudinal summary."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

from aiohttp.test_utils import TestClient

from agents.models import Team
from contacts.attitude import attitudinal_summary
from inbox.bus import Event
from inbox.enrich import NlpEnricher, _analyze
from inbox.keys import BUS, PIPELINE
from inbox.models import Conversation, Inbox, Message
from tests.conftest import eventually, make_user, published_since, send_text


async def test_messages_get_sentiment_intent_entities_and_updates_are_pushed(client: TestClient, inbox: Inbox) -> None:
    since = client.app[BUS].last_seq
    await send_text(client, "psid-1", "m1", "chào shop, còn size M màu đen không ạ")
    await send_text(client, "psid-1", "m2", "giao sai màu rồi, shop làm ăn chán quá 😡 sdt em 0912 345 678")

    async def both() -> list[Message]:
        msgs = await Message.filter(direction="in", sentiment__not_isnull=True).order_by("id")
        return msgs if len(msgs) == 2 else []

    first, second = await eventually(both, timeout=20)
    assert first.sentiment == "neutral" and first.intent in ("ask_availability", "greeting")
    assert {"type": "size", "normalized": "M"}.items() <= first.entities[0].items()
    assert second.sentiment == "negative" and second.intent == "complaint" and second.sentiment_score < 0
    assert [e["normalized"] for e in second.entities if e["type"] == "phone"] == ["+84912345678"]

    conv = await Conversation.get(id=second.conversation_id)
    assert (conv.sentiment, conv.worst_sentiment) == ("negative", "negative")
    assert conv.intent in ("complaint", "ask_availability")

    await send_text(client, "psid-1", "m3", "à ok shop đổi giúp em là được, cảm ơn shop nhiều nha 😍")
    await eventually(lambda: Conversation.filter(id=conv.id, sentiment="positive").exists())
    conv = await Conversation.get(id=conv.id)
    assert conv.worst_sentiment == "negative"  # the worst stays

    async def pushed_positive() -> bool:
        # the row is written before the event is published: wait for the push, which is what an agent sees
        replay = published_since(client.app[BUS], since)
        return any(
            e.type.startswith("conversation.")
            and e.data.get("id") == conv.id
            and (e.data.get("sentiment"), e.data.get("worst_sentiment")) == ("positive", "negative")
            for e in replay
        )

    await eventually(pushed_positive)
    replay = published_since(client.app[BUS], since)
    # The analysis goes out with message.created when it was in at the insert, or follows as message.updated.
    frames = [e for e in replay if e.type in ("message.created", "message.updated") and e.data["id"] == second.id]
    assert frames[0].type == "message.created"
    assert (frames[-1].data["sentiment"], frames[-1].data["intent"]) == ("negative", "complaint")


async def test_the_message_goes_out_before_nlp_and_its_results_follow(client: TestClient, inbox: Inbox) -> None:
    """An agent sees the customer's message as soon as it is stored; NLP (however slow) only adds to it. A new
    conversation with neither team nor agent waits for routing, which may give it a team with other readers."""
    bus = client.app[BUS]
    since = bus.last_seq
    gate = asyncio.Event()

    async def slow_nlp(messages: list) -> None:  # holds the pipeline where NLP runs
        await gate.wait()

    client.app[PIPELINE].enrichers.insert(0, slow_nlp)

    def frames(kind: str, text: str = "") -> list[Event]:
        replay = published_since(bus, since)
        return [e for e in replay if e.type == kind and e.data.get("text", "").startswith(text)]

    await send_text(client, "psid-9", "m-first", "shop ơi")
    conv = await eventually(lambda: Conversation.filter(inbox_id=inbox.id).first())
    await asyncio.sleep(0.3)
    assert frames("message.created") == [] and frames("conversation.created") == []  # its readers are not settled
    gate.set()
    await eventually(lambda: asyncio.sleep(0, frames("message.created", "shop ơi")))

    team = await Team.create(name="CSKH")
    await Conversation.filter(id=conv.id).update(team_id=team.id)  # its readers are settled now
    release = threading.Event()  # now the analysis itself is slow: it is not in when the message is stored

    def held_analysis(texts: list[str]) -> list[dict]:
        release.wait(10)
        return _analyze(texts)

    _nlp(client).analyze = held_analysis
    await send_text(client, "psid-9", "m-early", "giao sai màu rồi, shop làm ăn chán quá 😡")
    created = await eventually(lambda: asyncio.sleep(0, frames("message.created", "giao sai")))
    assert created[0].data["sentiment"] is None and created[0].data["conversation_id"] == conv.id
    assert not [e for e in frames("message.updated") if e.data["id"] == created[0].data["id"]]  # NLP still held
    release.set()

    async def analysed() -> list[Event]:
        return [e for e in frames("message.updated", "giao sai") if e.data["sentiment"] == "negative"]

    (updated,) = await eventually(analysed, timeout=20)
    assert updated.data["id"] == created[0].data["id"] and updated.seq > created[0].seq

    async def summarised() -> list[Event]:  # the conversation's summary follows
        return [
            e
            for e in frames("conversation.updated")
            if e.data["id"] == conv.id and e.seq > created[0].seq and e.data["sentiment"] == "negative"
        ]

    assert await eventually(summarised)


async def test_an_analysis_ready_when_the_message_is_stored_goes_out_with_it(client: TestClient, inbox: Inbox) -> None:
    """The worker analyses a batch's texts while the processor writes it; whatever is in by the insert is stored
    with the message and summarised on its conversation in the same transaction: message.created carries it, and
    no message.updated (one frame fewer per agent per message) follows."""
    bus = client.app[BUS]
    team = await Team.create(name="CSKH")
    await send_text(client, "psid-r", "m-r1", "shop ơi")
    conv = await eventually(lambda: Conversation.filter(inbox_id=inbox.id).first())
    await Conversation.filter(id=conv.id).update(team_id=team.id)  # settled readers: published at the commit
    await eventually(lambda: Message.filter(external_id="m-r1", sentiment__not_isnull=True).exists(), timeout=20)
    text = "giao sai màu rồi, shop làm ăn chán quá 😡 sdt em 0912 345 678"
    nlp = _nlp(client)
    nlp.prepare([text])  # what the processor does with the batch it is about to apply; here, well ahead

    async def in_() -> bool:
        return text in nlp._ahead and nlp._ahead[text][0].done()

    await eventually(in_)
    since = bus.last_seq
    await send_text(client, "psid-r", "m-r2", text)
    stored = await eventually(lambda: Message.filter(external_id="m-r2").first())
    await eventually(lambda: asyncio.sleep(0, client.app[PIPELINE].handled_up_to >= stored.id))
    assert (stored.sentiment, stored.intent) == ("negative", "complaint")
    assert [e["normalized"] for e in stored.entities if e["type"] == "phone"] == ["+84912345678"]
    conv = await Conversation.get(id=conv.id)
    assert (conv.sentiment, conv.worst_sentiment, conv.intent) == ("negative", "negative", "complaint")

    replay = published_since(bus, since)
    created = [e for e in replay if e.type == "message.created" and e.data["id"] == stored.id]
    assert created and (created[0].data["sentiment"], created[0].data["intent"]) == ("negative", "complaint")
    assert not [e for e in replay if e.type == "message.updated" and e.data["id"] == stored.id]
    shown = [e for e in replay if e.type.startswith("conversation.") and e.data["id"] == conv.id]
    assert shown and shown[0].seq < created[0].seq and shown[-1].data["sentiment"] == "negative"
    assert text not in nlp._ahead  # each analysis is used once


def _nlp(client: TestClient) -> NlpEnricher:
    return next(e for e in client.app[PIPELINE].enrichers if isinstance(e, NlpEnricher))


async def test_texts_prepared_ahead_are_analysed_once_and_used_by_the_pipeline(
    client: TestClient, inbox: Inbox
) -> None:
    await send_text(client, "psid-p", "m-p1", "còn hàng không shop")
    await send_text(client, "psid-p", "m-p2", "ship về Đà Nẵng mất mấy ngày")

    async def both() -> list[Message]:
        msgs = await Message.filter(direction="in", sentiment__not_isnull=True).order_by("id")
        return msgs if len(msgs) == 2 else []

    msgs = await eventually(both)
    calls: list[list[str]] = []

    def counting(texts: list[str]) -> list[dict]:
        calls.append(list(texts))
        return _analyze(texts)

    enricher = NlpEnricher(client.app[BUS], analyze=counting)
    enricher.start()
    assert await enricher.ready()
    first, second = msgs
    enricher.prepare([first.text, "một câu không bao giờ được lưu", first.text])
    enricher.prepare([first.text, second.text])  # a batch cut short comes again: only the new text is sent
    for msg in msgs:
        msg.sentiment = None
    await enricher(msgs)
    await enricher.stop()
    assert calls == [[first.text, "một câu không bao giờ được lưu"], [second.text]]
    assert [m.intent for m in msgs] == [m.intent for m in await Message.filter(id__in=[first.id, second.id])]
    assert all(m.sentiment for m in msgs)


async def test_list_api_filters_by_sentiment_and_intent(client: TestClient, inbox: Inbox) -> None:
    admin = await make_user(client, "admin")
    await send_text(client, "angry", "a1", "hàng lỗi, chất lượng quá tệ, thất vọng")
    await send_text(client, "calm", "c1", "phí ship về Đà Nẵng bao nhiêu vậy shop")
    await eventually(lambda: _count_analysed(2), timeout=20)

    async def names(query: str) -> list[str]:
        r = await client.get(f"/api/conversations?{query}", headers=admin.headers)
        assert r.status == 200, await r.text()
        return sorted(c["contact"]["id"] and c["intent"] for c in (await r.json())["items"])

    assert await names("sentiment=negative") == ["complaint"]
    assert await names("intent=shipping") == ["shipping"]
    assert await names("sentiment=neutral&intent=complaint") == []
    r = await client.get("/api/conversations?sentiment=angry", headers=admin.headers)
    assert r.status == 400


async def _count_analysed(n: int) -> bool:
    return await Message.filter(direction="in", sentiment__not_isnull=True).count() >= n


class _Bus:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def publish(self, event: Event) -> Event:
        self.events.append(event)
        return event


async def test_slow_backend_does_not_hold_the_pipeline_and_results_arrive_later(
    client: TestClient, inbox: Inbox
) -> None:
    await send_text(client, "slow", "s1", "shop ơi cho em hỏi")
    await eventually(lambda: Message.filter(external_id="s1", sentiment__not_isnull=True).exists(), timeout=20)
    msg = await Message.get(external_id="s1")
    msg.sentiment = None  # as if it had just arrived
    release = threading.Event()
    threads: list[str] = []

    def slow(texts: list[str]) -> list[dict]:
        threads.append(threading.current_thread().name)
        release.wait(5)
        return [
            {"sentiment": "positive", "sentiment_score": 0.9, "intent": "greeting", "intent_confidence": 0.8,
             "entities": []}
            for _ in texts
        ]  # fmt: skip

    bus = _Bus()
    enricher = NlpEnricher(bus, analyze=slow, inline_seconds=0.05)  # type: ignore[arg-type]
    enricher.start()
    try:
        await asyncio.wait_for(enricher([msg]), 2)  # returns after the budget, analysis still running
        assert msg.sentiment is None and not bus.events
        release.set()
        await asyncio.wait_for(enricher.idle(), 5)
    finally:
        await enricher.stop()
    assert threads == [threads[0]] and threads[0].startswith("nlp")  # off the event loop, in the worker thread
    stored = await Message.get(id=msg.id)
    assert (stored.sentiment, stored.intent) == ("positive", "greeting")
    kinds = [e.type for e in bus.events]
    assert kinds == ["message.updated", "conversation.updated"]
    assert bus.events[0].data["sentiment"] == "positive"


async def test_attitudinal_summary(client: TestClient, inbox: Inbox) -> None:
    await send_text(client, "att", "t1", "áo này giá bao nhiêu vậy shop")
    await send_text(client, "att", "t2", "giao sai màu, shop làm ăn chán quá")
    await send_text(client, "att", "t3", "cảm ơn shop đã đổi hàng nhanh, rất hài lòng 😍")
    await eventually(lambda: _count_analysed(3), timeout=20)
    conv = await Conversation.filter(identity__external_id="att").first()
    old = datetime.now(UTC) - timedelta(days=20)
    first = await Message.filter(external_id="t1").first()
    await Message.filter(id=first.id).update(created_at=old, sentiment="negative", sentiment_score=-0.8)

    summary = await attitudinal_summary(conv.contact_id)
    assert summary["analysed_messages"] == 3
    assert summary["sentiment"]["negative"] >= 1 and summary["sentiment"]["positive"] >= 1
    assert len(summary["trend_30d"]) == 30 and summary["trend_30d"][-1]["date"] == datetime.now(UTC).date().isoformat()
    assert sum(d["negative"] + d["neutral"] + d["positive"] for d in summary["trend_30d"]) == 3
    assert summary["trend"] == "improving"
    assert summary["last_complaint"]["text"] == "giao sai màu, shop làm ăn chán quá"
    assert summary["top_intents"][0]["count"] >= 1
    assert all(t["intent"] != "other" for t in summary["top_intents"])

    empty = await attitudinal_summary(999_999)
    assert empty["analysed_messages"] == 0 and empty["trend"] == "unknown" and empty["last_complaint"] is None


async def test_list_filters_by_the_worst_sentiment_a_customer_showed(client: TestClient, inbox: Inbox) -> None:
    agent = await make_user(client, "agent", inboxes=[inbox])
    await send_text(client, "psid-angry", "w1", "giao sai màu rồi, shop làm ăn chán quá 😡")
    await send_text(client, "psid-calm", "w2", "shop ơi còn size M không ạ")
    await eventually(lambda: Conversation.filter(worst_sentiment="negative").exists(), timeout=20)
    await send_text(client, "psid-angry", "w3", "ok shop đổi giúp em là được, cảm ơn shop nhiều nha 😍")
    await eventually(lambda: Conversation.filter(sentiment="positive").exists(), timeout=20)

    response = await client.get("/api/conversations", params={"worst_sentiment": "negative"}, headers=agent.headers)
    assert response.status == 200
    items = (await response.json())["items"]
    assert len(items) == 1 and items[0]["sentiment"] == "positive" and items[0]["worst_sentiment"] == "negative"
    bad = await client.get("/api/conversations", params={"worst_sentiment": "furious"}, headers=agent.headers)
    assert bad.status == 400
