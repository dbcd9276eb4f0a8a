"""`hopthu backup` / `hopthu restore`: online, consistent, verified, and a restore gives back identical data."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from aiohttp.test_utils import TestClient

from contacts.models import Contact
from inbox import backup
from inbox.keys import PROFILES
from inbox.models import Inbox, Message
from tests.conftest import eventually, make_user, send_text

_names = itertools.count()


async def _admin(url: str, statement: str) -> None:
    import asyncpg

    base = urlsplit(url)
    conn = await asyncpg.connect(urlunsplit(base._replace(scheme="postgresql", path="/postgres", query="")))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
async def empty_url(database_url: str, tmp_path: Path):
    """A second, empty database of the same kind as the test's."""
    if database_url.startswith("sqlite://"):
        yield f"sqlite://{tmp_path / 'restored.db'}"
        return
    name = f"hopthu_restore_{os.getpid()}_{next(_names)}"
    await _admin(database_url, f'CREATE DATABASE "{name}"')
    yield urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))
    await _admin(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def all_rows(url: str) -> dict[str, list[str]]:
    """Every row of every table, in a comparable form."""
    if url.startswith("sqlite://"):
        conn = sqlite3.connect(backup.sqlite_path(url))
        try:
            tables = backup.sqlite_counts(conn)
            return {t: sorted(repr(r) for r in conn.execute(f'SELECT * FROM "{t}"')) for t in tables}
        finally:
            conn.close()
    import asyncpg

    conn = await asyncpg.connect(backup.libpq_url(url))
    try:
        tables = [r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        return {t: sorted(repr(tuple(r)) for r in await conn.fetch(f'SELECT * FROM "{t}"')) for t in tables}
    finally:
        await conn.close()


async def populated(client: TestClient, inbox: Inbox) -> None:
    agent = await make_user(client, "agent", inboxes=[inbox])
    for n in range(6):
        await send_text(client, f"psid-{n % 3}", f"mid.backup.{n}", f"Chị ơi áo số {n} còn không? ☺ \\ \n tab\t")
    await eventually(lambda: Message.filter(external_id__startswith="mid.backup.").count(), timeout=10)
    await eventually(lambda: _count_is(6))
    conv = (await Message.get(external_id="mid.backup.0")).conversation_id
    reply = await client.post(f"/api/conversations/{conv}/messages", json={"text": "Dạ còn ạ"}, headers=agent.headers)
    assert reply.status == 201
    await client.post(f"/api/conversations/{conv}/labels", json={"labels": ["vip"]}, headers=agent.headers)
    sent = (await reply.json())["id"]
    await eventually(lambda: Message.filter(id=sent, delivery_status="sent").exists())
    await eventually(lambda: _named())
    await client.app[PROFILES].idle()


async def _named() -> bool:
    return not await Contact.filter(name="").exists()


async def quiet_backup(
    url: str, target: Path, make: Callable[[], Awaitable[Any]] | None = None
) -> tuple[Any, dict[str, list[str]]]:
    """A backup taken while nothing else wrote (the app's background projections may write at any time), and the
    data it must hold: retried until the database was the same before and after it."""
    for _ in range(20):
        before = await all_rows(url)
        made = await (make() if make is not None else backup.backup(url, target))
        if await all_rows(url) == before:
            return made, before
        await asyncio.sleep(0.5)
    raise AssertionError("the database never stopped changing")


async def _count_is(n: int) -> bool:
    return await Message.filter(external_id__startswith="mid.backup.").count() == n


async def test_backup_then_restore_into_an_empty_database_gives_identical_data(
    client: TestClient, inbox: Inbox, database_url: str, empty_url: str, tmp_path: Path
) -> None:
    await populated(client, inbox)
    target = tmp_path / "hopthu.backup"

    summary, source_rows = await quiet_backup(database_url, target)  # online: the server is running

    assert target.is_file() and summary.tables["messages"] >= 7
    restored = await backup.restore(empty_url, target)
    assert restored.tables == summary.tables
    assert await all_rows(empty_url) == source_rows


async def test_backup_while_webhooks_arrive_is_one_consistent_snapshot(
    client: TestClient, inbox: Inbox, database_url: str, empty_url: str, tmp_path: Path
) -> None:
    stop = asyncio.Event()

    async def traffic() -> int:
        n = 0
        while not stop.is_set():
            await send_text(client, f"psid-live-{n % 5}", f"mid.live.{n}", f"Tin số {n}")
            n += 1
        return n

    sender = asyncio.create_task(traffic())
    await eventually(lambda: Message.filter(external_id__startswith="mid.live.").exists())
    summaries = [await backup.backup(database_url, tmp_path / f"b{i}.backup") for i in range(3)]
    stop.set()
    sent = await sender
    assert sent > 0
    # Each backup verified itself against its own snapshot; the last one restores to exactly what it counted,
    # and every restored message still has its conversation and contact (no half-written rows).
    restored = await backup.restore(empty_url, tmp_path / "b2.backup")
    assert restored.tables == summaries[2].tables
    rows = await all_rows(empty_url)
    assert len(rows["messages"]) == summaries[2].tables["messages"]
    if empty_url.startswith("sqlite://"):
        conn = sqlite3.connect(backup.sqlite_path(empty_url))
        try:
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
            orphans = conn.execute(
                "SELECT COUNT(*) FROM messages m LEFT JOIN conversations c ON c.id = m.conversation_id "
                "WHERE c.id IS NULL"
            ).fetchone()[0]
            assert orphans == 0
        finally:
            conn.close()


async def test_restore_refuses_a_database_that_holds_data(
    client: TestClient, inbox: Inbox, database_url: str, tmp_path: Path
) -> None:
    await populated(client, inbox)
    target = tmp_path / "x.backup"
    await backup.backup(database_url, target)
    kept = ("messages", "conversations", "contacts", "users", "inboxes")
    before = {t: rows for t, rows in (await all_rows(database_url)).items() if t in kept}
    with pytest.raises(backup.BackupError, match="already holds data"):
        await backup.restore(database_url, target)
    assert {t: rows for t, rows in (await all_rows(database_url)).items() if t in kept} == before


async def test_a_file_that_is_not_a_backup_is_refused_clearly(database_url: str, empty_url: str, tmp_path: Path):
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"not a tar file at all")
    with pytest.raises(backup.BackupError, match="not a readable hopthu backup"):
        await backup.restore(empty_url, junk)
    other = tmp_path / "other.tar"
    with tarfile.open(other, "w") as tar:
        tar.add(junk, arcname="manifest.json")
    with pytest.raises(backup.BackupError, match=r"manifest\.json"):
        await backup.restore(empty_url, other)
    with pytest.raises(backup.BackupError, match="does not exist"):
        await backup.restore(empty_url, tmp_path / "absent.backup")


async def test_a_failed_backup_leaves_the_previous_file_in_place(tmp_path: Path) -> None:
    target = tmp_path / "keep.backup"
    target.write_bytes(b"yesterday's backup")
    with pytest.raises(backup.BackupError):
        await backup.backup(f"sqlite://{tmp_path / 'missing.db'}", target)
    assert target.read_bytes() == b"yesterday's backup"


async def test_scheduled_backups_keep_the_newest_and_touch_nothing_else(
    client: TestClient, inbox: Inbox, database_url: str, tmp_path: Path
) -> None:
    directory = tmp_path / "backups"
    directory.mkdir()
    (directory / "notes.txt").write_text("không xoá")
    old = directory / "hopthu-20200101T000000Z.backup"
    old.write_bytes(b"old")
    made: list[backup.Summary] = []

    await backup.run_schedule(database_url, directory, every=0, keep=2, iterations=3, on_backup=made.append)

    assert len(made) == 3
    kept = sorted(p.name for p in directory.iterdir())
    assert "notes.txt" in kept and old.name not in kept
    assert len([k for k in kept if k.endswith(".backup")]) == 2
    assert {p.name for p in (made[1].path, made[2].path)} <= set(kept)


def test_intervals_are_read_with_units() -> None:
    assert [backup.parse_interval(t) for t in ("90", "15m", "6h", "1d")] == [90, 900, 21600, 86400]
    for bad in ("", "soon", "-5m", "0"):
        with pytest.raises(backup.BackupError):
            backup.parse_interval(bad)


async def test_postgres_logical_dump_restores_identically(
    client: TestClient, inbox: Inbox, database_url: str, empty_url: str, tmp_path: Path
) -> None:
    """Without pg_dump on PATH: COPY of every table in one REPEATABLE READ transaction."""
    if database_url.startswith("sqlite://"):
        pytest.skip("PostgreSQL only")
    await populated(client, inbox)
    summary, before = await quiet_backup(
        database_url, tmp_path / "l.backup", lambda: backup.backup(database_url, tmp_path / "l.backup", logical=True)
    )
    assert summary.format == "copy"
    await backup.restore(empty_url, tmp_path / "l.backup")
    assert await all_rows(empty_url) == before
    # The restored ids continue: a new row gets an id after the restored ones.
    import asyncpg

    conn = await asyncpg.connect(backup.libpq_url(empty_url))
    try:
        top = await conn.fetchval("SELECT MAX(id) FROM messages")
        new = await conn.fetchval("SELECT nextval(pg_get_serial_sequence('messages', 'id'))")
        assert new > top
    finally:
        await conn.close()


def cli(args: list[str], url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOPTHU_")}
    env.update(HOPTHU_DATABASE_URL=url, HOPTHU_SECRET_KEY="k", HOPTHU_CONFIG=str(cwd / "absent.toml"))
    return subprocess.run(
        [sys.executable, "-m", "inbox.cli", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


async def test_cli_backup_and_restore(
    client: TestClient, inbox: Inbox, database_url: str, empty_url: str, tmp_path: Path
) -> None:
    await populated(client, inbox)
    file = tmp_path / "cli.backup"
    made, before = await quiet_backup(
        database_url, file, lambda: asyncio.to_thread(cli, ["backup", str(file)], database_url, tmp_path)
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["rows"] > 0
    restored = await asyncio.to_thread(cli, ["restore", str(file)], empty_url, tmp_path)
    assert restored.returncode == 0, restored.stderr
    assert await all_rows(empty_url) == before
    again = await asyncio.to_thread(cli, ["restore", str(file)], empty_url, tmp_path)
    assert again.returncode == 1 and "already holds data" in again.stderr
