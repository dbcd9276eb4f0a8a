"""tortoise's SQLite client, with a transaction's start in one hand-off to aiosqlite's thread.

tortoise begins a transaction with two awaits on aiosqlite (a `commit()` that ends nothing in autocommit mode, then
`BEGIN`), each a trip to aiosqlite's thread and back through the event loop. While a transaction is open it holds
the only connection, so webhooks waiting for their commit wait for these trips too; under load each costs 1–3 ms
(the loop comes round only between other tasks' steps). Here both run in one trip. (`inbox.sql.run_statements`
can likewise send a transaction's last statements and its `COMMIT` in one trip.)

Selected by the engine name in `inbox.db.tortoise_config`; everything else is tortoise's own.
"""

from __future__ import annotations

import sqlite3

from tortoise.backends.sqlite.client import SqliteClient, SqliteTransactionContext, SqliteTransactionWrapper
from tortoise.exceptions import TransactionManagementError


class OneTripTransaction(SqliteTransactionWrapper):
    """A top-level transaction (tortoise's savepoints inside it are plain `SqliteTransactionWrapper`s)."""

    async def begin(self) -> None:
        try:
            await self._connection._execute(_begin, self._connection._conn)
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc

    def committed_on_thread(self) -> None:
        """Its COMMIT ran on aiosqlite's thread with its last statements (`inbox.sql.run_statements`): leaving
        `in_transaction()` has nothing left to commit (tortoise skips a finalised transaction)."""
        self._finalized = True


def _begin(raw: sqlite3.Connection) -> None:
    """What tortoise's `begin` sends, on aiosqlite's thread: end an implicit transaction (none in autocommit
    mode, which tortoise uses), then open ours."""
    raw.commit()
    raw.execute("BEGIN")


class HopthuSqliteClient(SqliteClient):
    def _in_transaction(self) -> SqliteTransactionContext:
        return SqliteTransactionContext(OneTripTransaction(self), self._lock)


client_class = HopthuSqliteClient
