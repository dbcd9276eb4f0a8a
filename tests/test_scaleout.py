"""Two real `hopthu serve` processes on one Postgres database with Redis between them, as in production.

Webhooks go to process A; an agent connected to process B receives them over the WebSocket, in order, nothing
missing and nothing twice, with the same seqs as an agent on A. Then the test's own Redis is killed while webhooks
keep arriving (each still answered 200: the database is the source of truth), restarted empty, and both agents
receive everything they missed without reconnecting.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets

from channels.fakes import FakeGraphAPI, messenger_text, signed
from inbox import db
from tests.conftest import APP_SECRET, PAGE_ID, PAGE_TOKEN, TEST_DATABASE_URL, VERIFY_TOKEN, now_ms
from tests.test_bus_redis import OwnRedis, needs_redis_server
from tests.test_crash_durability import free_port, server_env

pytestmark = [
    pytest.mark.skipif(
        not TEST_DATABASE_URL, reason="HOPTHU_TEST_DATABASE_URL is not set: several processes need Postgres"
    ),
    needs_redis_server,
]
EMAIL, PASSWORD = "giam.sat@shop.vn", "mật-khẩu-giám-sát-123"


def cli(env: dict[str, str], cwd: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "inbox.cli", *args], env=env, cwd=cwd, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


async def start_server(env: dict[str, str], port: int, cwd: Path) -> subprocess.Popen[bytes]:
    """`hopthu serve` as a real process; its output goes to a log shown if it never becomes ready."""
    log_path = cwd / f"serve-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "inbox.cli", "serve", "--port", str(port)],
            env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 90  # generous: a loaded CI machine imports slowly
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return proc
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    proc.kill()
    proc.wait()
    raise AssertionError(f"server did not become ready:\n{log_path.read_text(errors='replace')[-3000:]}")


class Agent:
    """A supervisor's browser tab: every frame its WebSocket receives, in arrival order."""

    def __init__(self, port: int, token: str) -> None:
        self.url = f"ws://127.0.0.1:{port}/ws?token={token}"
        self.frames: list[dict[str, Any]] = []
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.closed = False

    async def start(self) -> None:
        self.task = asyncio.create_task(self._read())
        await asyncio.wait_for(self.ready.wait(), 30)

    async def _read(self) -> None:
        async with websockets.connect(self.url, max_size=None) as socket:
            async for raw in socket:
                frame = json.loads(raw)
                self.frames.append(frame)
                if frame["type"] == "ready":
                    self.ready.set()
        self.closed = True

    def created(self) -> list[str]:
        return [f["data"]["external_id"] for f in self.frames if f["type"] == "message.created"]

    async def until_created(self, mids: list[str], timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while not set(mids) <= set(self.created()):
            missing = sorted(set(mids) - set(self.created()))
            assert time.monotonic() < deadline, f"{len(missing)} messages never arrived, e.g. {missing[:5]}"
            assert not self.closed, "the socket was closed"
            await asyncio.sleep(0.05)
        return self.created()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


async def post(session: aiohttp.ClientSession, port: int, n: int) -> str:
    mid = f"m_scale_{n}"
    body, headers = signed(messenger_text(PAGE_ID, f"psid-{n % 4}", mid, f"Tin nhắn số {n} ạ", now_ms()), APP_SECRET)
    async with session.post(f"http://127.0.0.1:{port}/webhooks/facebook", data=body, headers=headers) as response:
        assert response.status == 200, await response.text()
    return mid


async def reply_through_both(session: aiohttp.ClientSession, ports: tuple[int, int], token: str) -> list[str]:
    auth = {"Authorization": f"Bearer {token}"}
    async with session.get(f"http://127.0.0.1:{ports[1]}/api/conversations", headers=auth) as response:
        assert response.status == 200, await response.text()
        conversation = (await response.json())["items"][0]["id"]
    texts = [f"Dạ shop trả lời lần {n} ạ" for n in range(8)]
    for n, text in enumerate(texts):
        url = f"http://127.0.0.1:{ports[n % 2]}/api/conversations/{conversation}/messages"
        async with session.post(url, json={"text": text}, headers=auth) as response:
            assert response.status in (200, 201), await response.text()
    return texts


async def until_sent(fake_graph: FakeGraphAPI, texts: list[str]) -> None:
    def sent() -> list[str]:
        return [m["message"]["text"] for m in fake_graph.sent_messages() if m["message"].get("text") in texts]

    deadline = time.monotonic() + 30
    while set(sent()) != set(texts):
        assert time.monotonic() < deadline, f"sent {sent()}"
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # a second send would come from the other process's next outbox pass
    assert sorted(sent()) == sorted(texts), "a reply was sent more than once"


async def stored(database_url: str) -> tuple[int, int]:
    await db.connect(database_url, apply_migrations=False)
    try:
        conn = db.connection()
        messages = await conn.execute_query_dict("SELECT COUNT(*) AS n FROM messages")
        failed = await conn.execute_query_dict("SELECT COUNT(*) AS n FROM inbound_events WHERE error IS NOT NULL")
    finally:
        await db.disconnect()
    return messages[0]["n"], failed[0]["n"]


async def test_two_processes_share_events_in_order_and_survive_a_redis_outage(
    database_url: str, tmp_path: Path, redis_server: OwnRedis, fake_graph: FakeGraphAPI
) -> None:
    env = {**server_env(database_url, tmp_path), "HOPTHU_REDIS_URL": redis_server.url}
    env["HOPTHU_FACEBOOK_GRAPH_URL"] = fake_graph.base_url
    cli(env, tmp_path, "inbox", "add", "--channel", "facebook", "--name", "Shop Hai Máy", "--page-id", PAGE_ID,
        "--page-token", PAGE_TOKEN, "--app-secret", APP_SECRET, "--verify-token", VERIFY_TOKEN)  # fmt: skip
    cli(env, tmp_path, "user", "add", "--email", EMAIL, "--password", PASSWORD, "--role", "supervisor")
    port_a, port_b = free_port(), free_port()
    procs = [await start_server(env, port_a, tmp_path)]
    agents: list[Agent] = []
    try:
        procs.append(await start_server(env, port_b, tmp_path))  # after A: A applied the migrations
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"http://127.0.0.1:{port_b}/api/auth/login", json={"email": EMAIL, "password": PASSWORD}
            ) as response:
                assert response.status == 200, await response.text()
                token = (await response.json())["token"]
            on_b, on_a = Agent(port_b, token), Agent(port_a, token)
            agents += [on_b, on_a]
            await on_b.start()
            await on_a.start()

            # 1. Webhooks to A, received on B: in order, each once.
            first = [await post(session, port_a, n) for n in range(40)]
            assert await on_b.until_created(first, timeout=30) == first
            assert await on_a.until_created(first, timeout=30) == first

            # 2. Redis dies; ingest goes on, every webhook answered 200.
            redis_server.stop()
            during = [await post(session, port_a, n) for n in range(40, 80)]
            await asyncio.sleep(0.5)
            redis_server.start()  # back, and empty (no persistence)

            # 3. Both agents get what they missed, on the sockets they already had ("within 5 s": with margin).
            everything = first + during
            assert await on_b.until_created(everything, timeout=20) == everything
            assert await on_a.until_created(everything, timeout=20) == everything
            after = [await post(session, port_a, n) for n in range(80, 90)]
            assert await on_b.until_created(everything + after, timeout=20) == everything + after

            # 4. Replies through either process: the shared outbox sends each exactly once.
            texts = await reply_through_both(session, (port_a, port_b), token)
            await until_sent(fake_graph, texts)

        for agent in agents:
            assert not [f for f in agent.frames if f["type"] == "resync"], "an agent was told to resync"
            seqs = [f["seq"] for f in agent.frames if f["type"] != "ready"]
            assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)), "seqs must strictly increase"

        # One order for the deployment: both agents saw the same events under the same seqs.
        def created_by_seq(agent: Agent) -> dict[int, Any]:
            return {f["seq"]: f["data"]["id"] for f in agent.frames if f["type"] == "message.created"}

        assert created_by_seq(on_a) == created_by_seq(on_b)
    finally:
        for agent in agents:
            await agent.stop()
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=15)
    assert await stored(database_url) == (98, 0)  # 90 from customers + 8 replies, each applied once
