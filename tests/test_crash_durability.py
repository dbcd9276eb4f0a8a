"""A 200 means stored: kill the server with SIGKILL while webhooks are being acknowledged, restart it, and find
every acknowledged event stored exactly once (redeliveries of them included).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from channels.fakes import messenger_text, signed
from inbox import db
from tests.conftest import APP_SECRET, PAGE_ID, PAGE_TOKEN, VERIFY_TOKEN, now_ms


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOPTHU_")}
    env.update(
        HOPTHU_DATABASE_URL=database_url,
        HOPTHU_SECRET_KEY="crash-test-secret",
        HOPTHU_FACEBOOK_GRAPH_URL="http://127.0.0.1:9",  # profile fetches fail fast; irrelevant here
        HOPTHU_CONFIG=str(tmp_path / "absent.toml"),
    )
    return env


def add_facebook_inbox(env: dict[str, str], cwd: Path) -> str:
    """`hopthu inbox add --channel facebook` for the test page, as an operator runs it; returns what it printed."""
    return subprocess.run(
        [sys.executable, "-m", "inbox.cli", "inbox", "add", "--channel", "facebook", "--name", "Shop", "--page-id",
         PAGE_ID, "--page-token", PAGE_TOKEN, "--app-secret", APP_SECRET, "--verify-token", VERIFY_TOKEN],
        env=env, cwd=cwd, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


async def start_server(env: dict[str, str], port: int, cwd: Path, log: Path | None = None) -> subprocess.Popen[bytes]:
    """`hopthu serve` on `port`, once /healthz answers; its output goes to `log` when given."""
    with open(log, "wb") if log else open(os.devnull, "wb") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "inbox.cli", "serve", "--port", str(port)],
            env=env,
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return proc
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    proc.kill()
    raise AssertionError("server did not become ready")


async def stored_counts(database_url: str) -> dict[str, int]:
    await db.connect(database_url, apply_migrations=False)
    try:
        rows = await db.connection().execute_query_dict(
            "SELECT external_id, COUNT(*) AS n FROM messages WHERE external_id IS NOT NULL GROUP BY external_id"
        )
        pending = await db.connection().execute_query_dict(
            "SELECT COUNT(*) AS n FROM inbound_events WHERE processed = false"
        )
    finally:
        await db.disconnect()
    counts = {r["external_id"]: r["n"] for r in rows}
    counts["__pending__"] = pending[0]["n"]
    return counts


async def test_sigkill_while_acknowledging_loses_nothing(database_url: str, tmp_path: Path) -> None:
    env = server_env(database_url, tmp_path)
    created = add_facebook_inbox(env, tmp_path)
    assert '"id"' in created
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhooks/facebook"
    proc = await start_server(env, port, tmp_path)

    acknowledged: list[str] = []
    counter = itertools.count()
    stop = asyncio.Event()

    async def sender(session: aiohttp.ClientSession, worker: int) -> None:
        while not stop.is_set():
            n = next(counter)
            mid = f"m_crash_{n}"
            body, headers = signed(
                messenger_text(PAGE_ID, f"psid-{n % 40}", mid, f"Tin nhắn số {n}", now_ms()), APP_SECRET
            )
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    if response.status == 200:
                        acknowledged.append(mid)
            except (TimeoutError, aiohttp.ClientError):
                await asyncio.sleep(0.01)  # the server is gone: keep trying until told to stop

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        senders = [asyncio.create_task(sender(session, w)) for w in range(8)]
        while len(acknowledged) < 200:
            await asyncio.sleep(0.01)
        proc.send_signal(signal.SIGKILL)  # mid-flight: requests are being acknowledged right now
        proc.wait()
        killed_at = len(acknowledged)
        await asyncio.sleep(0.2)
        stop.set()
        await asyncio.gather(*senders)

    assert killed_at >= 200
    proc = await start_server(env, port, tmp_path)
    try:
        # Redeliver some acknowledged events, as Facebook does after a timeout: still stored once.
        async with aiohttp.ClientSession() as session:
            for mid in acknowledged[:20]:
                n = int(mid.rsplit("_", 1)[1])
                body, headers = signed(
                    messenger_text(PAGE_ID, f"psid-{n % 40}", mid, f"Tin nhắn số {n}", now_ms()), APP_SECRET
                )
                async with session.post(url, data=body, headers=headers) as response:
                    assert response.status == 200
        for _ in range(200):
            counts = await stored_counts(database_url)
            if counts["__pending__"] == 0 and all(mid in counts for mid in acknowledged):
                break
            await asyncio.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    missing = [mid for mid in acknowledged if mid not in counts]
    duplicated = {mid: n for mid, n in counts.items() if mid != "__pending__" and n != 1}
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {missing[:5]}"
    assert not duplicated, f"stored more than once: {list(duplicated.items())[:5]}"
    assert counts["__pending__"] == 0
