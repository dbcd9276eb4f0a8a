"""Customer data at scale: merge suggestions over 100,000 contacts, RFM over 100,000 contacts / 1,000,000 orders.

Each target is ≤ 10 s, on SQLite and (with --postgres URL) on PostgreSQL. The baseline measured in the same run is
the bare read the work cannot avoid (every contact row; one GROUP BY over the orders), so the ratio shows what the
scoring itself costs on top.

    .venv/bin/python bench/contacts.py [--quick] [--postgres postgres://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from common import Summary, fmt, name_for  # type: ignore[import-not-found]

from contacts import rfm
from contacts.duplicates import find_duplicates
from inbox import db

TARGET_S = 10.0
NOW = datetime(2026, 11, 1, tzinfo=UTC)
CONTACT_COLUMNS = (
    "name, phone, email, search_text, created_at, updated_at, phones, emails, addresses, tags, attributes, notes, "
    "source, do_not_store"
)
ORDER_COLUMNS = "contact_id, status, items, total, note, source, ordered_at, created_at, updated_at"


def contact_rows(n: int) -> list[tuple]:
    """Every 50th customer has a second profile: the same phone written the local way, or the same e-mail."""
    rng = random.Random(7)
    rows = []
    stamp = NOW.isoformat()
    for i in range(n):
        base = i - 1 if i % 50 == 1 else i  # profile i (i ≡ 1 mod 50) duplicates profile i − 1
        phone_digits = f"9{base:08d}"
        phone = f"0{phone_digits}" if base != i and i % 100 == 1 else f"+84{phone_digits}"
        email = f"kh{base}@mail.vn" if rng.random() < 0.4 else None
        name = name_for(base) if base == i or i % 3 else name_for(base).upper()
        rows.append((name, phone, email, "", stamp, stamp, "[]", "[]", "[]", "[]", "{}", "", "{}", False))
    return rows


def order_rows(contacts: int, orders: int) -> list[tuple]:
    rng = random.Random(11)
    rows = []
    stamp = NOW.isoformat()
    statuses = ("completed",) * 8 + ("paid", "cancelled")
    for _ in range(orders):
        # Most orders spread over everyone; a fifth go to a few heavy buyers.
        contact = rng.randint(1, contacts) if rng.random() < 0.8 else int(rng.paretovariate(1.2)) % contacts + 1
        at = NOW - timedelta(days=rng.randint(0, 720), seconds=rng.randint(0, 86_399))
        rows.append((contact, rng.choice(statuses), "[]", rng.randint(5, 300) * 10_000, "", "import", at, stamp, stamp))
    return rows


def fill_sqlite(path: Path, contacts: list[tuple], orders: list[tuple]) -> None:
    conn = sqlite3.connect(path)
    marks = ", ".join("?" * 14)
    conn.executemany(f"INSERT INTO contacts ({CONTACT_COLUMNS}) VALUES ({marks})", contacts)
    conn.executemany(
        f"INSERT INTO orders ({ORDER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(*r[:6], r[6].isoformat(), *r[7:]) for r in orders],
    )
    conn.commit()
    conn.close()


async def fill_postgres(url: str, contacts: list[tuple], orders: list[tuple]) -> None:
    import asyncpg

    conn = await asyncpg.connect(urlunsplit(urlsplit(url)._replace(scheme="postgresql")))
    try:
        stamp = NOW
        await conn.copy_records_to_table(
            "contacts",
            columns=[c.strip() for c in CONTACT_COLUMNS.split(",")],
            records=[(*r[:4], stamp, stamp, *r[6:]) for r in contacts],
        )
        await conn.copy_records_to_table(
            "orders",
            columns=[c.strip() for c in ORDER_COLUMNS.split(",")],
            records=[(*r[:7], stamp, stamp) for r in orders],
        )
        await conn.execute("ANALYZE contacts; ANALYZE orders")
    finally:
        await conn.close()


async def measure(label: str, url: str, summary: Summary, n_contacts: int) -> None:
    await db.connect(url, apply_migrations=False)
    try:
        conn = db.connection()
        start = time.perf_counter()
        await conn.execute_query("SELECT id, name, phone, email, phones, emails FROM contacts")
        read_s = time.perf_counter() - start
        start = time.perf_counter()
        found = await find_duplicates(min_score=0.5, limit=100_000)
        dup_s = time.perf_counter() - start
        expected = n_contacts // 50
        hits = sum(1 for s in found if s.b == s.a + 1 and s.b % 50 == 2)  # ids are row numbers + 1
        print(
            f"[{label}] read contacts {fmt(read_s, 2)} s; merge suggestions {fmt(dup_s, 2)} s "
            f"({len(found):,} pairs, {hits:,} of {expected:,} planted duplicates)"
        )
        start = time.perf_counter()
        await conn.execute_query(
            "SELECT contact_id, MAX(ordered_at), COUNT(*), SUM(total) FROM orders GROUP BY contact_id"
        )
        group_s = time.perf_counter() - start
        start = time.perf_counter()
        scored = await rfm.refresh(NOW)
        rfm_s = time.perf_counter() - start
        counts = rfm.summary(scored)["segments"]
        print(
            f"[{label}] GROUP BY orders {fmt(group_s, 2)} s; RFM refresh {fmt(rfm_s, 2)} s for {len(scored):,} "
            f"customers; segments {counts}"
        )
        summary.add(f"{label}: merge suggestions, {n_contacts:,} contacts", dup_s, "s", TARGET_S)
        summary.add(f"{label}: merge suggestions / bare read (ratio)", dup_s / max(read_s, 1e-6), "x")
        summary.add(f"{label}: planted duplicates found", hits / max(expected, 1), "", 1.0, higher=True)
        summary.add(f"{label}: RFM refresh (score + store)", rfm_s, "s", TARGET_S)
        summary.add(f"{label}: RFM / bare GROUP BY (ratio)", rfm_s / max(group_s, 1e-6), "x")
    finally:
        await db.disconnect()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10,000 contacts / 100,000 orders")
    parser.add_argument("--postgres", help="a PostgreSQL URL whose server may host a scratch database")
    args = parser.parse_args()
    n_contacts, n_orders = (10_000, 100_000) if args.quick else (100_000, 1_000_000)
    contacts, orders = contact_rows(n_contacts), order_rows(n_contacts, n_orders)
    summary = Summary(f"contacts: {n_contacts:,} contacts, {n_orders:,} orders")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        await db.migrate(f"sqlite://{path}")
        start = time.perf_counter()
        fill_sqlite(path, contacts, orders)
        print(f"[sqlite] filled in {fmt(time.perf_counter() - start, 1)} s")
        await measure("sqlite", f"sqlite://{path}", summary, n_contacts)
    if args.postgres:
        import asyncpg

        base = urlsplit(args.postgres)
        admin = urlunsplit(base._replace(scheme="postgresql"))
        name = f"hopthu_bench_contacts_{os.getpid()}"
        conn = await asyncpg.connect(admin)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        url = urlunsplit(base._replace(path=f"/{name}"))
        try:
            await db.migrate(url)
            start = time.perf_counter()
            await fill_postgres(url, contacts, orders)
            print(f"[postgres] filled in {fmt(time.perf_counter() - start, 1)} s")
            await measure("postgres", url, summary, n_contacts)
        finally:
            conn = await asyncpg.connect(admin)
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.close()
    summary.print()


if __name__ == "__main__":
    asyncio.run(main())
