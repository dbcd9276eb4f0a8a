"""Small raw-SQL helpers for the hot paths (ingest processing, the conversation list): the dialect's
placeholders and JSON parameters, nothing more.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson


class Sql:
    """Collects parameters and writes `?` (SQLite) or `$n` (Postgres) placeholders."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.params: list[Any] = []

    def p(self, value: Any) -> str:
        self.params.append(value)
        return "?" if self.dialect == "sqlite" else f"${len(self.params)}"

    def insert(self, table: str, values: dict[str, Any], *, returning: str | None = None, on_conflict: str = "") -> str:
        columns = ", ".join(values)
        placeholders = ", ".join(self.p(v) for v in values.values())
        sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"
        if on_conflict:
            sql += f" ON CONFLICT {on_conflict}"
        if returning:
            sql += f" RETURNING {returning}"
        return sql


def json_param(value: Any) -> str:
    return orjson.dumps(value).decode()


def as_datetime(value: Any) -> datetime | None:
    """A timestamp column read raw: SQLite gives tortoise's ISO text, Postgres a datetime."""
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def as_json(value: Any) -> Any:
    """A JSON column read raw: SQLite gives text, Postgres (no codec registered) gives text too."""
    return orjson.loads(value) if isinstance(value, str) else value
