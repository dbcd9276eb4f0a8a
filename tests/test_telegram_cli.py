"""`hopthu inbox add` for Telegram (getMe, setWebhook with the secret token) and for the website chat (snippet)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from channels.fakes_telegram import FakeBotAPI, running_fake_bot_api

BOT_TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


@pytest.fixture
async def fake_bot_api() -> AsyncIterator[FakeBotAPI]:
    async with running_fake_bot_api() as fake:
        fake.add_bot(BOT_TOKEN, username="shop_mai_anh_bot")
        yield fake


async def hopthu(tmp_path: Path, api_url: str, *args: str) -> tuple[int, str, str]:
    """The CLI in a subprocess (awaited, so the fake Bot API in this loop keeps answering)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOPTHU_")}
    env.update(
        PYTHONIOENCODING="utf-8",
        HOPTHU_DATABASE_URL=f"sqlite://{tmp_path / 'cli.db'}",
        HOPTHU_SECRET_FILE=str(tmp_path / "secret"),
        HOPTHU_CONFIG=str(tmp_path / "absent.toml"),
        HOPTHU_TELEGRAM_API_URL=api_url,
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "inbox.cli", *args, env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode, out.decode(), err.decode()


async def test_telegram_inbox_checks_the_token_and_registers_the_webhook(
    tmp_path: Path, fake_bot_api: FakeBotAPI
) -> None:
    add = ["inbox", "add", "--channel", "telegram", "--name", "Shop Mai Anh", "--bot-token", BOT_TOKEN]
    code, out, err = await hopthu(
        tmp_path, fake_bot_api.base_url, *add, "--secret-token", "bi-mat_123", "--public-url", "https://shop.vn"
    )
    assert code == 0, err
    inbox = json.loads(out)
    assert (inbox["channel"], inbox["external_id"], inbox["username"]) == ("telegram", "7012345678", "shop_mai_anh_bot")
    assert [r.method for r in fake_bot_api.requests] == ["getMe", "setWebhook"]
    webhook = fake_bot_api.bots[BOT_TOKEN].webhook
    assert webhook == {"url": f"https://shop.vn/webhooks/telegram/{inbox['id']}", "secret_token": "bi-mat_123"}

    code, _, err = await hopthu(tmp_path, fake_bot_api.base_url, *add, "--secret-token", "bi-mat_123")
    assert code != 0 and "already exists" in err


async def add_in_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, api_url: str, *args: str) -> dict:
    """The same command without a subprocess (failures raise SystemExit with the message)."""
    from inbox.cli import _add_inbox, build_parser

    monkeypatch.setenv("HOPTHU_DATABASE_URL", f"sqlite://{tmp_path / 'cli.db'}")
    monkeypatch.setenv("HOPTHU_SECRET_FILE", str(tmp_path / "secret"))
    monkeypatch.setenv("HOPTHU_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("HOPTHU_TELEGRAM_API_URL", api_url)
    return await _add_inbox(build_parser().parse_args(["inbox", "add", *args]))


async def test_telegram_inbox_refused_token_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_bot_api: FakeBotAPI
) -> None:
    add = ["--channel", "telegram", "--name", "Shop", "--secret-token", "s3cret", "--public-url", "https://shop.vn"]
    url = fake_bot_api.base_url
    with pytest.raises(SystemExit, match="Unauthorized"):
        await add_in_process(monkeypatch, tmp_path, url, *add, "--bot-token", "123:not-a-bot-of-the-fake")
    with pytest.raises(SystemExit, match="bot token"):
        await add_in_process(monkeypatch, tmp_path, url, *add, "--bot-token", "not a token")
    with pytest.raises(SystemExit, match="secret-token"):
        await add_in_process(monkeypatch, tmp_path, url, *add, "--bot-token", BOT_TOKEN, "--secret-token", "có dấu")
    fake_bot_api.fail_next("bad_request", method="setWebhook")
    with pytest.raises(SystemExit, match="refused the webhook"):
        await add_in_process(monkeypatch, tmp_path, url, *add, "--bot-token", BOT_TOKEN)
    inbox = await add_in_process(monkeypatch, tmp_path, url, *add, "--bot-token", BOT_TOKEN)
    assert inbox["external_id"] == "7012345678"  # the failed attempt above left no inbox behind
    # Blocks and unblocks (`my_chat_member`) are subscribed along with messages and their edits.
    assert fake_bot_api.calls("setWebhook")[-1].params["allowed_updates"] == [
        "message", "edited_message", "my_chat_member"
    ]  # fmt: skip
    with pytest.raises(SystemExit, match="allowed origin"):
        await add_in_process(monkeypatch, tmp_path, url, "--channel", "webchat", "--name", "X",
                             "--allowed-origin", "shop.example")  # fmt: skip


async def test_webchat_inbox_prints_the_snippet(tmp_path: Path, fake_bot_api: FakeBotAPI) -> None:
    code, out, err = await hopthu(
        tmp_path, fake_bot_api.base_url, "inbox", "add", "--channel", "webchat", "--name", "Website Mai Anh",
        "--allowed-origin", "https://shop.example", "--allowed-origin", "https://www.shop.example/",
        "--public-url", "https://chat.shop.example",
    )  # fmt: skip
    assert code == 0, err
    inbox = json.loads(out)
    assert inbox["channel"] == "webchat" and isinstance(inbox["id"], int)
    assert inbox["allowed_origins"] == ["https://shop.example", "https://www.shop.example"]
    snippet = f'<script src="https://chat.shop.example/widget/{inbox["widget_token"]}.js" async></script>'
    assert inbox["snippet"] == snippet and snippet in err
