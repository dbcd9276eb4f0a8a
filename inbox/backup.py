"""`hopthu backup FILE` / `hopthu restore FILE`: online, consistent copies of the whole database.

A backup is one tar file: `manifest.json` (dialect, format, the row count of every table *in the same snapshot* as
the data) and the data itself:

- SQLite: `database.sqlite`, made with SQLite's online backup API (a consistent copy while the server writes).
- PostgreSQL: `database.pgdump` (`pg_dump -Fc`) when `pg_dump` is on PATH and can talk to the server; the row counts
  are taken in a REPEATABLE READ transaction whose snapshot pg_dump reuses (`--snapshot`), so they describe exactly
  the dumped data. Without a usable pg_dump: `tables/<name>.copy` (COPY text format of every table, all read in that
  one REPEATABLE READ transaction).

Every backup is verified after writing (the file is read back, every table is counted against the manifest) before
it replaces FILE; every restore is verified the same way. A restore goes into an empty database only (`force`
overrides) — restoring over live data is a decision, not a default.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite"
PGDUMP_FILE = "database.pgdump"
BACKUP_NAME = re.compile(r"^hopthu-\d{8}T\d{6}Z\.backup$")


class BackupError(Exception):
    """The backup or restore could not be made or did not verify; the message says why."""


@dataclass(frozen=True)
class Summary:
    path: Path
    dialect: str
    format: str
    tables: dict[str, int]

    def as_dict(self) -> dict:
        return {
            "file": str(self.path),
            "dialect": self.dialect,
            "format": self.format,
            "tables": len(self.tables),
            "rows": sum(self.tables.values()),
        }


# ------------------------------------------------------------------------------------------------------ helpers


def dialect_of(url: str) -> str:
    if url.startswith("sqlite://"):
        return "sqlite"
    if url.startswith(("postgres://", "postgresql://", "asyncpg://", "psycopg://")):
        return "postgres"
    raise BackupError(f"unsupported database URL for backup: {url.split(':', 1)[0]}://…")


def sqlite_path(url: str) -> Path:
    path = url[len("sqlite://") :].split("?", 1)[0]
    if not path or path == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(path)


def libpq_url(url: str) -> str:
    """The URL as libpq and asyncpg read it: `postgresql://`, without tortoise's pool parameters."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql", query=""))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _write_archive(target: Path, manifest: dict, members: list[tuple[str, Path]]) -> None:
    with tarfile.open(target, "w") as tar:
        raw = json.dumps(manifest, indent=2, sort_keys=True).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mtime = len(raw), int(time.time())
        tar.addfile(info, io.BytesIO(raw))
        for name, path in members:
            tar.add(path, arcname=name, recursive=False)


