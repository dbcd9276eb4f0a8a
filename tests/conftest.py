"""Shared fixtures: a real database per test (SQLite by default, Postgres when HOPTHU_TEST_DATABASE_URL is set),
a local fake Graph API, the app under test, and small helpers to make staff, inboxes and signed webhooks.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from aiohttp import http_parser
from aiohttp.test_utils import TestClient

from agents.models import InboxMember, TeamMember, User
from agents.passwords import hash_password
from agents.sessions import create_session
from channels.fakes import FakeGraphAPI, messenger_text, running_fake_graph, signed
from inbox import db
from inbox.app import create_app
from inbox.bus import Event, EventBus
from inbox.config import Settings, load_settings
from inbox.models import Inbox

TEST_DATABASE_URL = os.environ.get("HOPTHU_TEST_DATABASE_URL", "")
PAGE_ID = "106001234567890"
APP_SECRET = "test_app_secret"
VERIFY_TOKEN = "verify-me"
PAGE_TOKEN = "page-token-1"
PASSWORD = "mật-khẩu-đủ-dài-123"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test: migrations run once per session, not per test."""
    path = tmp_path_factory.mktemp("template") / "template.db"

    async def build() -> None:
        await db.connect(f"sqlite://{path}")
        await db.disconnect()

    asyncio.run(build())
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A scratch database beside HOPTHU_TEST_DATABASE_URL's, so concurrent test runs never share tables."""
    if not TEST_DATABASE_URL:
        yield ""
        return
    import asyncpg

    base = urlsplit(TEST_DATABASE_URL)
    name = f"hopthu_test_{os.getpid()}"
    admin_dsn = urlunsplit(base._replace(scheme="postgresql"))

    async def run(statement: str) -> bool:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(statement)
            return True
        except asyncpg.PostgresError:
            return False
        finally:
            await conn.close()

    created = asyncio.run(run(f'CREATE DATABASE "{name}"'))
    url = urlunsplit(base._replace(path=f"/{name}")) if created else TEST_DATABASE_URL
    yield url
    if created:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def database_url(tmp_path: Path, sqlite_template: Path, postgres_url: str) -> str:
    if postgres_url:
        await db.connect(postgres_url)
        conn = db.connection()
        _, rows = await conn.execute_query(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE 'tortoise%'"
        )
        tables = ", ".join(f'"{row["tablename"]}"' for row in rows)
        if tables:  # every table the migrations made, so a new model needs no edit here
            await conn.execute_script(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        await db.disconnect()
        return postgres_url
    path = tmp_path / "hopthu.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite://{path}"


@pytest.fixture
async def fake_graph() -> AsyncIterator[FakeGraphAPI]:
    async with running_fake_graph() as fake:
        yield fake


@pytest.fixture
def settings(database_url: str, fake_graph: FakeGraphAPI, tmp_path: Path) -> Settings:
    return load_settings(
        environ={
            "HOPTHU_DATABASE_URL": database_url,
            "HOPTHU_SECRET_KEY": "test-secret-key",
            "HOPTHU_FACEBOOK_GRAPH_URL": fake_graph.base_url,
        },
        toml_path=tmp_path / "absent.toml",
        outbox_base_delay=0.05,
        outbox_max_attempts=4,
        nlp_worker="thread",  # a worker process per test app costs a second; tests/test_nlp_worker.py covers it
        extra={"webchat_upload_dir": str(tmp_path / "uploads")},  # never into the working tree
    )


@pytest.fixture
async def client(aiohttp_client: Callable[..., Awaitable[TestClient]], settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(settings))


@pytest.fixture
async def inbox(client: TestClient) -> Inbox:
    return await make_inbox()


async def make_inbox(page_id: str = PAGE_ID, app_secret: str = APP_SECRET, name: str = "Shop Thời Trang") -> Inbox:
    return await Inbox.create(
        name=name,
        channel="facebook",
        external_id=page_id,
        credentials={"page_token": PAGE_TOKEN, "app_secret": app_secret, "verify_token": VERIFY_TOKEN},
    )


@dataclass
class Staff:
    user: User
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_user(
    client: TestClient, role: str, *, inboxes: list[Inbox] = (), teams: list[Any] = (), email: str | None = None
) -> Staff:
    email = email or f"{role}-{time.monotonic_ns()}@shop.vn"
    user = await User.create(email=email, name=role.title(), role=role, password_hash=hash_password(PASSWORD))
    for inbox in inboxes:
        await InboxMember.create(user=user, inbox=inbox)
    for team in teams:
        await TeamMember.create(user=user, team=team)
    response = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status == 200, await response.text()
    return Staff(user, (await response.json())["token"])


@functools.cache
def password_hash() -> str:
    return hash_password(PASSWORD)


async def quick_user(role: str, *, inboxes: list[Inbox] = ()) -> Staff:
    """Like make_user without the HTTP login (argon2 once per run): for tests that need many users."""
    user = await User.create(
        email=f"{role}-{time.monotonic_ns()}@shop.vn", name=role.title(), role=role, password_hash=password_hash()
    )
    for inbox in inboxes:
        await InboxMember.create(user=user, inbox=inbox)
    token, _ = await create_session(user)
    return Staff(user, token)


async def post_webhook(
    client: TestClient, body: dict[str, Any], secret: str = APP_SECRET, headers: dict[str, str] | None = None
) -> Any:
    raw, signed_headers = signed(body, secret)
    return await client.post("/webhooks/facebook", data=raw, headers={**signed_headers, **(headers or {})})


def now_ms() -> int:
    return int(time.time() * 1000)


async def send_text(client: TestClient, psid: str, mid: str, text: str, ts_ms: int | None = None) -> Any:
    response = await post_webhook(client, messenger_text(PAGE_ID, psid, mid, text, ts_ms or now_ms()))
    assert response.status == 200, await response.text()
    return response


def postgres_lock_timeout(monkeypatch: pytest.MonkeyPatch, timeout: str = "100ms") -> None:
    """The app's Postgres connections give up on a lock after `timeout`, so a locked table fails fast."""
    original = db.tortoise_config

    def with_lock_timeout(url: str) -> dict:
        config = original(url)
        # Already expanded for asyncpg (inbox.db._connection): the dict is the config's own.
        config["connections"]["default"]["credentials"]["server_settings"] = {"lock_timeout": timeout}
        return config

    monkeypatch.setattr(db, "tortoise_config", with_lock_timeout)


def while_the_body_is_read(monkeypatch: pytest.MonkeyPatch, module: Any, other: Callable[[], Awaitable[Any]]) -> None:
    """The next request handled by `module` reads its JSON body only after `other` has run: another request lands
    in the middle of it, every time (the project's way to test two requests at once, without timing)."""
    read_body = module.json_body
    pending = [other]

    async def body_read_after_the_other(request: Any) -> Any:
        if pending:
            await pending.pop()()
        return await read_body(request)

    monkeypatch.setattr(module, "json_body", body_read_after_the_other)


def published_since(bus: EventBus, since: int) -> list[Event]:
    """What the bus published after `since`, as a client resuming from there gets it. Rows are written before
    their event goes out, so tests that check what agents see wait for the event, not the row."""
    subscription = bus.subscribe(since, lambda event: True)
    subscription.close()
    return list(subscription.replay)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 15.0, interval: float = 0.02) -> Any:
    """Wait until `check` returns something truthy (the processor works off the ack path). The limit is generous:
    it only matters when something is wrong, and a loaded 2-core CI machine can take seconds for a step."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {result!r})")
        await asyncio.sleep(interval)


def live_http_parsers() -> int:
    """HTTP request parsers alive in this process (the server's connections each have one until upgraded)."""
    kinds = (http_parser.HttpRequestParser, http_parser.HttpRequestParserPy)
    # Exact types: isinstance would read every object's __class__, and some libraries' deprecated objects warn.
    return sum(1 for obj in gc.get_objects() if type(obj) in kinds)
