"""Search at scale: Vietnamese with or without diacritics, common words found newest-first, rare ones anywhere,
pages complete and in order (both code paths of `inbox.search` on Postgres), and the search migration applied
to an existing Postgres database full of rows as well as to an empty one.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import pytest
from aiohttp.test_utils import TestClient

from agents.access import Viewer
from contacts.models import Contact, ContactIdentity
from inbox import db, search
from inbox.listing import ListFilters, list_conversations
from inbox.models import Conversation, Inbox, Message
from inbox.search import fold
from tests.conftest import TEST_DATABASE_URL, make_inbox

ADMIN = Viewer(user_id=1, role="admin", inbox_ids=frozenset(), team_ids=frozenset())
START = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
TEXTS = ("Áo sơ mi trắng còn size M không ạ?", "Phí ship về Đà Nẵng bao nhiêu vậy shop?")
NAMES = ("Nguyễn Thị Hoa", "Trần Văn Bình", "Lê Minh Đức")


async def converse(inbox: Inbox, n: int, text: str) -> Conversation:
    """A customer (name from NAMES) whose conversation says `text`; conversation n is the n-th newest-but-last."""
    at = START + timedelta(minutes=n)
    name = NAMES[n % len(NAMES)]
    contact = await Contact.create(name=name, search_text=fold(name), first_seen_at=at, last_seen_at=at)
    identity = await ContactIdentity.create(contact=contact, inbox=inbox, channel="facebook", external_id=f"p{n}")
    conv = await Conversation.create(
        inbox_id=inbox.id, contact_id=contact.id, identity_id=identity.id, channel="facebook", status="open",
        last_activity_at=at, last_message_at=at, last_message_preview=text,
    )  # fmt: skip
    message = await Message.create(
        conversation_id=conv.id, inbox_id=inbox.id, direction="in", sender_type="contact", origin="platform",
        text=text, created_at=at, external_id=f"m{n}", search_text=fold(text),
    )  # fmt: skip
    await search.index_messages(db.connection(), [(message.id, message.search_text)])
    await search.index_contact(db.connection(), contact.id, "", contact.search_text)
    return conv


async def every_page(q: str, limit: int) -> list[int]:
    ids: list[int] = []
    cursor = None
    while True:
        items, cursor = await list_conversations(ADMIN, ListFilters(q=q, limit=limit, cursor=cursor))
        ids += [item["id"] for item in items]
        if cursor is None:
            return ids


@pytest.fixture
async def shop(client: TestClient) -> dict[str, list[int]]:
    inbox = await make_inbox()
    convs = [await converse(inbox, n, TEXTS[0] if n % 4 else TEXTS[1]) for n in range(24)]
    newest_first = [c.id for c in reversed(convs)]
    return {
        "ao": [i for n, i in zip(range(23, -1, -1), newest_first, strict=True) if n % 4],
        "ship": [i for n, i in zip(range(23, -1, -1), newest_first, strict=True) if not n % 4],
        "hoa": [i for n, i in zip(range(23, -1, -1), newest_first, strict=True) if n % 3 == 0],
    }


@pytest.mark.parametrize("window", [1_000, 4])  # the walk finds the page / falls back to every match
async def test_with_or_without_diacritics_every_match_once_newest_first(
    shop: dict[str, list[int]], window: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "WALK_WINDOW", window)
    for q in ("áo sơ mi", "ao so mi", "AO SƠ MI", "sơ m"):  # the last word as a prefix, as the agent types
        assert await every_page(q, limit=5) == shop["ao"], q
    for q in ("Đà Nẵng", "da nang", "ship"):
        assert await every_page(q, limit=4) == shop["ship"], q
    for q in ("Nguyễn Thị Hoa", "nguyen thi hoa", "hoa"):
        assert await every_page(q, limit=3) == shop["hoa"], q
    assert await every_page("bánh trung thu", limit=5) == []


async def test_other_filters_still_apply_to_a_search(shop: dict[str, list[int]]) -> None:
    resolved = shop["ao"][1::2]
    await Conversation.filter(id__in=resolved).update(status="resolved")
    items, _ = await list_conversations(ADMIN, ListFilters(q="ao", status="resolved", limit=50))
    assert [item["id"] for item in items] == resolved


# ---------------------------------------------------------------------------------------------- migration

needs_postgres = pytest.mark.skipif(not TEST_DATABASE_URL, reason="HOPTHU_TEST_DATABASE_URL is not set")
MIGRATION = "0011_search_tsvector"


async def _admin(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(urlunsplit(urlsplit(TEST_DATABASE_URL)._replace(scheme="postgresql")))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@needs_postgres
async def test_the_search_migration_applies_to_an_empty_and_to_an_existing_database() -> None:
    from tortoise.migrations.api import migrate

    previous = importlib.import_module(f"inbox.migrations.{MIGRATION}").Migration.dependencies[0][1]
    name = f"hopthu_search_migration_{os.getpid()}"
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await _admin(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(TEST_DATABASE_URL)._replace(path=f"/{name}"))
    config = db.tortoise_config(url)
    try:
        await db.connect(url)  # an empty database: every migration applies
        inbox = await make_inbox()
        for n in range(6):
            await converse(inbox, n, TEXTS[n % 2])
        await db.disconnect()

        await migrate(config=config, target=f"hopthu.{previous}")  # as it was before this migration, with rows
        await db.connect(url, apply_migrations=False)
        assert not await _has_column("messages", "search_tsv")
        await db.disconnect()

        await migrate(config=config)  # the upgrade, on a database holding rows
        await db.connect(url, apply_migrations=False)
        try:
            assert await _has_column("messages", "search_tsv") and await _has_column("contacts", "search_tsv")
            rows = await db.connection().execute_query_dict(
                "SELECT COUNT(*) AS n FROM messages WHERE search_tsv IS NULL OR search_tsv = ''::tsvector"
            )
            assert rows[0]["n"] == 0  # rows written before the upgrade are indexed too
            found = await every_page("da nang", limit=2)
            assert len(found) == 3 and found == sorted(found, reverse=True)
            assert len(await every_page("Nguyễn", limit=10)) == 2
        finally:
            await db.disconnect()
    finally:
        await asyncio.sleep(0)
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _has_column(table: str, column: str) -> bool:
    rows = await db.connection().execute_query_dict(
        "SELECT 1 FROM information_schema.columns WHERE table_name = $1 AND column_name = $2", [table, column]
    )
    return bool(rows)
