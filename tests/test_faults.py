"""Faults: every event delivered three times, a platform API that is down for a while, a slow platform, a database
that cannot commit. Nothing is lost, nothing is duplicated, nobody is told "done" for something not saved.
(The SIGKILL test is in tests/test_faults_kill.py.)"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from agents.models import InboxMember
from channels.fakes import messenger_postback, messenger_text, vietnamese_profile
from inbox.app import create_app
from inbox.config import load_settings
from inbox.models import Conversation, InboundEvent, Inbox, Message, OutboxItem
from inbox.outbox import Outbox
from tests.conftest import (
    APP_SECRET,
    PAGE_ID,
    TEST_DATABASE_URL,
    eventually,
    now_ms,
    post_webhook,
    postgres_lock_timeout,
    quick_user,
)
from tests.test_realtime import connected, marker

PAGE_B, SECRET_B = "2222", "app_secret_of_page_b"


class Platform:
    """A Graph API stand-in: outages per page token, a gate that holds every request (a slow platform)."""

    def __init__(self) -> None:
        self.down: set[str] = set()
        self.gate = asyncio.Event()
        self.gate.set()
        self.sends: list[tuple[str, dict[str, Any]]] = []
        self.held = 0
        self.app = web.Application()
        self.app.router.add_post("/{version}/{page}/messages", self.send)
        self.app.router.add_get("/{version}/{psid}", self.profile)

    async def send(self, request: web.Request) -> web.Response:
        token, body = request.query.get("access_token", ""), await request.json()
        self.sends.append((token, body))
        await self._hold()
        if token in self.down:
            error = {"message": "Service temporarily unavailable", "type": "OAuthException", "code": 2,
                     "is_transient": True}  # fmt: skip
            return web.json_response({"error": error}, status=503)
        return web.json_response({"recipient_id": body["recipient"]["id"], "message_id": f"m_out_{len(self.sends)}"})

    async def profile(self, request: web.Request) -> web.Response:
        await self._hold()
        return web.json_response(vietnamese_profile(request.match_info["psid"]))

    async def _hold(self) -> None:
        if not self.gate.is_set():
            self.held += 1
            try:
                await self.gate.wait()
            finally:
                self.held -= 1

    def sends_with(self, token: str) -> int:
        return sum(1 for t, _ in self.sends if t == token)


@pytest.fixture
async def platform(aiohttp_server: Any) -> Platform:
    fake = Platform()
    fake.server = await aiohttp_server(fake.app)
    return fake


@pytest.fixture
async def app_client(aiohttp_client: Any, database_url: str, platform: Platform, tmp_path: Path) -> TestClient:
    settings = load_settings(
        environ={
            "HOPTHU_DATABASE_URL": database_url,
            "HOPTHU_SECRET_KEY": "k",
            "HOPTHU_FACEBOOK_GRAPH_URL": str(platform.server.make_url("")).rstrip("/"),
        },
        toml_path=tmp_path / "absent.toml",
        outbox_base_delay=0.05,
        outbox_max_attempts=4,
    )
    return await aiohttp_client(create_app(settings))


async def shop(page_id: str, secret: str, token: str, name: str) -> Inbox:
    credentials = {"page_token": token, "app_secret": secret, "verify_token": "v"}
    return await Inbox.create(name=name, channel="facebook", external_id=page_id, credentials=credentials)


async def incoming(client: TestClient, page: str, secret: str, psid: str, mid: str, text: str) -> Conversation:
    response = await post_webhook(client, messenger_text(page, psid, mid, text, now_ms()), secret=secret)
    assert response.status == 200, await response.text()
    msg = await eventually(lambda: Message.get_or_none(external_id=mid))
    return await Conversation.get(id=msg.conversation_id)


# ---------------------------------------------------------------------------------------------- three deliveries


async def test_every_event_delivered_three_times_is_stored_once(app_client: TestClient) -> None:
    client = app_client
    inbox = await shop(PAGE_ID, APP_SECRET, "token-A", "Shop A")
    agent = await quick_user("agent", inboxes=[inbox])
    socket = await connected(client, agent)
    ts = now_ms()
    bodies = [messenger_text(PAGE_ID, f"psid-{n % 3}", f"mid.thrice.{n}", f"Tin {n}", ts + n) for n in range(12)]
    bodies += [messenger_postback(PAGE_ID, "psid-0", "GET_STARTED", "Bắt đầu", ts + 20 + n) for n in range(2)]

    for body in bodies:  # 1: one by one
        assert (await post_webhook(client, body)).status == 200
    responses = await asyncio.gather(*(post_webhook(client, b) for b in bodies))  # 2: all at once
    assert [r.status for r in responses] == [200] * len(bodies)
    batched = {"object": "page", "entry": [e for b in bodies for e in b["entry"]]}  # 3: one batch, as Facebook does
    assert (await post_webhook(client, batched)).status == 200

    await eventually(lambda: _all_processed())
    mids = Counter(await Message.filter(conversation__inbox_id=inbox.id).values_list("external_id", flat=True))
    assert len(mids) == len(bodies) and set(mids.values()) == {1}, mids
    assert await InboundEvent.filter(inbox_id=inbox.id).count() == len(bodies)
    convs = await Conversation.filter(inbox_id=inbox.id)
    assert len(convs) == 3 and sum(c.unread_count for c in convs) == len(bodies)
    for _ in mids:  # publishing follows the commit: wait for every message's frame, then for a marker after them
        await socket.until(lambda f: f["type"] == "message.created", timeout=15)
    await marker(client, socket)
    created = [f["data"]["external_id"] for f in socket.events("message.created")]
    assert sorted(created) == sorted(mids), "each message published exactly once"
    await socket.close()


async def _all_processed() -> bool:
    return not await InboundEvent.filter(processed=False).exists()


# ---------------------------------------------------------------------------------------------- platform down


async def test_a_platform_outage_retries_then_fails_visibly_and_spares_other_inboxes(
    app_client: TestClient, platform: Platform
) -> None:
    client = app_client
    inbox_a = await shop(PAGE_ID, APP_SECRET, "token-A", "Shop A")
    inbox_b = await shop(PAGE_B, SECRET_B, "token-B", "Shop B")
    conv_a = await incoming(client, PAGE_ID, APP_SECRET, "psid-a", "mid.a.1", "Chị cần đổi size")
    conv_b = await incoming(client, PAGE_B, SECRET_B, "psid-b", "mid.b.1", "Còn hàng không em?")
    agent = await quick_user("agent", inboxes=[inbox_a])
    await InboxMember.create(user=agent.user, inbox=inbox_b)
    socket = await connected(client, agent)
    platform.down.add("token-A")

    first = await client.post(f"/api/conversations/{conv_a.id}/messages", json={"text": "Dạ shop đổi ạ"},
                              headers=agent.headers)  # fmt: skip
    assert first.status == 201
    other = await client.post(f"/api/conversations/{conv_b.id}/messages", json={"text": "Dạ còn ạ"},
                              headers=agent.headers)  # fmt: skip
    assert other.status == 201
    # Inbound keeps flowing for the shop whose sends fail: nothing is lost while the platform is down.
    await incoming(client, PAGE_ID, APP_SECRET, "psid-a", "mid.a.2", "Shop ơi?")
    a_id, b_id = (await first.json())["id"], (await other.json())["id"]

    await eventually(lambda: Message.filter(id=b_id, delivery_status="sent").exists())  # B unaffected
    failed = await eventually(lambda: Message.get_or_none(id=a_id, delivery_status="failed"), timeout=10)
    assert "4" in failed.failure_reason and "Service temporarily unavailable" in failed.failure_reason
    assert platform.sends_with("token-A") == 4  # max_attempts, then it stops
    outbox = await OutboxItem.get(message_id=a_id)
    assert (outbox.state, outbox.attempts) == ("failed", 4)
    update = await socket.until(lambda f: f["type"] == "message.updated" and f["data"]["id"] == a_id
                                and f["data"]["delivery_status"] == "failed")  # fmt: skip
    assert update["data"]["failure_reason"] == failed.failure_reason

    platform.down.clear()  # the platform is back: new replies go out, the failed one stays visibly failed
    again = await client.post(f"/api/conversations/{conv_a.id}/messages", json={"text": "Shop xin lỗi ạ"},
                              headers=agent.headers)  # fmt: skip
    assert again.status == 201
    again_id = (await again.json())["id"]
    await eventually(lambda: Message.filter(id=again_id, delivery_status="sent").exists())
    assert (await Message.get(id=a_id)).delivery_status == "failed"
    assert platform.sends_with("token-A") == 5 and platform.sends_with("token-B") == 1
    await socket.close()


def test_backoff_is_exponential_with_jitter_capped_and_honours_retry_after() -> None:
    outbox = Outbox(None, {}, base_delay=1.0, max_delay=60.0)  # type: ignore[arg-type]
    for attempt in range(1, 10):
        ceiling = min(60.0, 2.0 ** (attempt - 1))
        samples = [outbox._backoff(attempt, None) for _ in range(200)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples), attempt
        assert len(set(samples)) > 100, "jitter spreads retries out"
    assert outbox._backoff(1, 30.0) >= 30.0  # the platform's Retry-After wins over a shorter backoff


# ---------------------------------------------------------------------------------------------- slow platform


async def test_a_slow_platform_never_blocks_the_event_loop(app_client: TestClient, platform: Platform) -> None:
    client = app_client
    inbox = await shop(PAGE_ID, APP_SECRET, "token-A", "Shop A")
    conv = await incoming(client, PAGE_ID, APP_SECRET, "psid-slow", "mid.slow.1", "Alo shop")
    agent = await quick_user("agent", inboxes=[inbox])
    platform.gate.clear()  # from now on the platform answers nothing until released

    reply = await client.post(f"/api/conversations/{conv.id}/messages", json={"text": "Dạ"}, headers=agent.headers)
    assert reply.status == 201  # answered although the platform still holds the send
    assert (await reply.json())["delivery_status"] == "pending"
    reply_id = (await reply.json())["id"]
    await eventually(lambda: _held(platform))
    # While the platform holds the send (and profile fetches), everything else goes on.
    for n in range(5):
        response = await post_webhook(
            client, messenger_text(PAGE_ID, f"psid-new-{n}", f"mid.slow.n{n}", "Hi", now_ms())
        )
        assert response.status == 200
    await eventually(lambda: count_is(Message.filter(external_id__startswith="mid.slow.n"), 5))
    assert (await client.get("/api/conversations", headers=agent.headers)).status == 200
    assert (await client.get("/healthz")).status == 200
    socket = await connected(client, agent)
    assert platform.held >= 1 and not platform.gate.is_set()  # all of it happened while the platform was stuck

    platform.gate.set()
    await eventually(lambda: Message.filter(id=reply_id, delivery_status="sent").exists())
    await socket.close()


async def _held(platform: Platform) -> bool:
    return platform.held >= 1


async def count_is(query: Any, n: int) -> bool:
    return await query.count() == n


# ---------------------------------------------------------------------------------------------- database down


class locked_database:
    """Another client holds the write lock: SQLite `BEGIN EXCLUSIVE`; Postgres EXCLUSIVE locks on every table
    (reads go on, writes wait and time out)."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def __aenter__(self) -> None:
        if TEST_DATABASE_URL:
            import asyncpg

            self.pg = await asyncpg.connect(self.url.replace("postgres://", "postgresql://", 1))
            self.tx = self.pg.transaction()
            await self.tx.start()
            await self.pg.execute("SET LOCAL lock_timeout = '5s'")
            tables = [r[0] for r in await self.pg.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")]
            await self.pg.execute(f"LOCK TABLE {', '.join(tables)} IN EXCLUSIVE MODE")
        else:
            self.sqlite = sqlite3.connect(self.url.removeprefix("sqlite://").split("?")[0], isolation_level=None)
            self.sqlite.execute("BEGIN EXCLUSIVE")

    async def __aexit__(self, *exc: object) -> None:
        if TEST_DATABASE_URL:
            await self.tx.rollback()
            await self.pg.close()
        else:
            self.sqlite.execute("ROLLBACK")
            self.sqlite.close()


@pytest.fixture
async def impatient_client(
    aiohttp_client: Any, database_url: str, fake_graph: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> TestClient:
    """The app with a database that gives up on a lock after 50-100 ms instead of waiting 10 s."""
    if TEST_DATABASE_URL:
        postgres_lock_timeout(monkeypatch)
        url = database_url
    else:
        url = f"{database_url}?busy_timeout=50"
    settings = load_settings(
        environ={"HOPTHU_DATABASE_URL": url, "HOPTHU_SECRET_KEY": "k",
                 "HOPTHU_FACEBOOK_GRAPH_URL": fake_graph.base_url},
        toml_path=tmp_path / "absent.toml",
    )  # fmt: skip
    client = await aiohttp_client(create_app(settings))
    client.database_url = database_url
    return client


async def test_a_database_that_cannot_commit_gets_503_never_200(impatient_client: TestClient) -> None:
    client = impatient_client
    inbox = await shop(PAGE_ID, APP_SECRET, "page-token-1", "Shop A")
    conv = await incoming(client, PAGE_ID, APP_SECRET, "psid-db", "mid.db.1", "Alo")
    supervisor = await quick_user("supervisor")
    await InboxMember.create(user=supervisor.user, inbox=inbox)
    url = f"/api/conversations/{conv.id}"
    bodies = [messenger_text(PAGE_ID, f"psid-l{n}", f"mid.locked.{n}", "Tin", now_ms()) for n in range(8)]
    before = (await Conversation.get(id=conv.id)).status, await Message.all().count()

    async with locked_database(client.database_url):
        writes = {
            "status": await client.post(f"{url}/status", json={"status": "resolved"}, headers=supervisor.headers),
            "reply": await client.post(f"{url}/messages", json={"text": "Dạ"}, headers=supervisor.headers),
            "labels": await client.post(f"{url}/labels", json={"labels": ["vip"]}, headers=supervisor.headers),
        }
        hooks = await asyncio.wait_for(asyncio.gather(*(post_webhook(client, b) for b in bodies)), timeout=30)
        for name, response in writes.items():
            assert response.status == 503, (name, await response.text())
            assert (await response.json())["error"]["code"] == "storage_unavailable"
        assert [r.status for r in hooks] == [503] * len(bodies)

    assert ((await Conversation.get(id=conv.id)).status, await Message.all().count()) == before  # nothing half-done
    assert not await InboundEvent.filter(dedupe_key__startswith="msg:mid.locked.").exists()
    # Afterwards the same requests succeed: the platform's redelivery and the agent's retry.
    assert [(await post_webhook(client, b)).status for b in bodies] == [200] * len(bodies)
    retry = await client.post(f"{url}/status", json={"status": "resolved"}, headers=supervisor.headers)
    assert retry.status == 200
    await eventually(lambda: count_is(Message.filter(external_id__startswith="mid.locked."), len(bodies)))
