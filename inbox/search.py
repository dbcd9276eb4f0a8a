"""Search without diacritics: text is folded the same way when indexed and when queried.

SQLite uses the FTS5 tables `message_fts` / `contact_fts` (rowid = message / contact id); Postgres uses GIN
indexes over the stored `search_tsv = to_tsvector('simple', search_text)` columns (migration 0011). Never a LIKE
scan, and no unaccent / pg_trgm needed: the text is folded before it is indexed.

On Postgres a common word matches a large share of a million messages: collecting every match first (the set
form) costs about a second, while walking the newest conversations and checking each (the walk form) finds a
page in milliseconds. So the list first walks a bounded window of the newest candidates (`newest_first_query`)
and only falls back to the set form when the window held less than a page (a rare word: the set is small).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from inbox.sql import Sql, Statement

_WORD = re.compile(r"\w+", re.UNICODE)


def fold(text: str | None) -> str:
    """Lower case, no tone marks or diacritics, đ → d: 'Đà Nẵng' and 'da nang' fold alike."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFD", text.lower().replace("đ", "d"))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_WORD.findall(stripped))


def contact_search_text(contact: Any) -> str:
    """What contact search matches: name, every phone (E.164 and the local 0… form), every e-mail. One text for
    every writer (ingest, profile fetch, the widget's form, profile edits, merges), so a contact is found the
    same way however its phone arrived."""
    parts = [contact.name or ""]
    for phone in _distinct([contact.phone, *(contact.phones or [])]):
        parts.append(phone)
        if phone.startswith("+84"):
            parts.append("0" + phone[3:])
    parts.extend(_distinct([contact.email, *(contact.emails or [])]))
    return fold(" ".join(parts))


def _distinct(values: list[str | None]) -> list[str]:
    return list(dict.fromkeys(value for value in values if value))


def query_terms(query: str) -> list[str]:
    return fold(query).split()[:8]


def fts5_query(terms: list[str]) -> str:
    # Every term must match; the last one as a prefix, so results appear while the agent types.
    quoted = [f'"{t}"' for t in terms]
    quoted[-1] += "*"
    return " ".join(quoted)


def tsquery(terms: list[str]) -> str:
    return " & ".join([*terms[:-1], terms[-1] + ":*"])


async def index_messages(conn: BaseDBAsyncClient, rows: list[tuple[int, str]]) -> None:
    """Add messages to the SQLite FTS table (Postgres indexes the column itself)."""
    statement = message_index_statement(conn.capabilities.dialect, rows)
    if statement is not None:
        await conn.execute_many(statement.sql, statement.params)


def message_index_statement(dialect: str, rows: list[tuple[Any, str]]) -> Statement | None:
    """`index_messages` as a statement for `run_statements`; None when there is nothing to index. A row's first
    value is the message's id, or (in the processor's flush) the message itself, replaced by its id in the
    statement's rows once its insert has run."""
    params = [[i, t] for i, t in rows if t]
    if not params or dialect != "sqlite":
        return None
    return Statement("INSERT INTO message_fts(rowid, search_text) VALUES (?, ?)", params, many=True)


async def store_contact_search(conn: BaseDBAsyncClient, contact_id: int, new_text: str) -> None:
    """Sets the contact's `search_text` and its FTS row. The FTS table is contentless: its old row goes by giving
    back exactly the text it was indexed with, so that text is read from the row here, never taken from a copy of
    the contact read earlier (another writer may have changed it since; a wrong text corrupts the index: "database
    disk image is malformed"). Run it inside a transaction, so nothing writes between the read and the write."""
    sql = Sql(conn.capabilities.dialect)
    rows = await conn.execute_query_dict(f"SELECT search_text FROM contacts WHERE id = {sql.p(contact_id)}", sql.params)
    old_text = (rows[0]["search_text"] or "") if rows else ""
    if not rows or old_text == new_text:
        return
    sql = Sql(conn.capabilities.dialect)
    update = f"UPDATE contacts SET search_text = {sql.p(new_text)} WHERE id = {sql.p(contact_id)}"
    await conn.execute_query(update, sql.params)
    await index_contact(conn, contact_id, old_text, new_text)


