"""The NLP classifier runs in a worker process of its own (HOPTHU_NLP_WORKER=process, the default): customers'
messages get the same sentiment, intent and entities as in-process analysis; a worker that dies is replaced; the
worker ends with the server, even one killed with SIGKILL; a wrong setting is refused (`hopthu serve` refusing it:
tests/test_event_loop.py)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from inbox.app import create_app
from inbox.config import ConfigError, Settings, load_settings
from inbox.enrich import NlpEnricher
from inbox.keys import BUS, PIPELINE
from inbox.models import Message
from nlp import analyze
from tests.conftest import eventually, make_inbox, published_since, send_text
from tests.test_crash_durability import add_facebook_inbox, free_port, server_env, start_server

SPAWN_MAIN = b"multiprocessing.spawn"  # on the command line of a spawned worker process


def nlp_workers(parent: int) -> set[int]:
    """Pids of the spawned worker processes whose parent is `parent` (read from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == parent and SPAWN_MAIN in cmdline:
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
async def process_client(aiohttp_client: Callable[..., Awaitable[TestClient]], settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(replace(settings, nlp_worker="process")))


async def analysed(text: str) -> Message:
    async def stored() -> Message | None:
        return await Message.filter(text=text, sentiment__not_isnull=True).first()

    return await eventually(stored, timeout=30)


async def test_messages_are_analysed_in_a_worker_process_as_in_this_one(process_client: TestClient) -> None:
    await make_inbox()
    since = process_client.app[BUS].last_seq
    text = "giao sai màu rồi, shop làm ăn chán quá 😡 sdt em 0912 345 678"
    await send_text(process_client, "psid-w1", "m-w1", text)
    msg = await analysed(text)
    expected = analyze(text)  # the same model, in this process
    assert (msg.sentiment, msg.intent) == (expected.sentiment, expected.intent) == ("negative", "complaint")
    assert [e["normalized"] for e in msg.entities if e["type"] == "phone"] == ["+84912345678"]
    assert len(nlp_workers(os.getpid())) == 1  # the classifier ran in a child, not under this interpreter lock

    async def pushed() -> list:  # the row is written before the frame is published
        replay = published_since(process_client.app[BUS], since)
        return [e for e in replay if e.type == "message.updated" and e.data["id"] == msg.id]

    assert (await eventually(pushed))[-1].data["sentiment"] == "negative"


async def test_a_killed_worker_is_replaced_and_later_messages_are_analysed(process_client: TestClient) -> None:
    await make_inbox()
    await send_text(process_client, "psid-w2", "m-w2a", "shop ơi còn size M không ạ")
    await analysed("shop ơi còn size M không ạ")
    (first,) = nlp_workers(os.getpid())
    os.kill(first, signal.SIGKILL)
    await eventually(lambda: asyncio.sleep(0, not alive(first)))
    text = "hàng đẹp lắm, cảm ơn shop nhiều nha 😍"
    await send_text(process_client, "psid-w2", "m-w2b", text)
    msg = await analysed(text)
    assert msg.sentiment == "positive"
    assert nlp_workers(os.getpid()) - {first}  # a new worker took over


async def test_the_worker_ends_with_the_app(aiohttp_client, settings: Settings) -> None:
    client = await aiohttp_client(create_app(replace(settings, nlp_worker="process")))
    workers = await eventually(lambda: asyncio.sleep(0, nlp_workers(os.getpid())), timeout=30)
    await client.close()
    await eventually(lambda: asyncio.sleep(0, not any(alive(pid) for pid in workers)), timeout=15)


async def test_a_model_that_cannot_load_in_the_worker_leaves_messages_stored_without_nlp(
    process_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOPTHU_NLP_BACKEND", "transformers")  # without a model directory: cannot load
    monkeypatch.delenv("HOPTHU_NLP_MODEL_DIR", raising=False)
    client = process_client
    enricher = next(e for e in client.app[PIPELINE].enrichers if isinstance(e, NlpEnricher))
    await enricher.stop()
    enricher.start()  # a new worker, spawned with the environment above
    await make_inbox()
    await send_text(client, "psid-w3", "m-w3", "alo shop")
    await eventually(lambda: Message.filter(text="alo shop").exists())
    await eventually(lambda: asyncio.sleep(0, enricher.disabled_reason), timeout=30)
    assert "HOPTHU_NLP_MODEL_DIR" in enricher.disabled_reason
    await asyncio.sleep(0.2)
    assert (await Message.get(text="alo shop")).sentiment is None


async def test_a_server_killed_with_sigkill_leaves_no_worker_behind(database_url: str, tmp_path: Path) -> None:
    env = server_env(database_url, tmp_path)
    add_facebook_inbox(env, tmp_path)
    proc = await start_server(env, free_port(), tmp_path)
    try:
        workers = await eventually(lambda: asyncio.sleep(0, nlp_workers(proc.pid)), timeout=30)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    # Orphaned, each notices its parent is gone within a second or two.
    await eventually(lambda: asyncio.sleep(0, not any(alive(pid) for pid in workers)), timeout=15)


def test_the_worker_setting(tmp_path: Path) -> None:
    env = {"HOPTHU_SECRET_KEY": "k"}
    assert load_settings(environ=env, toml_path=tmp_path / "none").nlp_worker == "process"
    settings = load_settings(environ={**env, "HOPTHU_NLP_WORKER": " Thread "}, toml_path=tmp_path / "none")
    assert settings.nlp_worker == "thread"
    with pytest.raises(ConfigError, match="HOPTHU_NLP_WORKER must be process or thread"):
        load_settings(environ={**env, "HOPTHU_NLP_WORKER": "gpu"}, toml_path=tmp_path / "none")
