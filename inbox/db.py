"""Database set-up: the tortoise config, migrations through tortoise's own migration API, and dialect facts.

SQLite gets `busy_timeout` before WAL (tortoise applies URL parameters first, then its own WAL default), and
`synchronous=FULL` so a commit is on disk before a webhook is answered.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tortoise import Tortoise, connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.context import TortoiseContext

APP = "hopthu"
MODEL_MODULES = ["inbox.models", "contacts.models", "agents.models"]
SQLITE_PRAGMAS = {"busy_timeout": "10000", "synchronous": "FULL"}


def database_url(url: str) -> str:
    """The URL with hopthu's SQLite durability settings added (explicit URL parameters still win)."""
    if not url.startswith("sqlite://"):
        return url
    parts = urlsplit(url)
    params = dict(SQLITE_PRAGMAS)
    params.update(parse_qsl(parts.query))
    return urlunsplit(parts._replace(query=urlencode(params)))


def tortoise_config(url: str) -> dict[str, Any]:
    return {
        "connections": {"default": _connection(database_url(url))},
        "apps": {
            APP: {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "inbox.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


SQLITE_ENGINE = "inbox.sqlite_client"  # tortoise's SQLite client, a transaction's start in one trip


def _connection(url: str) -> str | dict[str, Any]:
    """The URL's expanded config. SQLite gets hopthu's client (`inbox.sqlite_client`). asyncpg gets a pool that
    does not reset connections on release: asyncpg sends `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL;` each time by default, a second round trip for every statement outside a transaction. hopthu
    leaves no session state on a pooled connection (the log leader's session lock and LISTEN live on a connection
    of their own, inbox/coordination.py)."""
    config = expand_db_url(url)
    if config["engine"] == "tortoise.backends.sqlite":
        config["engine"] = SQLITE_ENGINE
        return config
    if config["engine"] != "tortoise.backends.asyncpg":
        return url
    config["credentials"]["reset"] = _nothing_to_reset
    return config


async def _nothing_to_reset(connection: Any) -> None:
    """asyncpg still drops the connection's client-side listeners and checks for an open transaction itself."""


async def migrate(url: str) -> None:
    """Apply pending migrations (tortoise's migration executor); safe to call on every start."""
    from tortoise.migrations.api import migrate as run_migrations

    await run_migrations(config=tortoise_config(url))
    await Tortoise.close_connections()


_context: TortoiseContext | None = None
_generation = 0  # counts `connect` calls: a cache of rows keyed by id is only good for the database it came from


async def connect(url: str, *, apply_migrations: bool = True) -> None:
    """Open the database for this process.

    The context is also the global fallback: aiohttp runs start-up, requests and clean-up in different tasks,
    and all of them must reach the same connections (tortoise binds contexts to tasks by default).
    """
    global _context, _generation
    if apply_migrations:
        await migrate(url)
    _context = await Tortoise.init(config=tortoise_config(url), _enable_global_fallback=True)
    _generation += 1


async def disconnect() -> None:
    # Close through the context object itself: the calling task may not be the one that connected.
    global _context
    if _context is not None:
        await _context.close_connections()
        _context = None


def generation() -> int:
    """Which `connect` of this process the connections come from (tests open a new database for each test)."""
    return _generation


def connection() -> BaseDBAsyncClient:
    return connections.get("default")


def dialect() -> str:
    return connection().capabilities.dialect  # "sqlite" or "postgres"
