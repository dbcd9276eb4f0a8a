"""The conversation API: list (order, keyset cursor, every filter, search, query budget), detail, messages paging,
status with snooze, labels, read, and the OpenAPI document that describes them.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from channels.fakes import messenger_batch, messenger_text
from contacts.models import Contact, ContactIdentity
from inbox import actions
from inbox.app import create_app
from inbox.config import Settings
from inbox.keys import BUS, PROFILES
from inbox.models import Conversation, ConversationEvent, ConversationLabel, Inbox, Message
from tests.conftest import (
    APP_SECRET,
    PAGE_ID,
    Staff,
    eventually,
    make_inbox,
    now_ms,
    post_webhook,
    quick_user,
)

PAGE_B, SECRET_B = "2222", "app_secret_of_page_b"

# ---------------------------------------------------------------------------------------------- SQL counting

_QUERIES: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("queries", default=None)
_INSIDE: contextvars.ContextVar[bool] = contextvars.ContextVar("inside_counted_call", default=False)
EXECUTE_METHODS = ("execute_query", "execute_query_dict", "execute_insert", "execute_many", "execute_script")
REQUEST_QUERIES: list[tuple[str, list[str]]] = []  # (path, statements) of each request, in order


@web.middleware
async def record_queries(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every statement a request runs, wherever in the handler (session lookup, membership, the list)."""
    statements: list[str] = []
    token = _QUERIES.set(statements)
    try:
        return await handler(request)
    finally:
        _QUERIES.reset(token)
        REQUEST_QUERIES.append((request.path, statements))


