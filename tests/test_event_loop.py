"""`hopthu serve` runs on uvloop when it is installed, on asyncio's loop when asked (HOPTHU_EVENT_LOOP), and a
webhook is acknowledged and stored on either; a wrong value is a clear error before anything starts."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import uvloop

from channels.fakes import messenger_text, signed
from inbox.config import ConfigError, load_settings
from inbox.event_loop import loop_factory, loop_name
from tests.conftest import APP_SECRET, PAGE_ID, now_ms
from tests.test_crash_durability import add_facebook_inbox, free_port, server_env, start_server, stored_counts


def test_the_loop_is_uvloop_unless_asyncio_is_asked_for(tmp_path: Path) -> None:
    for choice, expected in (("auto", "uvloop"), ("uvloop", "uvloop"), ("asyncio", "asyncio")):
        loop = loop_factory(choice)()
        try:
            assert loop_name(loop) == expected
            assert isinstance(loop, uvloop.Loop) == (expected == "uvloop")
        finally:
            loop.close()
    env = {"HOPTHU_SECRET_KEY": "k"}
    assert load_settings(environ=env, toml_path=tmp_path / "none").event_loop == "auto"
    assert load_settings(environ={**env, "HOPTHU_EVENT_LOOP": " AsyncIO "}, toml_path=tmp_path / "x").event_loop == (
        "asyncio"
    )
    with pytest.raises(ConfigError, match="HOPTHU_EVENT_LOOP"):
        load_settings(environ={**env, "HOPTHU_EVENT_LOOP": "trio"}, toml_path=tmp_path / "none")
    with pytest.raises(ConfigError, match="HOPTHU_EVENT_LOOP"):
        loop_factory("trio")


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("HOPTHU_EVENT_LOOP", "gevent", "HOPTHU_EVENT_LOOP must be auto, uvloop or asyncio"),
        ("HOPTHU_NLP_WORKER", "cluster", "HOPTHU_NLP_WORKER must be process or thread"),
    ],
)
def test_serve_refuses_an_unknown_loop_or_nlp_worker(tmp_path: Path, variable: str, value: str, message: str) -> None:
    env = server_env(f"sqlite://{tmp_path / 'x.db'}", tmp_path)
    env[variable] = value
    done = subprocess.run(
        [sys.executable, "-m", "inbox.cli", "serve", "--port", str(free_port())],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert message in done.stderr
    assert not (tmp_path / "x.db").exists()  # refused before touching the database


@pytest.mark.parametrize("choice, expected", [("", "uvloop"), ("asyncio", "asyncio")])
async def test_serve_acknowledges_and_stores_a_webhook_on_its_loop(
    database_url: str, tmp_path: Path, choice: str, expected: str
) -> None:
    env = server_env(database_url, tmp_path)
    if choice:
        env["HOPTHU_EVENT_LOOP"] = choice
    add_facebook_inbox(env, tmp_path)
    port = free_port()
    log_path = tmp_path / "serve.log"
    proc = await start_server(env, port, tmp_path, log=log_path)
    mid = f"m_loop_{expected}"
    try:
        async with aiohttp.ClientSession() as session:
            body, headers = signed(messenger_text(PAGE_ID, "psid-loop", mid, "Còn hàng không ạ?", now_ms()), APP_SECRET)
            async with session.post(f"http://127.0.0.1:{port}/webhooks/facebook", data=body, headers=headers) as resp:
                assert resp.status == 200
        for _ in range(100):
            counts = await stored_counts(database_url)
            if counts.get(mid) and counts["__pending__"] == 0:
                break
            await asyncio.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert counts.get(mid) == 1
    assert f"event loop: {expected}" in log_path.read_text(errors="replace")
