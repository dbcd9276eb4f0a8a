"""Agent reports at size, and what routing adds per message.

1. Fill a fresh database (SQLite file, or Postgres with --postgres URL) with 100,000 conversations and 1,000,000
   messages (--scale shrinks both): 20 agents, 10 messages a conversation (5 customer, 5 agent replies with
   random waits), assignment and resolution — the matching `conversation_events` rows written alongside, as the
   app writes them. Bulk rows go in raw (sqlite3 executemany / asyncpg COPY); NOT NULL columns this script does
   not know are filled from the live schema, so other areas' new columns do not break it.
2. Project the events into `metric_facts` (agents/reports.py; timed: the one-off catch-up cost).
3. Time the agent report (`agents.reports.aggregate`, what `GET /api/reports/agents` runs) over the whole month,
   plain and in business hours, and per day. Target ≤ 1 s. Baseline in the same run: one `COUNT(*) … GROUP BY`
   scan of `conversation_events` (what the database does with no metric logic at all).
4. Routing: 10,000 messages to 1,000 new conversations (10 each, interleaved), in batches of 50 as the processor
   hands them to the post-commit pipeline, with `round_robin` over 5 online agents; time spent in `route` per
   message, against ManualRouting on the same stream. Target ≤ 1 ms added per message.

    python bench/reports.py [--quick] [--scale 1.0] [--postgres postgres://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson

from bench.common import Summary

START = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
AGENTS = 20


def _filler(kind: str) -> Any:
    kind = kind.lower()
    if "json" in kind:
        return "{}"
    if "int" in kind or "serial" in kind:
        return 0
    if "bool" in kind:
        return False
    if "real" in kind or "float" in kind or "double" in kind or "numeric" in kind:
        return 0.0
    if "time" in kind or "date" in kind:
        return START
    return ""


class Writer:
    """Raw bulk inserts for one dialect, with unknown NOT NULL columns filled from the live schema."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite://")
        self.required: dict[str, dict[str, str]] = {}

    async def open(self) -> None:
        if self.sqlite:
            self.conn = sqlite3.connect(self.url[len("sqlite://") :].split("?")[0])
            self.conn.execute("PRAGMA synchronous=OFF")
        else:
            import asyncpg

            self.pg = await asyncpg.connect(self.url.replace("postgres://", "postgresql://", 1))

    async def close(self) -> None:
        if self.sqlite:
            self.conn.commit()
            self.conn.close()
        else:
            await self.pg.close()

    async def _required(self, table: str) -> dict[str, str]:
        if table not in self.required:
            if self.sqlite:
                rows = self.conn.execute(f"PRAGMA table_info({table})").fetchall()
                self.required[table] = {r[1]: r[2] for r in rows if r[3] and r[4] is None and not r[5]}
            else:
                rows = await self.pg.fetch(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1"
                    " AND is_nullable = 'NO' AND column_default IS NULL",
                    table,
                )
                self.required[table] = {r["column_name"]: r["data_type"] for r in rows}
        return self.required[table]

    async def insert(self, table: str, columns: list[str], rows: list[tuple]) -> None:
        extra = {c: t for c, t in (await self._required(table)).items() if c not in columns}
        names = columns + list(extra)
        fill = tuple(_filler(t) for t in extra.values())
        if self.sqlite:
            fill = tuple(v.isoformat(" ") if isinstance(v, datetime) else v for v in fill)
            data = [tuple(_sqlite(v) for v in row) + fill for row in rows]
            marks = ", ".join("?" for _ in names)
            self.conn.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", data)
        else:
            await self.pg.copy_records_to_table(table, records=[row + fill for row in rows], columns=names)