def read_archive(path: Path, into: Path) -> dict:
    """Unpack a backup into `into` and return its manifest; anything that is not a hopthu backup is refused."""
    try:
        with tarfile.open(path, "r") as tar:
            tar.extractall(into, filter="data")  # "data": no absolute paths, links or devices from the archive
    except (tarfile.TarError, OSError) as exc:
        raise BackupError(f"{path} is not a readable hopthu backup: {exc}") from exc
    try:
        manifest = json.loads((into / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(f"{path} has no valid {MANIFEST}") from exc
    if manifest.get("hopthu_backup") != FORMAT_VERSION:
        raise BackupError(f"{path} is not a hopthu backup of format {FORMAT_VERSION}")
    return manifest


def _check_counts(expected: dict[str, int], found: dict[str, int], what: str) -> None:
    if expected != found:
        names = sorted(set(expected) | set(found))
        diff = {t: (expected.get(t), found.get(t)) for t in names if expected.get(t) != found.get(t)}
        raise BackupError(f"{what} does not match the snapshot (table: expected, found): {diff}")


def _manifest(dialect: str, fmt: str, tables: dict[str, int]) -> dict:
    return {
        "hopthu_backup": FORMAT_VERSION,
        "dialect": dialect,
        "format": fmt,
        "created_at": datetime.now(UTC).isoformat(),
        "tables": tables,
    }


# ------------------------------------------------------------------------------------------------------ SQLite


def sqlite_counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    # FTS5 shadow tables are rebuilt from their virtual table; counting the virtual table is enough.
    return {name: conn.execute(f"SELECT COUNT(*) FROM {_quote(name)}").fetchone()[0] for name in names}


def _sqlite_backup(url: str, work: Path) -> tuple[dict, list[tuple[str, Path]]]:
    source_path = sqlite_path(url)
    if not source_path.exists():
        raise BackupError(f"database file {source_path} does not exist")
    copy = work / SQLITE_FILE
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(copy)
    try:
        source.execute("PRAGMA busy_timeout = 30000")
        # pages=-1: the whole database in one step under one read lock, so writers never make it restart and
        # the copy is one snapshot (the server's WAL writers go on meanwhile).
        source.backup(target, pages=-1)
    finally:
        source.close()
    try:
        target.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
        ok = target.execute("PRAGMA integrity_check").fetchone()[0]
        if ok != "ok":
            raise BackupError(f"the copy failed SQLite's integrity check: {ok}")
        tables = sqlite_counts(target)
    finally:
        target.close()
    return _manifest("sqlite", "sqlite", tables), [(SQLITE_FILE, copy)]


def _sqlite_verify(manifest: dict, unpacked: Path) -> None:
    conn = sqlite3.connect(f"file:{unpacked / SQLITE_FILE}?mode=ro", uri=True)
    try:
        if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise BackupError("the written backup failed SQLite's integrity check")
        _check_counts(manifest["tables"], sqlite_counts(conn), "the written backup")
    finally:
        conn.close()


def _sqlite_has_rows(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return False
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return any(n for t, n in sqlite_counts(conn).items() if t != "tortoise_migrations")
    finally:
        conn.close()


def _sqlite_restore(manifest: dict, unpacked: Path, url: str, force: bool) -> dict[str, int]:
    if manifest["dialect"] != "sqlite":
        raise BackupError(f"a {manifest['dialect']} backup cannot be restored into SQLite")
    target_path = sqlite_path(url)
    if not force and _sqlite_has_rows(target_path):
        raise BackupError(f"{target_path} already holds data; restore into an empty database (or use --force)")
    target_path.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{unpacked / SQLITE_FILE}?mode=ro", uri=True)
    target = sqlite3.connect(target_path, timeout=30)
    try:
        source.backup(target, pages=-1)
        target.execute("PRAGMA journal_mode = WAL")  # what the server uses
        restored = sqlite_counts(target)
    finally:
        source.close()
        target.close()
    _check_counts(manifest["tables"], restored, "the restored database")
    return restored


# ------------------------------------------------------------------------------------------------------ Postgres


async def _pg_tables(conn) -> list[str]:
    rows = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
    )
    return [r["tablename"] for r in rows]


async def _pg_columns(conn, table: str) -> list[str]:
    rows = await conn.fetch(
        # Generated columns are computed again from the others on restore (COPY cannot write them).
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 "
        "AND is_generated = 'NEVER' ORDER BY ordinal_position",
        table,
    )
    return [r["column_name"] for r in rows]


async def _pg_counts(conn) -> dict[str, int]:
    return {t: await conn.fetchval(f"SELECT COUNT(*) FROM {_quote(t)}") for t in await _pg_tables(conn)}


def pg_dump_usable() -> bool:
    return shutil.which("pg_dump") is not None and shutil.which("pg_restore") is not None


async def _run(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PGCONNECT_TIMEOUT": "10"}
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise BackupError(f"{Path(args[0]).name} failed: {err.decode(errors='replace').strip()[-2000:]}")
    return out.decode(errors="replace")


async def _pg_backup(url: str, work: Path, logical: bool) -> tuple[dict, list[tuple[str, Path]]]:
    import asyncpg

    dsn = libpq_url(url)
    conn = await asyncpg.connect(dsn)
    try:
        # One snapshot for the counts and the data: REPEATABLE READ, READ ONLY, exported to pg_dump.
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
            tables = await _pg_counts(conn)
            if not logical and pg_dump_usable():
                try:
                    dump = work / PGDUMP_FILE
                    await _run("pg_dump", "-Fc", "--no-owner", "--no-privileges", f"--snapshot={snapshot}",
                               "-f", str(dump), dsn)  # fmt: skip
                    return _manifest("postgres", "pg_dump", tables), [(PGDUMP_FILE, dump)]
                except BackupError:
                    pass  # e.g. a pg_dump older than the server: the logical dump below needs no tool
            members = []
            (work / "tables").mkdir()
            columns = {t: await _pg_columns(conn, t) for t in tables}
            for table in tables:
                path = work / "tables" / f"{table}.copy"
                names = ", ".join(_quote(c) for c in columns[table])
                await conn.copy_from_query(f"SELECT {names} FROM {_quote(table)}", output=str(path), format="text")
                members.append((f"tables/{table}.copy", path))
            manifest = _manifest("postgres", "copy", tables)
            manifest["columns"] = columns  # restored by name: the target's column order may differ
            return manifest, members
    finally:
        await conn.close()


def _copy_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


async def _pg_verify(manifest: dict, unpacked: Path) -> None:
    if manifest["format"] == "pg_dump":
        listing = await _run("pg_restore", "--list", str(unpacked / PGDUMP_FILE))
        dumped = set(re.findall(r" TABLE DATA public (\S+) ", listing))
        missing = {t for t in manifest["tables"] if t not in dumped}
        if missing:
            raise BackupError(f"the written dump lacks the data of {sorted(missing)}")
        return
    # COPY text format: one line per row (newlines inside values are escaped as \n).
    found = {t: _copy_lines(unpacked / "tables" / f"{t}.copy") for t in manifest["tables"]}
    _check_counts(manifest["tables"], found, "the written backup")


async def _pg_restore(manifest: dict, unpacked: Path, url: str, force: bool) -> dict[str, int]:
    import asyncpg

    if manifest["dialect"] != "postgres":
        raise BackupError(f"a {manifest['dialect']} backup cannot be restored into PostgreSQL")
    dsn = libpq_url(url)
    conn = await asyncpg.connect(dsn)
    try:
        existing = {t: n for t, n in (await _pg_counts(conn)).items() if t != "tortoise_migrations"}
        if not force and any(existing.values()):
            raise BackupError("the target database already holds data; restore into an empty database (or --force)")
        if manifest["format"] == "pg_dump":
            await conn.close()
            await _run("pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges",
                       "--single-transaction", "-d", dsn, str(unpacked / PGDUMP_FILE))  # fmt: skip
            conn = await asyncpg.connect(dsn)
        else:
            await conn.close()
            await _pg_restore_copy(manifest, unpacked, url)
            conn = await asyncpg.connect(dsn)
        restored = await _pg_counts(conn)
    finally:
        await conn.close()
    _check_counts(manifest["tables"], restored, "the restored database")
    return restored


async def _pg_restore_copy(manifest: dict, unpacked: Path, url: str) -> None:
    import asyncpg

    # The schema comes from the migrations (a no-op when present), the rows from the backup. In a process of its own:
    # tortoise's migration API closes the calling process's default connections when it is done.
    await _run(sys.executable, "-c", "import asyncio, sys; from inbox import db; asyncio.run(db.migrate(sys.argv[1]))",
               url)  # fmt: skip
    conn = await asyncpg.connect(libpq_url(url))
    try:
        await _pg_load_copies(conn, manifest, unpacked)
    finally:
        await conn.close()


async def _pg_load_copies(conn, manifest: dict, unpacked: Path) -> None:
    tables = list(manifest["tables"])
    missing = set(tables) - set(await _pg_tables(conn))
    if missing:
        raise BackupError(f"this hopthu has no tables {sorted(missing)}; restore with the version that made the backup")
    async with conn.transaction():
        await conn.execute(f"TRUNCATE {', '.join(_quote(t) for t in tables)} RESTART IDENTITY CASCADE")
        # Foreign keys are checked per statement: load parents before children.
        for table in await _fk_order(conn, tables):
            columns = manifest["columns"][table]
            missing = set(columns) - set(await _pg_columns(conn, table))
            if missing:
                raise BackupError(f"table {table} has no columns {sorted(missing)} here: restore with the same version")
            await conn.copy_to_table(
                table, source=str(unpacked / "tables" / f"{table}.copy"), columns=columns, format="text"
            )
        for table in tables:  # serial columns continue after the restored ids
            for column in await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 "
                "AND column_default LIKE 'nextval(%'",
                table,
            ):
                name = column["column_name"]
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence($1, $2), COALESCE(MAX({_quote(name)}), 0) + 1, false) "
                    f"FROM {_quote(table)}",
                    table,
                    name,
                )


