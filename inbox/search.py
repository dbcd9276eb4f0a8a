"""Search without diacritics: text is folded the same way when indexed and when queried.

SQLite uses the FTS5 tables `message_fts` / `contact_fts` (rowid = message / contact id); Postgres uses GIN
indexes over `to_tsvector('simple', search_text)` (migration 0002). Never a LIKE scan.
"""

from __future__ import annotations

import re
import unicodedata

from tortoise.backends.base.client import BaseDBAsyncClient

_WORD = re.compile(r"\w+", re.UNICODE)


def fold(text: str | None) -> str:
    """Lower case, no tone marks or diacritics, đ → d: 'Đà Nẵng' and 'da nang' fold alike."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFD", text.lower().replace("đ", "d"))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_WORD.findall(stripped))


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
    rows = [(i, t) for i, t in rows if t]
    if rows and conn.capabilities.dialect == "sqlite":
        await conn.execute_many("INSERT INTO message_fts(rowid, search_text) VALUES (?, ?)", rows)


async def index_contact(conn: BaseDBAsyncClient, contact_id: int, old_text: str, new_text: str) -> None:
    if conn.capabilities.dialect != "sqlite" or old_text == new_text:
        return
    if old_text:  # contentless FTS5 tables delete by giving back the old values
        await conn.execute_query(
            "INSERT INTO contact_fts(contact_fts, rowid, search_text) VALUES ('delete', ?, ?)", [contact_id, old_text]
        )
    if new_text:
        await conn.execute_query("INSERT INTO contact_fts(rowid, search_text) VALUES (?, ?)", [contact_id, new_text])


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
        f"(c.id IN (SELECT m.conversation_id FROM messages m WHERE to_tsvector('simple', m.search_text) "
        f"@@ to_tsquery('simple', ${param})) OR c.contact_id IN (SELECT ct.id FROM contacts ct WHERE "
        f"to_tsvector('simple', ct.search_text) @@ to_tsquery('simple', ${param + 1})))",
        [q, q],
    )