def _counted(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(original)
    async def counted(self: BaseDBAsyncClient, query: Any, *args: Any, **kwargs: Any) -> Any:
        statements = _QUERIES.get()
        if statements is None or _INSIDE.get():  # outside a request, or a backend method calling another
            return await original(self, query, *args, **kwargs)
        statements.append(str(query))
        inside = _INSIDE.set(True)
        try:
            return await original(self, query, *args, **kwargs)
        finally:
            _INSIDE.reset(inside)

    return counted


def count_every_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wrap the execute methods of every tortoise client class (SQLite, asyncpg, their transaction wrappers)."""
    classes, stack = set(), [BaseDBAsyncClient]
    while stack:
        cls = stack.pop()
        if cls not in classes:
            classes.add(cls)
            stack.extend(cls.__subclasses__())
    for cls in classes:
        for name in EXECUTE_METHODS:
            if name in cls.__dict__:
                monkeypatch.setattr(cls, name, _counted(cls.__dict__[name]))


@pytest.fixture
async def client(
    aiohttp_client: Callable[..., Awaitable[TestClient]], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> TestClient:
    """conftest's client, with every request's SQL statements recorded in REQUEST_QUERIES."""
    app = create_app(settings)
    app.middlewares.append(record_queries)
    started = await aiohttp_client(app)
    count_every_backend(monkeypatch)
    REQUEST_QUERIES.clear()
    return started


# ---------------------------------------------------------------------------------------------- helpers


async def seed(inbox: Inbox, n: int, *, prefix: str = "seed", start: datetime | None = None) -> list[Conversation]:
    """n conversations straight into the database; three at a time share a last_activity_at (ties break by id)."""
    start = start or datetime.now(UTC) - timedelta(hours=1)
    convs = []
    async with in_transaction() as conn:
        for i in range(n):
            contact = await Contact.create(using_db=conn, name=f"Khách {prefix} {i}")
            identity = await ContactIdentity.create(
                using_db=conn, contact=contact, inbox=inbox, channel=inbox.channel, external_id=f"{prefix}-{i}"
            )
            at = start - timedelta(seconds=i // 3, microseconds=0)
            convs.append(
                await Conversation.create(
                    using_db=conn,
                    inbox=inbox,
                    contact=contact,
                    identity=identity,
                    channel=inbox.channel,
                    last_activity_at=at,
                    last_message_at=at,
                    last_message_preview=f"Tin nhắn {i}",
                )
            )
    return convs


def newest_first(convs: list[Conversation]) -> list[int]:
    return [c.id for c in sorted(convs, key=lambda c: (c.last_activity_at, c.id), reverse=True)]


async def ordered(*convs: Conversation) -> list[int]:
    """These conversations as the list must order them, from their current rows."""
    return newest_first(await Conversation.filter(id__in=[c.id for c in convs]))


async def incoming(
    client: TestClient,
    psid: str,
    mid: str,
    text: str,
    ts_ms: int | None = None,
    *,
    page_id: str = PAGE_ID,
    secret: str = APP_SECRET,
) -> Conversation:
    response = await post_webhook(client, messenger_text(page_id, psid, mid, text, ts_ms or now_ms()), secret=secret)
    assert response.status == 200, await response.text()
    msg = await eventually(lambda: Message.get_or_none(external_id=mid))
    return await Conversation.get(id=msg.conversation_id)


async def listing(client: TestClient, staff: Staff, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/conversations", params=params, headers=staff.headers)
    assert response.status == 200, (params, await response.text())
    return await response.json()


async def ids(client: TestClient, staff: Staff, **params: Any) -> list[int]:
    return [c["id"] for c in (await listing(client, staff, **params))["items"]]


async def walk(client: TestClient, staff: Staff, **params: Any) -> list[list[int]]:
    """Every page of the list, following next_cursor to the end."""
    pages: list[list[int]] = []
    cursor = None
    while True:
        body = await listing(client, staff, **params, **({"cursor": cursor} if cursor else {}))
        pages.append([c["id"] for c in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "the cursor does not advance"


async def settled(client: TestClient) -> None:
    async def named() -> bool:
        return not await Contact.filter(name="").exists()

    await eventually(named)
    await client.app[PROFILES].idle()


# ---------------------------------------------------------------------------------------------- list order


async def test_newest_activity_first(client: TestClient, inbox: Inbox) -> None:
    agent = await quick_user("agent", inboxes=[inbox])
    t = now_ms()
    c1 = await incoming(client, "P1", "m.1", "Shop ơi", t - 30_000)
    c2 = await incoming(client, "P2", "m.2", "Cho hỏi giá", t - 10_000)
    c3 = await incoming(client, "P3", "m.3", "Còn hàng không?", t - 20_000)
    assert await ids(client, agent) == [c2.id, c3.id, c1.id]

    await incoming(client, "P1", "m.4", "Alo shop", t - 5_000)
    assert await ids(client, agent) == [c1.id, c2.id, c3.id]

    # An agent's reply is activity too.
    reply = await client.post(f"/api/conversations/{c3.id}/messages", json={"text": "Dạ còn ạ"}, headers=agent.headers)
    assert reply.status == 201
    items = (await listing(client, agent))["items"]
    assert [c["id"] for c in items] == [c3.id, c1.id, c2.id]
    stamps = [c["last_activity_at"] for c in items]
    assert stamps == sorted(stamps, reverse=True)
    assert items[0]["last_message_preview"] == "Dạ còn ạ"


@pytest.mark.parametrize("role", ["agent", "supervisor"])
async def test_cursor_walks_every_conversation_once(client: TestClient, inbox: Inbox, role: str) -> None:
    convs = await seed(inbox, 30)
    staff = await quick_user(role, inboxes=[inbox])
    pages = await walk(client, staff, limit=7)
    assert [len(p) for p in pages] == [7, 7, 7, 7, 2]
    flat = [i for page in pages for i in page]
    assert flat == newest_first(convs)
    assert len(set(flat)) == 30

    # A page size that divides the total ends without an empty page.
    assert [len(p) for p in await walk(client, staff, limit=10)] == [10, 10, 10]
    assert await walk(client, staff, limit=100) == [newest_first(convs)]


async def test_cursor_with_a_filter_and_concurrent_activity(client: TestClient, inbox: Inbox) -> None:
    convs = await seed(inbox, 20)
    supervisor = await quick_user("supervisor")
    pending = convs[::2]
    await Conversation.filter(id__in=[c.id for c in pending]).update(status="pending")
    first = await listing(client, supervisor, status="pending", limit=4)
    assert [c["id"] for c in first["items"]] == newest_first(pending)[:4]
    # Activity on an already-listed conversation moves it to the top; the cursor neither repeats nor skips others.
    await Conversation.filter(id=first["items"][0]["id"]).update(last_activity_at=datetime.now(UTC))
    rest: list[int] = []
    cursor = first["next_cursor"]
    while cursor:
        body = await listing(client, supervisor, status="pending", limit=4, cursor=cursor)
        rest += [c["id"] for c in body["items"]]
        cursor = body["next_cursor"]
    assert rest == newest_first(pending)[4:]


@pytest.mark.parametrize(
    "params",
    [
        {"status": "closed"},
        {"status": "OPEN"},
        {"assignee": "someone"},
        {"assignee": "-3"},
        {"assignee": "²"},  # a digit to str.isdigit, not a number
        {"assignee": "99999999999999999999"},  # beyond SQLite's integers
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "-1"},
        {"limit": "abc"},
        {"inbox_id": "abc"},
        {"cursor": "garbage"},
        {"cursor": "!!!"},
        {"cursor": base64.urlsafe_b64encode(b'{"a": 1}').decode()},
        {"cursor": base64.urlsafe_b64encode(b'["not a date", 5]').decode()},
        {"cursor": base64.urlsafe_b64encode(b'["2026-01-01T00:00:00+00:00", "x"]').decode()},
        {"cursor": base64.urlsafe_b64encode(b"[null, 5]").decode()},
    ],
    ids=repr,
)
async def test_invalid_list_parameters_are_400(client: TestClient, inbox: Inbox, params: dict[str, str]) -> None:
    agent = await quick_user("agent", inboxes=[inbox])
    response = await client.get("/api/conversations", params=params, headers=agent.headers)
    assert response.status == 400, await response.text()
    body = await response.json()
    assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"]


# ---------------------------------------------------------------------------------------------- filters


@dataclass
class Shop:
    inbox_a: Inbox
    inbox_b: Inbox
    telegram: Inbox
    a1: Conversation  # Đà Nẵng, contact "Trần Thị Bích Ngọc", assigned to the agent, label vip
    a2: Conversation  # còn size, resolved
    a3: Conversation  # đổi trả, labels đổi-trả + vip, negative
    b1: Conversation  # inbox B: Hà Nội
    t1: Conversation  # a telegram conversation
    agent: Staff  # member of inbox A
    supervisor: Staff


@pytest.fixture
async def shop(client: TestClient, inbox: Inbox, fake_graph: Any) -> Shop:
    fake_graph.profiles["P1"] = {
        "name": "Trần Thị Bích Ngọc",
        "first_name": "Ngọc",
        "last_name": "Trần",
        "profile_pic": "https://fake-graph.invalid/pic/P1.jpg",
    }
    inbox_b = await make_inbox(page_id=PAGE_B, app_secret=SECRET_B, name="Shop Mỹ Phẩm")
    telegram = await Inbox.create(name="Bot Telegram", channel="telegram", external_id="bot-1", credentials={})
    t = now_ms()
    a1 = await incoming(client, "P1", "m.a1", "Cho mình hỏi ship ra Đà Nẵng mất mấy ngày ạ?", t - 50_000)
    a2 = await incoming(client, "P2", "m.a2", "Áo khoác này còn size L không shop?", t - 40_000)
    a3 = await incoming(client, "P3", "m.a3", "Mình muốn đổi trả đơn hàng hôm qua", t - 30_000)
    b1 = await incoming(
        client, "Q1", "m.b1", "Giao hàng tới Hà Nội bao lâu?", t - 20_000, page_id=PAGE_B, secret=SECRET_B
    )
    (t1,) = await seed(telegram, 1, prefix="tg", start=datetime.now(UTC) - timedelta(seconds=10))
    await settled(client)
    agent = await quick_user("agent", inboxes=[inbox])
    supervisor = await quick_user("supervisor")
    h = agent.headers
    assert (await client.post(f"/api/conversations/{a1.id}/assign", json={"agent_id": agent.user.id}, headers=h)).ok
    assert (await client.post(f"/api/conversations/{a1.id}/labels", json={"labels": ["vip"]}, headers=h)).ok
    assert (await client.post(f"/api/conversations/{a2.id}/status", json={"status": "resolved"}, headers=h)).ok
    labels = {"labels": ["đổi-trả", "vip"]}
    assert (await client.post(f"/api/conversations/{a3.id}/labels", json=labels, headers=h)).ok
    await Conversation.filter(id=a3.id).update(sentiment="negative", intent="return_request")
    return Shop(inbox, inbox_b, telegram, a1, a2, a3, b1, t1, agent, supervisor)


async def test_filter_status(client: TestClient, shop: Shop) -> None:
    assert await ids(client, shop.supervisor, status="resolved") == [shop.a2.id]
    assert set(await ids(client, shop.supervisor, status="open")) == {shop.a1.id, shop.a3.id, shop.b1.id, shop.t1.id}
    assert await ids(client, shop.agent, status="open") == await ordered(shop.a1, shop.a3)
    assert await ids(client, shop.supervisor, status="snoozed") == []


async def test_filter_assignee(client: TestClient, shop: Shop) -> None:
    assert await ids(client, shop.agent, assignee="me") == [shop.a1.id]
    assert await ids(client, shop.agent, assignee="unassigned") == await ordered(shop.a2, shop.a3)
    assert await ids(client, shop.agent, assignee="all") == await ordered(shop.a1, shop.a2, shop.a3)
    assert await ids(client, shop.agent) == await ids(client, shop.agent, assignee="all")
    assert await ids(client, shop.supervisor, assignee=str(shop.agent.user.id)) == [shop.a1.id]
    assert await ids(client, shop.supervisor, assignee="me") == []
    assert shop.a1.id not in await ids(client, shop.supervisor, assignee="unassigned")


async def test_filter_inbox_and_channel(client: TestClient, shop: Shop) -> None:
    assert await ids(client, shop.supervisor, inbox_id=shop.inbox_b.id) == [shop.b1.id]
    assert set(await ids(client, shop.supervisor, inbox_id=shop.inbox_a.id)) == {shop.a1.id, shop.a2.id, shop.a3.id}
    assert await ids(client, shop.agent, inbox_id=shop.inbox_b.id) == []  # not the agent's inbox
    assert await ids(client, shop.supervisor, channel="telegram") == [shop.t1.id]
    assert shop.t1.id not in await ids(client, shop.supervisor, channel="facebook")
    assert len(await ids(client, shop.supervisor, channel="facebook")) == 4
    assert await ids(client, shop.supervisor, channel="zalo") == []


async def test_filter_label_and_sentiment(client: TestClient, shop: Shop) -> None:
    assert await ids(client, shop.agent, label="vip") == await ordered(shop.a1, shop.a3)
    assert await ids(client, shop.agent, label="đổi-trả") == [shop.a3.id]
    assert await ids(client, shop.agent, label="không-có") == []
    assert await ids(client, shop.supervisor, sentiment="negative") == [shop.a3.id]
    assert await ids(client, shop.supervisor, label="vip", assignee="me") == []
    assert await ids(client, shop.agent, label="vip", assignee="me") == [shop.a1.id]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Đà Nẵng", "a1"),
        ("da nang", "a1"),
        ("DA NANG", "a1"),
        ("đà nẵng", "a1"),
        ("còn size", "a2"),
        ("con size", "a2"),
        ("CÒN SIZE L", "a2"),
        ("doi tra", "a3"),
        ("Bích Ngọc", "a1"),
        ("bich ngoc", "a1"),
        ("tran thi bich", "a1"),
    ],
)
async def test_search_with_and_without_diacritics(client: TestClient, shop: Shop, query: str, expected: str) -> None:
    want = getattr(shop, expected).id
    assert await ids(client, shop.agent, q=query) == [want]
    assert await ids(client, shop.supervisor, q=query) == [want]


async def test_search_respects_access_and_other_filters(client: TestClient, shop: Shop) -> None:
    assert await ids(client, shop.supervisor, q="ha noi") == [shop.b1.id]
    assert await ids(client, shop.agent, q="ha noi") == []  # inbox B's customer: not for this agent
    assert await ids(client, shop.agent, q="da nang", status="resolved") == []
    assert await ids(client, shop.agent, q="con size", status="resolved") == [shop.a2.id]
    assert await ids(client, shop.agent, q="khong co tu nay") == []
    assert await ids(client, shop.agent, q="   ") == await ids(client, shop.agent)  # blank: no search
    # Search syntax in the query is text, not an error.
    for tricky in ('"', "size*", "a OR b", "NOT", "(", "size:L", "'; DROP TABLE messages; --", "&|!"):
        response = await client.get("/api/conversations", params={"q": tricky}, headers=shop.agent.headers)
        assert response.status == 200, (tricky, await response.text())


# ---------------------------------------------------------------------------------------------- query budget


def list_queries() -> list[list[str]]:
    return [statements for path, statements in REQUEST_QUERIES if path == "/api/conversations"]


@pytest.mark.parametrize("role", ["agent", "supervisor"])
async def test_list_page_is_at_most_three_queries(client: TestClient, inbox: Inbox, role: str) -> None:
    await seed(inbox, 60)
    staff = await quick_user(role, inboxes=[inbox])
    await ConversationLabel.create(conversation_id=(await Conversation.first()).id, label="vip")
    REQUEST_QUERIES.clear()
    small = await listing(client, staff, limit=5)
    large = await listing(client, staff, limit=50)
    await listing(client, staff, limit=50, cursor=small["next_cursor"], status="open", label="vip", q="khach")
    await listing(client, staff, limit=100, assignee="unassigned", channel="facebook", inbox_id=inbox.id)
    assert (len(small["items"]), len(large["items"])) == (5, 50)

    counts = [len(statements) for statements in list_queries()]
    print(f"\nSQL statements per list page ({role}): {counts}")
    assert len(counts) == 4
    assert all(count <= 3 for count in counts), list_queries()
    assert len(set(counts)) == 1, "the number of queries must not depend on the page size or filters"
    # The count is real: it holds the session lookup, the membership lookup (agents) and the list itself.
    joined = [" ".join(statements).lower() for statements in list_queries()]
    assert all("auth_sessions" in s and "from conversations" in s for s in joined)
    if role == "agent":
        assert counts[0] == 3 and all("inbox_members" in s for s in joined)
    else:
        assert counts[0] == 2


async def test_query_count_reaches_the_backend_calls(client: TestClient, inbox: Inbox) -> None:
    """The recorder sees a request that reads through the ORM too (guards the counting itself)."""
    (conv,) = await seed(inbox, 1)
    agent = await quick_user("agent", inboxes=[inbox])
    REQUEST_QUERIES.clear()
    response = await client.get(f"/api/conversations/{conv.id}", headers=agent.headers)
    assert response.status == 200
    (statements,) = [s for path, s in REQUEST_QUERIES if path == f"/api/conversations/{conv.id}"]
    assert len(statements) >= 3 and any("conversations" in s for s in statements)


# ---------------------------------------------------------------------------------------------- detail, messages


async def test_detail(client: TestClient, shop: Shop) -> None:
    response = await client.get(f"/api/conversations/{shop.a1.id}", headers=shop.agent.headers)
    assert response.status == 200
    body = await response.json()
    required = {"id", "inbox_id", "channel", "status", "contact", "assignee_id", "labels", "last_message_at"}
    assert required | {"unread_count", "sentiment", "intent", "nlp"} <= set(body)
    assert (body["id"], body["inbox_id"], body["channel"]) == (shop.a1.id, shop.inbox_a.id, "facebook")
    assert body["contact"]["name"] == "Trần Thị Bích Ngọc"
    assert body["contact"]["id"] == shop.a1.contact_id
    assert {"picture_url", "phone", "email"} <= set(body["contact"])
    assert (body["assignee_id"], body["labels"], body["status"]) == (shop.agent.user.id, ["vip"], "open")
    assert body["last_message_preview"] == "Cho mình hỏi ship ra Đà Nẵng mất mấy ngày ạ?"
    assert {"sentiment", "intent"} <= set(body["nlp"])

    negative = await (await client.get(f"/api/conversations/{shop.a3.id}", headers=shop.agent.headers)).json()
    assert negative["nlp"]["sentiment"] == negative["sentiment"] == "negative"
    assert negative["nlp"]["intent"] == "return_request"
    # The list and the detail agree on what they both show.
    listed = {c["id"]: c for c in (await listing(client, shop.agent))["items"]}[shop.a3.id]
    assert {k: negative[k] for k in listed} == listed


@pytest.mark.parametrize("bad", ["abc", "0", "-1", "99999999999999"])
async def test_detail_with_a_bad_id(client: TestClient, shop: Shop, bad: str) -> None:
    response = await client.get(f"/api/conversations/{bad}", headers=shop.supervisor.headers)
    assert response.status in (400, 404)
    assert set(await response.json()) == {"error"}


async def test_messages_page_backwards_without_gaps(client: TestClient, inbox: Inbox) -> None:
    agent = await quick_user("agent", inboxes=[inbox])
    t = now_ms() - 60_000
    bodies = [messenger_text(PAGE_ID, "P9", f"m.{i}", f"Tin nhắn số {i}", t + i * 1000) for i in range(11)]
    assert (await post_webhook(client, messenger_batch(*bodies))).status == 200
    await eventually(lambda: Message.filter(external_id="m.10").exists())
    conv = await Conversation.get(id=(await Message.get(external_id="m.0")).conversation_id)
    url = f"/api/conversations/{conv.id}/messages"
    assert (await client.post(url, json={"text": "Dạ shop chào bạn"}, headers=agent.headers)).status == 201
    assert (await client.post(url, json={"text": "ghi chú nội bộ", "private": True}, headers=agent.headers)).ok
    everything = [m.id for m in await Message.filter(conversation_id=conv.id).order_by("id")]
    assert len(everything) == 13

    pages: list[list[dict[str, Any]]] = []
    before = None
    while True:
        params = {"limit": 5, **({"before": before} if before else {})}
        response = await client.get(url, params=params, headers=agent.headers)
        assert response.status == 200
        body = await response.json()
        pages.append(body["items"])
        before = body["next_before"]
        if before is None:
            break
        assert before == body["items"][0]["id"]
    assert [len(p) for p in pages] == [5, 5, 3]
    for page in pages:  # oldest → newest within a page
        assert [m["id"] for m in page] == sorted(m["id"] for m in page)
    walked = [m["id"] for page in reversed(pages) for m in page]
    assert walked == everything

    newest = pages[0]
    assert (newest[-1]["text"], newest[-1]["private"], newest[-1]["direction"]) == ("ghi chú nội bộ", True, "out")
    assert newest[-2]["sender_type"] == "agent" and newest[-2]["delivery_status"] == "sent"
    oldest = pages[-1][0]
    assert (oldest["text"], oldest["direction"], oldest["sender_type"]) == ("Tin nhắn số 0", "in", "contact")
    keys = {"id", "conversation_id", "direction", "sender_type", "text", "private", "created_at", "external_id"}
    assert keys | {"delivery_status", "sentiment", "intent"} <= set(oldest)

    default = await (await client.get(url, headers=agent.headers)).json()
    assert [m["id"] for m in default["items"]] == everything and default["next_before"] is None
    for bad in ({"limit": "0"}, {"limit": "abc"}, {"limit": "201"}, {"before": "x"}):
        assert (await client.get(url, params=bad, headers=agent.headers)).status == 400, bad


# ---------------------------------------------------------------------------------------------- status


async def test_snooze_needs_a_future_time(client: TestClient, inbox: Inbox) -> None:
    (conv,) = await seed(inbox, 1)
    agent = await quick_user("agent", inboxes=[inbox])
    url = f"/api/conversations/{conv.id}/status"
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    for body, status in (
        ({"status": "snoozed"}, 422),
        ({"status": "snoozed", "snoozed_until": None}, 422),
        ({"status": "snoozed", "snoozed_until": past}, 422),
        ({"status": "snoozed", "snoozed_until": "tomorrow"}, 400),
        ({"status": "snoozed", "snoozed_until": "2099-01-01T08:00:00"}, 400),  # no time zone
        # Out of any plan, and once stored every read of the conversation would overflow converting it to UTC.
        ({"status": "snoozed", "snoozed_until": "9999-12-31T23:00:00-05:00"}, 400),
        ({"status": "closed"}, 422),
        ({"status": None}, 400),
        ({}, 400),
    ):
        response = await client.post(url, json=body, headers=agent.headers)
        assert response.status == status, (body, await response.text())
        assert set(await response.json()) == {"error"}
    after = await Conversation.get(id=conv.id)
    assert (after.status, after.snoozed_until) == ("open", None)
    assert not await ConversationEvent.filter(conversation_id=conv.id, kind="status_changed").exists()


async def test_snoozed_conversation_wakes_up(client: TestClient, inbox: Inbox) -> None:
    (conv,) = await seed(inbox, 1)
    agent = await quick_user("agent", inboxes=[inbox])
    until = datetime.now(UTC) + timedelta(hours=2)
    response = await client.post(
        f"/api/conversations/{conv.id}/status",
        json={"status": "snoozed", "snoozed_until": until.isoformat().replace("+00:00", "Z")},
        headers=agent.headers,
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["status"] == "snoozed"
    assert abs(datetime.fromisoformat(body["snoozed_until"].replace("Z", "+00:00")) - until) < timedelta(seconds=1)
    assert await ids(client, agent, status="snoozed") == [conv.id]

    bus = client.app[BUS]
    assert await actions.wake_snoozed(bus) == 0  # not yet
    await Conversation.filter(id=conv.id).update(snoozed_until=datetime.now(UTC) - timedelta(seconds=1))
    watcher = bus.subscribe(None, lambda event: True)
    try:
        assert await actions.wake_snoozed(bus) == 1
        published = await asyncio.wait_for(watcher.next_batch(), timeout=2)
    finally:
        watcher.close()
    woke = await (await client.get(f"/api/conversations/{conv.id}", headers=agent.headers)).json()
    assert (woke["status"], woke["snoozed_until"]) == ("open", None)
    assert [(e.type, e.data["id"], e.data["status"]) for e in published] == [("conversation.updated", conv.id, "open")]
    event = await ConversationEvent.filter(conversation_id=conv.id, kind="status_changed").order_by("-id").first()
    assert (event.actor_type, event.data["status"], event.data["reason"]) == ("system", "open", "snooze_ended")
    assert await actions.wake_snoozed(bus) == 0


async def test_status_changes_are_recorded(client: TestClient, inbox: Inbox) -> None:
    (conv,) = await seed(inbox, 1)
    agent = await quick_user("agent", inboxes=[inbox])
    url = f"/api/conversations/{conv.id}/status"
    until = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for status in ("pending", "snoozed", "resolved", "open"):
        body = {"status": status, **({"snoozed_until": until} if status == "snoozed" else {})}
        response = await client.post(url, json=body, headers=agent.headers)
        assert response.status == 200
        got = await response.json()
        assert got["status"] == status
        assert (got["snoozed_until"] is None) == (status != "snoozed")
    events = await ConversationEvent.filter(conversation_id=conv.id, kind="status_changed").order_by("id")
    assert [(e.data["previous"], e.data["status"]) for e in events] == [
        ("open", "pending"),
        ("pending", "snoozed"),
        ("snoozed", "resolved"),
        ("resolved", "open"),
    ]
    assert all(e.actor_id == agent.user.id for e in events)


# ---------------------------------------------------------------------------------------------- labels, read


async def test_labels_replace_the_set(client: TestClient, inbox: Inbox) -> None:
    a, b = await seed(inbox, 2)
    agent = await quick_user("agent", inboxes=[inbox])

    async def put(conv: Conversation, labels: Any) -> Any:
        return await client.post(f"/api/conversations/{conv.id}/labels", json={"labels": labels}, headers=agent.headers)

    first = await put(a, ["vip", "giao-gấp", " vip "])
    assert first.status == 200
    assert (await first.json())["labels"] == ["vip", "giao-gấp"]
    assert (await put(b, ["vip"])).status == 200
    assert await ids(client, agent, label="vip") == await ordered(a, b)

    replaced = await put(a, ["hoàn tiền"])
    assert (await replaced.json())["labels"] == ["hoàn tiền"]
    assert await ids(client, agent, label="vip") == [b.id]
    assert await ids(client, agent, label="giao-gấp") == []
    assert await ids(client, agent, label="hoàn tiền") == [a.id]
    assert sorted(await ConversationLabel.filter(conversation_id=a.id).values_list("label", flat=True)) == ["hoàn tiền"]
    detail = await (await client.get(f"/api/conversations/{a.id}", headers=agent.headers)).json()
    assert detail["labels"] == ["hoàn tiền"]

    cleared = await put(a, [])
    assert (await cleared.json())["labels"] == []
    assert not await ConversationLabel.filter(conversation_id=a.id).exists()

    for bad, status in ((["ok", ""], 422), ([7], 422), (["x" * 101], 422), ([f"l{i}" for i in range(21)], 422)):
        assert (await put(b, bad)).status == status, bad
    for bad in ("vip", None, {"vip": True}):
        assert (await put(b, bad)).status == 400, bad
    assert (await Conversation.get(id=b.id)).labels == ["vip"]
    assert await ConversationLabel.filter(conversation_id=b.id).count() == 1


async def test_read_resets_unread_count(client: TestClient, inbox: Inbox) -> None:
    agent = await quick_user("agent", inboxes=[inbox])
    t = now_ms()
    for i in range(3):
        conv = await incoming(client, "P5", f"m.r{i}", f"Shop ơi {i}", t - 10_000 + i)
    assert (await Conversation.get(id=conv.id)).unread_count == 3
    assert (await listing(client, agent))["items"][0]["unread_count"] == 3

    response = await client.post(f"/api/conversations/{conv.id}/read", headers=agent.headers)
    assert response.status == 200
    assert (await response.json())["unread_count"] == 0
    assert (await Conversation.get(id=conv.id)).unread_count == 0
    assert (await listing(client, agent))["items"][0]["unread_count"] == 0
    again = await client.post(f"/api/conversations/{conv.id}/read", headers=agent.headers)
    assert (await again.json())["unread_count"] == 0

    await incoming(client, "P5", "m.r9", "Alo", t)
    assert (await listing(client, agent))["items"][0]["unread_count"] == 1


# ---------------------------------------------------------------------------------------------- OpenAPI


async def openapi_document(client: TestClient) -> dict[str, Any]:
    response = await client.get("/api/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    return await response.json()


async def test_openapi_lists_every_route(client: TestClient) -> None:
    document = await openapi_document(client)
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] and document["info"]["version"]
    missing, wrong_role = [], []
    for route in client.app.router.routes():
        if route.method == "HEAD":
            continue  # aiohttp adds HEAD beside every GET
        path, method = route.resource.canonical, route.method.lower()
        operation = document["paths"].get(path, {}).get(method)
        if operation is None:
            missing.append(f"{route.method} {path}")
            continue
        role = getattr(route.handler, "required_role", None)
        if role is not None and operation.get("x-required-role") != role:
            wrong_role.append(f"{route.method} {path}: {operation.get('x-required-role')} != {role}")
        assert operation.get("responses"), path
    assert missing == [], "routes missing from /api/openapi.json"
    assert wrong_role == []


async def test_openapi_document_is_valid(client: TestClient) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(await openapi_document(client))
