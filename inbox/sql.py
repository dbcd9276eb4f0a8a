"""Small raw-SQL helpers for the hot paths (ingest processing, the conversation list): the dialect's
placeholders and JSON parameters, nothing more.
"""

from __future__ import annotations

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