async def _fk_order(conn, tables: list[str]) -> list[str]:
    rows = await conn.fetch(
        "SELECT c.conrelid::regclass::text AS child, c.confrelid::regclass::text AS parent FROM pg_constraint c "
        "WHERE c.contype = 'f'"
    )
    parents: dict[str, set[str]] = {t: set() for t in tables}
    for r in rows:
        child, parent = r["child"].strip('"'), r["parent"].strip('"')
        if child in parents and parent in parents and child != parent:
            parents[child].add(parent)
    ordered: list[str] = []
    while parents:
        ready = sorted(t for t, ps in parents.items() if not ps - set(ordered))
        if not ready:  # a cycle: load the rest as is
            ready = sorted(parents)
        for t in ready:
            ordered.append(t)
            del parents[t]
    return ordered


# ------------------------------------------------------------------------------------------------------ public API


async def backup(url: str, target: str | Path, *, logical: bool = False) -> Summary:
    """Write a verified backup of the database at `url` to `target` (replaced only once verified)."""
    target = Path(target)
    dialect = dialect_of(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hopthu-backup-", dir=target.parent) as tmp:
        work = Path(tmp)
        if dialect == "sqlite":
            manifest, members = await asyncio.to_thread(_sqlite_backup, url, work)
        else:
            manifest, members = await _pg_backup(url, work, logical)
        partial = work / "backup.tar"
        await asyncio.to_thread(_write_archive, partial, manifest, members)
        # Verify what was written, from the file itself, before it takes FILE's place.
        check = work / "verify"
        check.mkdir()
        manifest_read = await asyncio.to_thread(read_archive, partial, check)
        if dialect == "sqlite":
            await asyncio.to_thread(_sqlite_verify, manifest_read, check)
        else:
            await _pg_verify(manifest_read, check)
        os.replace(partial, target)
    return Summary(target, dialect, manifest["format"], manifest["tables"])


async def restore(url: str, source: str | Path, *, force: bool = False) -> Summary:
    """Load a backup into the (empty) database at `url`, then check every table's row count."""
    source = Path(source)
    if not source.is_file():
        raise BackupError(f"{source} does not exist")
    dialect = dialect_of(url)
    with tempfile.TemporaryDirectory(prefix="hopthu-restore-") as tmp:
        unpacked = Path(tmp)
        manifest = await asyncio.to_thread(read_archive, source, unpacked)
        if dialect == "sqlite":
            tables = await asyncio.to_thread(_sqlite_restore, manifest, unpacked, url, force)
        else:
            tables = await _pg_restore(manifest, unpacked, url, force)
    return Summary(source, dialect, manifest["format"], tables)


def backup_name(at: datetime) -> str:
    return f"hopthu-{at.strftime('%Y%m%dT%H%M%SZ')}.backup"


def prune(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` scheduled backups in `directory`; other files are never touched."""
    backups = sorted(p for p in directory.iterdir() if p.is_file() and BACKUP_NAME.match(p.name))
    doomed = backups[:-keep] if keep > 0 else backups
    for path in doomed:
        path.unlink()
    return doomed


async def run_schedule(
    url: str,
    directory: str | Path,
    *,
    every: float,
    keep: int,
    iterations: int | None = None,
    on_backup: Callable[[Summary], None] | None = None,
) -> None:
    """Back up into `directory` every `every` seconds, keeping the newest `keep`; a failed run is reported and the
    schedule goes on (the previous backups stay)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    done = 0
    while iterations is None or done < iterations:
        started = time.monotonic()
        name = backup_name(datetime.now(UTC))
        while (directory / name).exists():  # two runs within one second
            await asyncio.sleep(1.0)
            name = backup_name(datetime.now(UTC))
        try:
            summary = await backup(url, directory / name)
        except BackupError as exc:
            print(f"error: scheduled backup failed: {exc}", flush=True)
        else:
            prune(directory, keep)
            if on_backup is not None:
                on_backup(summary)
        done += 1
        if iterations is None or done < iterations:
            await asyncio.sleep(max(0.0, every - (time.monotonic() - started)))


def parse_interval(text: str) -> float:
    """`90`, `90s`, `15m`, `6h`, `1d` → seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match:
        raise BackupError(f"cannot read the interval {text!r} (examples: 900, 15m, 6h, 1d)")
    value = float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    if value <= 0:
        raise BackupError("the interval must be positive")
    return value
