"""Small raw-SQL helpers for the hot paths (ingest processing, the conversation list, authentication): the
dialect's placeholders, JSON parameters, and models built from raw rows.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.sqlite.client import SqliteTransactionWrapper
from tortoise.fields import DatetimeField
from tortoise.timezone import get_default_timezone, get_use_tz

from inbox.sqlite_client import OneTripTransaction


class Sql:
    """Collects parameters and writes `?` (SQLite) or `$n` (Postgres) placeholders."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.params: list[Any] = []

    def p(self, value: Any) -> str:
        self.params.append(value)
        return "?" if self.dialect == "sqlite" else f"${len(self.params)}"

    def marks(self, values: Iterable[Any]) -> str:
        """Placeholders for `values`, comma-separated, in order: the inside of `IN (…)` or of a row of VALUES."""
        return ", ".join(self.p(value) for value in values)

    def json_list_has(self, column: str, value: Any) -> str:
        """`column` (a JSON list of strings) holds `value`: a profile's tags, its further phones or e-mails."""
        if self.dialect == "sqlite":
            return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE value = {self.p(value)})"
        return f"({column})::jsonb ? {self.p(value)}"

    def insert(self, table: str, values: dict[str, Any], *, returning: str | None = None, on_conflict: str = "") -> str:
        columns = ", ".join(values)
        placeholders = self.marks(values.values())
        sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"
        if on_conflict:
            sql += f" ON CONFLICT {on_conflict}"
        if returning:
            sql += f" RETURNING {returning}"
        return sql


def insert_many(dialect: str, table: str, columns: Sequence[str], *, on_conflict: str = "") -> str:
    """`INSERT … VALUES (?, …)` for `execute_many`: each row gives the columns' values in order."""
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(_marks(dialect, len(columns)))})"
    return f"{sql} ON CONFLICT {on_conflict}" if on_conflict else sql


def insert_rows(
    dialect: str, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, on_conflict: str = ""
) -> tuple[str, list[Any]]:
    """One `INSERT … VALUES (…), (…)` statement for all `rows`, and its parameters: a single round trip (in
    autocommit, a single transaction), where `execute_many` costs three on SQLite (begin, rows, commit)."""
    sql = Sql(dialect)
    tuples = ", ".join("(" + sql.marks(row) + ")" for row in rows)
    statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {tuples}"
    return (f"{statement} ON CONFLICT {on_conflict}" if on_conflict else statement), sql.params


def update_many(dialect: str, table: str, columns: Sequence[str], key: str = "id") -> str:
    """`UPDATE … SET a = ?, … WHERE id = ?` for `execute_many`: each row gives the columns' values, then the key."""
    marks = _marks(dialect, len(columns) + 1)
    assignments = ", ".join(f"{column} = {mark}" for column, mark in zip(columns, marks, strict=False))
    return f"UPDATE {table} SET {assignments} WHERE {key} = {marks[-1]}"


def _marks(dialect: str, count: int) -> list[str]:
    return ["?"] * count if dialect == "sqlite" else [f"${n}" for n in range(1, count + 1)]


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


def model_columns(model: type) -> tuple[str, ...]:
    """The model's columns, as `model_from_row` reads them."""
    return tuple(model._meta.fields_db_projection.values())


@functools.cache
def model_select(model: type, alias: str) -> str:
    """The select list that `model_from_row(model, row, alias + "_")` reads: `alias.col AS alias_col, …`."""
    return ", ".join(f"{alias}.{c} AS {alias}_{c}" for c in model_columns(model))


def model_from_row(model: type, row: dict, prefix: str = "") -> Any:
    """A model built from a raw row (columns named `prefix + column`), as the ORM's `_init_from_db` builds what it
    reads and with the same values, in a fraction of its time: each column's conversion is chosen once per model
    (`_row_plan`), and timestamps go through the C ISO parser. On the hot paths, the ORM's query building and
    constructor cost more than the query."""
    instance = model.__new__(model)
    attributes = instance.__dict__
    # What `_init_from_db` sets before the fields: a complete instance, saved in the database.
    attributes["_partial"] = False
    attributes["_saved_in_db"] = True
    attributes["_custom_generated_pk"] = model._meta.db_pk_column not in model._meta.generated_db_fields
    attributes["_await_when_save"] = {}
    for column, attribute, convert in _row_plan(model):
        value = row[prefix + column]
        attributes[attribute] = value if convert is None or value is None else convert(value)
    return instance


_ROW_PLANS: dict[type, tuple[list, list, tuple[tuple[str, str, Any], ...]]] = {}


def _row_plan(model: type) -> tuple[tuple[str, str, Any], ...]:
    """(column, attribute, conversion or None) for each of the model's columns, as `_init_from_db` converts them:
    native columns as they are, plain ones through their Python type, the rest through `to_python_value`, except
    timestamps: the C ISO parser, with the same result (aware, in the ORM's time zone). Which columns are native
    depends on the database the ORM was set up for, so the plan is rebuilt when the ORM's lists change."""
    meta = model._meta
    cached = _ROW_PLANS.get(model)
    if cached is not None and cached[0] == meta.db_native_fields and cached[1] == meta.db_complex_fields:
        return cached[2]
    plan: list[tuple[str, str, Any]] = [(column, attribute, None) for column, attribute, _ in meta.db_native_fields]
    plan += [(column, attribute, field.field_type) for column, attribute, field in meta.db_default_fields]
    for column, attribute, field in meta.db_complex_fields:
        if isinstance(field, DatetimeField) and get_use_tz():  # hopthu's setting (`inbox.db`)
            convert: Any = _orm_datetime
        else:
            convert = field.to_python_value
        plan.append((column, attribute, convert))
    built = tuple(plan)
    _ROW_PLANS[model] = (list(meta.db_native_fields), list(meta.db_complex_fields), built)
    return built