def _sqlite(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(" ")
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value


def _pgjson(value: Any) -> Any:
    return orjson.dumps(value).decode() if isinstance(value, dict | list) else value


async def fill(url: str, conversations: int, per_conversation: int) -> dict[str, Any]:
    from agents.models import InboxMember, User
    from inbox import db
    from inbox.models import Inbox

    await db.connect(url)
    users = [
        await User.create(email=f"agent{i}@bench.vn", name=f"Nhân viên {i}", password_hash="x") for i in range(AGENTS)
    ]
    inboxes = [await Inbox.create(name=f"Shop {i}", channel="facebook", external_id=f"page-{i}") for i in range(2)]
    for user in users:
        for inbox in inboxes:
            await InboxMember.create(user=user, inbox=inbox)
    await db.disconnect()
    writer = Writer(url)
    await writer.open()
    rng = random.Random(7)
    contacts = 1000
    await writer.insert(
        "contacts",
        ["id", "name", "search_text", "created_at", "updated_at"],
        [(i, f"Khách {i}", f"khach {i}", START, START) for i in range(1, contacts + 1)],
    )
    await writer.insert(
        "contact_identities",
        ["id", "contact_id", "inbox_id", "channel", "external_id", "created_at"],
        [(i, i, inboxes[i % 2].id, "facebook", f"psid-{i}", START) for i in range(1, contacts + 1)],
    )
    convs, messages, events = [], [], []
    message_id = event_id = 0
    as_json = _sqlite if writer.sqlite else _pgjson
    for c in range(1, conversations + 1):
        identity = (c % contacts) + 1
        inbox_id = inboxes[identity % 2].id
        agent = users[c % AGENTS].id
        t = START + timedelta(seconds=rng.uniform(0, 28 * 86400))
        opened = t

        def event(
            kind: str,
            actor_type: str,
            actor_id: int | None,
            at: datetime,
            mid: int | None,
            c=c,
            inbox_id=inbox_id,
            out=events,
            **data: Any,
        ) -> None:
            nonlocal event_id
            event_id += 1
            out.append((event_id, c, inbox_id, kind, actor_type, actor_id, mid, as_json(data), at, at))

        event("opened", "contact", identity, t, None)
        for turn in range(per_conversation // 2):
            message_id += 1
            messages.append((message_id, c, inbox_id, "in", "contact", "platform", "Shop ơi còn hàng không ạ", t, t))
            event("message_in", "contact", identity, t, message_id)
            if turn == 0:
                event("assigned", "system", None, t + timedelta(seconds=2), None, agent_id=agent, reason="round_robin")
            t += timedelta(seconds=rng.uniform(10, 900))
            message_id += 1
            messages.append((message_id, c, inbox_id, "out", "agent", "hopthu", "Dạ còn ạ", t, t))
            event("message_out", "agent", agent, t, message_id, origin="hopthu")
            t += timedelta(seconds=rng.uniform(30, 3600))
        event("status_changed", "agent", agent, t, None, previous="open", status="resolved")
        convs.append(
            (c, inbox_id, identity, identity, "facebook", f"t{c}", "resolved", agent, as_json([]), t, "Dạ còn ạ",
             t, t, 0, opened)
        )  # fmt: skip
        if len(messages) >= 100_000:
            await _flush(writer, convs, messages, events)
            convs, messages, events = [], [], []
    await _flush(writer, convs, messages, events)
    if not writer.sqlite:  # rows came with their ids: move the sequences past them for later ORM inserts
        for table in ("contacts", "contact_identities", "conversations", "messages", "conversation_events"):
            await writer.pg.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"
            )
    await writer.close()
    return {"inbox_ids": [i.id for i in inboxes], "user_ids": [u.id for u in users], "messages": message_id,
            "events": event_id}  # fmt: skip


async def _flush(writer: Writer, convs: list, messages: list, events: list) -> None:
    await writer.insert(
        "conversations",
        ["id", "inbox_id", "contact_id", "identity_id", "channel", "thread_key", "status", "assignee_id", "labels",
         "last_message_at", "last_message_preview", "last_incoming_at", "last_activity_at", "unread_count",
         "created_at"],
        convs,
    )  # fmt: skip
    await writer.insert(
        "messages",
        ["id", "conversation_id", "inbox_id", "direction", "sender_type", "origin", "text", "created_at",
         "recorded_at"],
        messages,
    )  # fmt: skip
    await writer.insert(
        "conversation_events",
        ["id", "conversation_id", "inbox_id", "kind", "actor_type", "actor_id", "message_id", "data", "occurred_at",
         "recorded_at"],
        events,
    )  # fmt: skip


async def timed(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def measure_reports(url: str, summary: Summary, repeat: int) -> None:
    from agents import reports
    from inbox import db

    await db.connect(url)
    conn = db.connection()
    if not url.startswith("sqlite://"):
        await conn.execute_script("ANALYZE")
    started = time.perf_counter()
    projected = await reports.project_all()
    end = START + timedelta(days=31)
    await reports.aggregate(START, end)  # builds the daily digests of the month
    summary.add("projection + digests (one-off catch-up)", time.perf_counter() - started, "s")
    summary.note(f"projected {projected:,} conversations into metric_facts")
    if url.startswith("sqlite://"):
        await conn.execute_script("ANALYZE")
    else:
        await conn.execute_script("ANALYZE metric_facts")

    async def baseline() -> None:
        await conn.execute_query_dict("SELECT kind, COUNT(*) AS n FROM conversation_events GROUP BY kind")

    async def by_agent() -> None:
        await reports.project()  # what the API does first: nothing new to project
        figures = await reports.aggregate(START, end, group="agent")
        assert len(figures) == AGENTS, len(figures)

    base = await timed(baseline, repeat)
    plain = await timed(by_agent, repeat)
    business = await timed(lambda: reports.aggregate(START, end, group="agent", business=True), repeat)
    per_day = await timed(lambda: reports.aggregate(START, end, group="day"), repeat)
    summary.add("baseline: one scan of conversation_events", base * 1000, "ms")
    summary.add("agent report, whole month", plain, "s", 1.0)
    summary.add("agent report, business hours", business, "s", 1.0)
    summary.add("report per day", per_day, "s", 1.0)
    summary.note(f"agent report / baseline scan = {plain / base:.2f}×")
    await measure_tick(conn, summary, 100 if repeat < 5 else 1000)
    await db.disconnect()


async def measure_tick(conn: Any, summary: Summary, touched: int) -> None:
    """A projection tick after a customer message and a reply in each of `touched` conversations: going on from
    where each replay stopped (agents/replay.py), against replaying them whole (the kept states forgotten: what
    a restarted process does, and what every tick did before) on the same kind of events."""
    from agents import reports
    from inbox.sql import Sql, json_param

    rows = await conn.execute_query_dict(f"SELECT id, inbox_id FROM conversations ORDER BY id DESC LIMIT {touched}")
    at = START + timedelta(days=40)

    async def tick(forget: bool) -> float:
        nonlocal at
        at += timedelta(hours=1)
        for row in rows:
            for kind, actor, delay in (("message_in", "contact", 0), ("message_out", "agent", 30)):
                sql = Sql(conn.capabilities.dialect)
                values = {"conversation_id": row["id"], "inbox_id": row["inbox_id"], "kind": kind,
                          "actor_type": actor, "data": json_param({}), "occurred_at": at + timedelta(seconds=delay),
                          "recorded_at": at}  # fmt: skip
                await conn.execute_query(sql.insert("conversation_events", values), sql.params)
        if forget:
            reports.STOPS.forget()
        started = time.perf_counter()
        done = await reports.project_all()
        assert done == len(rows), done
        return time.perf_counter() - started

    going_on = [await tick(False) for _ in range(3)]
    whole = [await tick(True) for _ in range(3)]
    on, full = statistics.median(going_on), statistics.median(whole)
    summary.add(f"projection tick, 1 exchange in each of {len(rows):,} conversations", on * 1000, "ms")
    summary.add("  same, replayed whole (baseline)", full * 1000, "ms")
    summary.note(f"tick going on from the kept states / replaying whole = {on / full:.2f}×")


async def measure_routing(url: str, summary: Summary, conversations: int) -> None:
    from agents.models import AgentState, InboxMember, User
    from agents.routing import ManualRouting, QueueRouter
    from contacts.models import Contact, ContactIdentity
    from inbox import db
    from inbox.bus import InProcessBus
    from inbox.models import Conversation, Inbox, Message

    await db.connect(url)
    results = {}
    for name in ("manual", "round_robin"):
        inbox = await Inbox.create(name=f"Routing {name}", channel="facebook", external_id=f"route-{name}",
                                   settings={"routing": {"policy": name, "capacity": 100_000}})  # fmt: skip
        for i in range(5):
            user = await User.create(email=f"{name}{i}@bench.vn", name=f"Trực {i}", password_hash="x")
            await InboxMember.create(user=user, inbox=inbox)
            await AgentState.create(user=user, connections=1)
        contact = await Contact.create(name="Khách routing")
        identity = await ContactIdentity.create(contact=contact, inbox=inbox, channel="facebook", external_id=name)
        at = datetime.now(UTC)
        await Conversation.bulk_create(
            [
                Conversation(
                    inbox_id=inbox.id,
                    contact_id=contact.id,
                    identity_id=identity.id,
                    channel="facebook",
                    thread_key=f"r{i}",
                    last_activity_at=at,
                )
                for i in range(conversations)
            ]
        )
        convs = await Conversation.filter(inbox_id=inbox.id).order_by("id")
        stream = [conv for _ in range(10) for conv in convs]  # each conversation's messages arrive interleaved
        router = ManualRouting() if name == "manual" else QueueRouter(InProcessBus())
        spent = 0.0
        for start in range(0, len(stream), 50):
            batch = stream[start : start + 50]
            waiting = list({c.id: c for c in batch if c.assignee_id is None}.values())
            msgs = [Message(conversation_id=c.id, direction="in", sentiment=None, intent=None) for c in batch]
            started = time.perf_counter()
            if waiting:
                await router.route(waiting, msgs)
            spent += time.perf_counter() - started
        assigned = await Conversation.filter(inbox_id=inbox.id, assignee_id__isnull=False).count()
        results[name] = (spent, len(stream), assigned)
    await db.disconnect()
    manual, routed = results["manual"], results["round_robin"]
    added_ms = (routed[0] - manual[0]) / routed[1] * 1000
    summary.add("routing added per message", added_ms, "ms", 1.0)
    summary.add("routing per new conversation", routed[0] / max(routed[2], 1) * 1000, "ms")
    summary.note(f"{routed[2]:,} of {conversations:,} conversations assigned over {routed[1]:,} messages")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="10,000 conversations / 100,000 messages")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--postgres", default="", help="admin URL; a scratch database is created beside it")
    args = parser.parse_args()
    scale = 0.1 if args.quick else args.scale
    conversations = int(100_000 * scale)
    from inbox import db

    if args.postgres:
        import asyncpg

        admin = args.postgres.replace("postgres://", "postgresql://", 1)
        name = f"hopthu_bench_reports_{int(time.time())}"
        conn = await asyncpg.connect(admin)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        url = args.postgres.rsplit("/", 1)[0] + f"/{name}"
    else:
        tmp = tempfile.mkdtemp(prefix="hopthu-bench-reports-")
        url = f"sqlite://{tmp}/bench.db"
    summary = Summary(f"agent reports and routing ({'postgres' if args.postgres else 'sqlite'})")
    try:
        await db.connect(url)  # migrate
        await db.disconnect()
        started = time.perf_counter()
        filled = await fill(url, conversations, 10)
        summary.note(
            f"filled {conversations:,} conversations, {filled['messages']:,} messages, {filled['events']:,} events"
            f" in {time.perf_counter() - started:.0f} s"
        )
        await measure_reports(url, summary, 3 if args.quick else 5)
        await measure_routing(url, summary, 100 if args.quick else 1000)
    finally:
        summary.print()
        if args.postgres:
            conn = await asyncpg.connect(admin)
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