async def index_contact(conn: BaseDBAsyncClient, contact_id: int, old_text: str, new_text: str) -> None:
    if conn.capabilities.dialect != "sqlite" or old_text == new_text:
        return
    if old_text:  # contentless FTS5 tables delete by giving back the old values
        await conn.execute_query(
            "INSERT INTO contact_fts(contact_fts, rowid, search_text) VALUES ('delete', ?, ?)", [contact_id, old_text]
        )
    if new_text:
        await conn.execute_query("INSERT INTO contact_fts(rowid, search_text) VALUES (?, ?)", [contact_id, new_text])


WALK_WINDOW = 1_000  # candidates checked one by one before falling back to collecting every match


def conversation_walk_sql(param: int) -> str:
    """The Postgres predicate, evaluated per conversation (same parameters as `conversation_filter_sql`'s).
    Scalar subqueries with LIMIT 1, not EXISTS: the planner may turn an EXISTS into one hashed set of every match,
    which is exactly the cost this form avoids."""
    return (
        f"COALESCE((SELECT true FROM messages m WHERE m.conversation_id = c.id AND m.search_tsv "
        f"@@ to_tsquery('simple', ${param}) LIMIT 1), (SELECT true FROM contacts cs WHERE "
        f"cs.id = c.contact_id AND cs.search_tsv @@ to_tsquery('simple', ${param + 1}) "
        "LIMIT 1), false)"
    )


def newest_first_query(head: str, where: list[str], search_at: int, param: int, limit: int, full: str) -> str:
    """One statement (Postgres) for a searched page: first the WALK_WINDOW newest conversations that pass every
    other filter, checked one at a time in list order (stops at `limit` rows); only if that finds fewer than
    `limit`, the `full` query (the set form over everything: small for a rare word) instead. PostgreSQL runs the
    second branch only when its one-time condition holds."""
    others = [w for i, w in enumerate(where) if i != search_at]
    window = (
        "(SELECT c.* FROM conversations c JOIN contacts ct ON ct.id = c.contact_id"
        + (" WHERE " + " AND ".join(others) if others else "")
        + f" ORDER BY c.last_activity_at DESC, c.id DESC LIMIT {WALK_WINDOW}) c"
    )
    walk = (
        head.replace("FROM conversations c", f"FROM {window}", 1)
        + f" WHERE {conversation_walk_sql(param)} ORDER BY c.last_activity_at DESC, c.id DESC LIMIT {limit}"
    )
    return (
        f"WITH walk AS MATERIALIZED ({walk}) "
        f"SELECT * FROM walk WHERE (SELECT COUNT(*) FROM walk) >= {limit} "
        f"UNION ALL SELECT * FROM ({full}) everything WHERE (SELECT COUNT(*) FROM walk) < {limit} "
        "ORDER BY last_activity_at DESC, id DESC"
    )


def conversation_filter_sql(dialect: str, terms: list[str], param: int) -> tuple[str, list[str]]:
    """SQL (for a WHERE clause on `conversations c`) matching message text or the contact's name/phone."""
    if dialect == "sqlite":
        q = fts5_query(terms)
        return (
            "(c.id IN (SELECT m.conversation_id FROM messages m WHERE m.id IN "
            "(SELECT rowid FROM message_fts WHERE message_fts MATCH ?)) "
            "OR c.contact_id IN (SELECT rowid FROM contact_fts WHERE contact_fts MATCH ?))",
            [q, q],
        )
    q = tsquery(terms)
    return (
        f"(c.id IN (SELECT m.conversation_id FROM messages m WHERE m.search_tsv "
        f"@@ to_tsquery('simple', ${param})) OR c.contact_id IN (SELECT ct.id FROM contacts ct WHERE "
        f"ct.search_tsv @@ to_tsquery('simple', ${param + 1})))",
        [q, q],
    )