def _orm_datetime(value: Any) -> datetime:
    """`DatetimeField.to_python_value` with `use_tz` (hopthu's setting): aware, in the ORM's time zone."""
    parsed = as_datetime(value)
    return parsed.astimezone(get_default_timezone())


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement of `run_statements`: rows (`many`: one parameter list per row, as `execute_many`), or a query
    whose rows come back as dicts (`fetch`). `then` is called with those rows as soon as the statement has run,
    before the next one (on SQLite, on aiosqlite's thread): it may fill in the parameters of the statements after
    it, such as the ids an insert returned."""

    sql: str
    params: list[Any]
    many: bool = False
    fetch: bool = False
    then: Callable[[list[dict]], None] | None = None


async def run_statements(
    conn: BaseDBAsyncClient, statements: Sequence[Statement], *, commit: bool = False
) -> list[list[dict] | None]:
    """Run `statements` in order inside the caller's transaction; each fetching one's rows, in place. On SQLite
    they go to aiosqlite's thread in one hand-off: every `await` on aiosqlite waits for the event loop to come
    round, which under load costs more than the statements themselves. Elsewhere, one by one.

    `commit`: these are the transaction's last statements. On SQLite its COMMIT goes in the same hand-off (the
    transaction is then finished: leaving `in_transaction()` commits nothing more, and the caller must run nothing
    else in it); elsewhere leaving `in_transaction()` commits, as usual."""
    if isinstance(conn, SqliteTransactionWrapper):  # the transaction holds the connection: nothing interleaves
        # Only a top-level transaction commits here; a savepoint leaves it to the transaction around it.
        commit = commit and isinstance(conn, OneTripTransaction)
        # aiosqlite's `_execute` runs a function on its thread, where the sqlite3 connection lives.
        results = await conn._connection._execute(_run_on_sqlite_thread, conn._connection._conn, statements, commit)
        if commit:
            conn.committed_on_thread()
        return results
    results: list[list[dict] | None] = []
    for statement in statements:
        if statement.many:
            await conn.execute_many(statement.sql, statement.params)
            results.append(None)
        elif statement.fetch:
            rows = await conn.execute_query_dict(statement.sql, statement.params)
            if statement.then is not None:
                statement.then(rows)
            results.append(rows)
        else:
            await conn.execute_query(statement.sql, statement.params)
            results.append(None)
    return results


def _run_on_sqlite_thread(raw: Any, statements: Sequence[Statement], commit: bool = False) -> list[list[dict] | None]:
    results: list[list[dict] | None] = []
    for statement in statements:
        if statement.many:
            raw.executemany(statement.sql, statement.params)
            results.append(None)
        else:
            cursor = raw.execute(statement.sql, statement.params)
            rows = [dict(row) for row in cursor.fetchall()] if statement.fetch else None
            if statement.then is not None and rows is not None:
                statement.then(rows)
            results.append(rows)
    if commit:
        raw.commit()
    return results


_JSON_KEY = re.compile(r"[a-z_][a-z0-9_]*")


async def merge_into_json(
    conn: BaseDBAsyncClient, table: str, column: str, row_id: int, changes: dict[str, Any], *, key: str | None = None
) -> Any:
    """Sets `changes` into the JSON object in `column` of one row (or into the object at its `key`), in one
    statement, and gives the column back (None when the row is gone). Two writers of different fields of the same
    object (an agent hiding a comment while the auto-hide worker marks it; two admins saving different settings)
    keep each other's fields, which a read-modify-write of the whole document would lose."""
    for name in [*changes] if key is None else [key, *changes]:
        if not _JSON_KEY.fullmatch(name):  # the names go into the JSON path: only the code's own names
            raise ValueError(f"not a plain JSON key: {name!r}")
    sql = Sql(conn.capabilities.dialect)
    if sql.dialect == "sqlite":
        document, path = f"COALESCE({column}, '{{}}')", "$"
        if key is not None:
            # json_set makes no missing parents: json_insert adds `key` as {} when it is not there (a separate
            # call: before SQLite 3.45 a json_set cannot edit inside a node that the same call has just set).
            document, path = f"json_insert({document}, '$.{key}', json('{{}}'))", f"$.{key}"
        pairs = [f"'{path}.{name}', json({sql.p(json_param(value))})" for name, value in changes.items()]
        merged = f"json_set({document}, {', '.join(pairs)})" if pairs else document
    else:
        patch = f"{sql.p(json_param(changes))}::jsonb"
        document = f"COALESCE({column}, '{{}}'::jsonb)"
        if key is None:
            merged = f"{document} || {patch}"
        else:
            merged = f"jsonb_set({document}, '{{{key}}}', COALESCE({column}->'{key}', '{{}}'::jsonb) || {patch})"
    rows = await conn.execute_query_dict(
        f"UPDATE {table} SET {column} = {merged} WHERE id = {sql.p(row_id)} RETURNING {column}", sql.params
    )
    return as_json(rows[0][column]) if rows else None
