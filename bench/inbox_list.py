"""The conversation list at size: 1,000,000 messages in 100,000 conversations (--scale shrinks both).

1. Migrate a fresh SQLite file through the CLI (`hopthu user add` for an admin and an agent, `hopthu inbox add`
   for three pages), then fill it FAST with raw `sqlite3` executemany in one transaction: contacts, identities,
   conversations, messages, conversation events, labels and the FTS5 rows (`message_fts` / `contact_fts`,
   rowid = id, text folded by `inbox.search.fold`). Datetimes are written exactly as tortoise writes them.
2. Start `hopthu serve` in its own process, log in through /api/auth/login, and time sequential GET
   /api/conversations requests with the bearer token: first page, page 5 via the cursor, status filter,
   assignee=unassigned, the agent's membership-filtered view, search with and without diacritics
   (target p99 ≤ 20 ms for pages, ≤ 100 ms for search).
3. Count the SQL statements each page costs (target ≤ 3) by running the same app in this process
   (aiohttp TestServer) with tortoise's SQLite client wrapped, counting only statements issued by the request.

    python bench/inbox_list.py [--scale 1.0] [--requests 200] [--quick] [--db PATH (reuse a filled file)]
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import random
import sqlite3
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import orjson

from bench.common import (
    PASSWORD,
    TEXTS,
    Summary,
    Workdir,
    add_facebook_inbox,
    cli,
    hopthu_env,
    latency_line,
    name_for,
    percentile,
    sqlite_connect,
    start_hopthu,
    timestamp,
)

TARGET_PAGE_P99_MS = 20.0
TARGET_SEARCH_P99_MS = 100.0
TARGET_QUERIES = 3
FULL_MESSAGES = 1_000_000
FULL_CONVERSATIONS = 100_000
ADMIN_EMAIL = "quan.tri@hoamai.vn"
AGENT_EMAIL = "nhan.vien@hoamai.vn"
INBOXES = (("Hoa Mai Hà Nội", "106000000000001"), ("Hoa Mai Đà Nẵng", "106000000000002"),
           ("Hoa Mai Sài Gòn", "106000000000003"))  # fmt: skip
SEARCH_WITH = "nồi chiên"
SEARCH_WITHOUT = "noi chien"

# Message texts: the fixed customer lines plus templates with slots, so search terms have realistic spread.
PRODUCTS = (
    "nồi chiên không dầu", "áo khoác gió", "váy hoa nhí", "giày thể thao", "túi xách da", "son môi lì",
    "kem chống nắng", "đồng hồ thông minh", "tai nghe bluetooth", "bình giữ nhiệt", "chảo chống dính",
    "quạt điều hòa", "máy xay sinh tố", "nệm cao su", "gối lụa", "bàn chải điện", "sữa rửa mặt",
    "nước hoa hồng", "ốp lưng điện thoại", "sạc dự phòng", "balo laptop", "mũ bảo hiểm", "kính râm",
    "dép quai hậu", "khăn choàng len", "bộ chăn ga", "đèn ngủ", "cây lau nhà", "ấm siêu tốc", "nồi cơm điện",
)  # fmt: skip
CITIES = (
    "Hà Nội", "Hải Phòng", "Đà Nẵng", "Huế", "Nha Trang", "Đà Lạt", "Cần Thơ", "Vũng Tàu", "Biên Hòa",
    "Quy Nhơn", "Vinh", "Thái Nguyên", "Buôn Ma Thuột", "Long Xuyên", "Rạch Giá", "Hạ Long",
)  # fmt: skip
TEMPLATES = (
    "Shop ơi {product} còn hàng không ạ?",
    "Cho mình hỏi {product} giá bao nhiêu, ship về {city} mất mấy ngày?",
    "Mình đã nhận {product} rồi, cảm ơn shop nhiều nha!",
    "{product} mình mua bị lỗi, shop đổi giúp mình được không?",
    "Dạ {product} bên em còn đủ màu, anh chị ở {city} giao 2-3 ngày ạ.",
    "Em gửi anh chị mã giảm giá cho {product} nhé, áp dụng đến cuối tháng.",
    "Đơn {product} của chị đã giao cho đơn vị vận chuyển đi {city} rồi ạ.",
)
AGENT_REPLIES = (
    "Dạ shop chào anh chị, anh chị cần tư vấn gì ạ?",
    "Dạ em kiểm tra rồi báo lại mình ngay nhé.",
    "Cảm ơn anh chị đã ủng hộ shop ạ!",
)
STATUSES = ("open",) * 10 + ("pending",) * 2 + ("snoozed",) + ("resolved",) * 7
LABELS = ("vip", "đơn hàng", "khiếu nại", "sỉ")


def _texts() -> tuple[list[str], list[str]]:
    """Customer texts and agent texts, with their folded forms computed once."""
    incoming = list(TEXTS) + [t.format(product=p, city=c) for t in TEMPLATES for p in PRODUCTS for c in CITIES[:4]]
    return incoming, list(AGENT_REPLIES)


# ------------------------------------------------------------------------------------------------- fill


def migrate_and_seed(env: dict[str, str], cwd: Path) -> dict[str, int]:
    """Through the CLI (which migrates): an admin, an agent, three Facebook inboxes."""
    admin = cli(env, cwd, "user", "add", "--email", ADMIN_EMAIL, "--password", PASSWORD, "--role", "admin",
                "--name", "Trần Quản Trị")  # fmt: skip
    agent = cli(env, cwd, "user", "add", "--email", AGENT_EMAIL, "--password", PASSWORD, "--role", "agent",
                "--name", "Lê Nhân Viên")  # fmt: skip
    inbox_ids = [add_facebook_inbox(env, cwd, name, page)["id"] for name, page in INBOXES]
    return {"admin": admin["id"], "agent": agent["id"], "inbox0": inbox_ids[0], "inboxes": len(inbox_ids)}


def fill(db_path: Path, conversations: int, messages: int, ids: dict[str, int], seed: int = 7) -> dict[str, int]:
    """Raw executemany into the migrated schema, one transaction, synchronous=OFF for the fill only."""
    from inbox.search import fold

    rng = random.Random(seed)
    incoming, outgoing = _texts()
    folded = {t: fold(t) for t in incoming + outgoing}
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -400000")
    conn.execute("PRAGMA temp_store = MEMORY")
    inbox_ids = [r[0] for r in conn.execute("SELECT id FROM inboxes ORDER BY id")]
    assignees = [ids["agent"]] * 3 + [ids["admin"]] * 2 + [None] * 5
    now = datetime.now(UTC)
    ninety_days = 90 * 86400
    stamp = timestamp
    counts: dict[str, int] = {}

    # Per conversation: its contact, its time span, its message count (total exactly `messages`).
    per_conv = [messages // conversations] * conversations
    for i in range(messages - sum(per_conv)):
        per_conv[i] += 1
    last_activity = [now - timedelta(seconds=rng.uniform(60, ninety_days)) for _ in range(conversations)]
    conn.execute("BEGIN")
    try:
        contact_rows, fts_contact_rows, identity_rows = [], [], []
        for i in range(1, conversations + 1):
            name = name_for(i * 7919)
            phone = f"09{rng.randrange(10**8):08d}" if i % 3 == 0 else None
            first = stamp(last_activity[i - 1] - timedelta(days=rng.uniform(0, 30)))
            search = fold(" ".join(filter(None, [name, phone])))
            contact_rows.append((i, name, None, phone, None, search, first, stamp(last_activity[i - 1]), first, first))
            fts_contact_rows.append((i, search))
            inbox_id = inbox_ids[i % len(inbox_ids)]
            identity_rows.append((i, "facebook", f"{7_100_000_000_000_000 + i}", name, None, first, first, i, inbox_id))
        conn.executemany(
            "INSERT INTO contacts (id, name, picture_url, phone, email, search_text, first_seen_at, last_seen_at, "
            "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            contact_rows,
        )
        conn.executemany("INSERT INTO contact_fts (rowid, search_text) VALUES (?, ?)", fts_contact_rows)
        conn.executemany(
            "INSERT INTO contact_identities (id, channel, external_id, name, picture_url, profile_fetched_at, "
            "created_at, contact_id, inbox_id) VALUES (?,?,?,?,?,?,?,?,?)",
            identity_rows,
        )
        counts["contacts"] = conversations
        del contact_rows, fts_contact_rows, identity_rows

        conv_rows, label_rows = [], []
        message_rows: list[tuple] = []
        fts_rows: list[tuple[int, str]] = []
        event_rows: list[tuple] = []
        msg_id = 0
        for i in range(1, conversations + 1):
            inbox_id = inbox_ids[i % len(inbox_ids)]
            last = last_activity[i - 1]
            n = per_conv[i - 1]
            # Messages of this conversation, oldest first, ending at `last`.
            gaps = [rng.uniform(30, 3600) for _ in range(n)]
            t = last - timedelta(seconds=sum(gaps))
            created = t - timedelta(seconds=rng.uniform(1, 60))
            event_rows.append((i, inbox_id, "opened", "contact", i, None, "{}", stamp(created), stamp(created)))
            last_text = last_in = ""
            for k in range(n):
                t += timedelta(seconds=gaps[k])
                msg_id += 1
                incoming_msg = k % 3 != 2
                text = rng.choice(incoming) if incoming_msg else rng.choice(outgoing)
                at = stamp(t)
                if incoming_msg:
                    last_in = at
                message_rows.append(
                    (msg_id, inbox_id, "in" if incoming_msg else "out", "contact" if incoming_msg else "agent",
                     "platform" if incoming_msg else "hopthu", text, "[]", 0, at, at, f"m_seed_{msg_id:09d}",
                     None if incoming_msg else "read", None, "{}", None, None, None, None, "[]", folded[text], i,
                     None if incoming_msg else ids["agent"])
                )  # fmt: skip
                fts_rows.append((msg_id, folded[text]))
                event_rows.append(
                    (i, inbox_id, "message_in" if incoming_msg else "message_out",
                     "contact" if incoming_msg else "agent", i if incoming_msg else ids["agent"], msg_id, "{}", at, at)
                )  # fmt: skip
                last_text = text
            status = rng.choice(STATUSES)
            snoozed = stamp(now + timedelta(days=rng.uniform(1, 5))) if status == "snoozed" else None
            labels = [rng.choice(LABELS)] if rng.random() < 0.1 else []
            for label in labels:
                label_rows.append((label, i))
            labels_json = orjson.dumps(labels).decode()
            conv_rows.append(
                (i, "facebook", "dm", status, snoozed, labels_json, stamp(last), last_text[:200],
                 last_in or None, stamp(last), 0 if status == "resolved" else rng.randrange(0, 4),
                 None, None, stamp(created), rng.choice(assignees), i, i, inbox_id, None)
            )  # fmt: skip
            if len(message_rows) >= 100_000:
                _flush(conn, conv_rows, message_rows, fts_rows, event_rows, label_rows)
        _flush(conn, conv_rows, message_rows, fts_rows, event_rows, label_rows)
        conn.execute(
            "INSERT INTO inbox_members (inbox_id, user_id) VALUES (?, ?)", (ids["inbox0"], ids["agent"])
        )  # the agent reads one of the three pages
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("ANALYZE")  # what a long-running production database would have gathered (PRAGMA optimize)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    counts["conversations"], counts["messages"] = conversations, messages
    return counts


def _flush(conn: sqlite3.Connection, conv_rows, message_rows, fts_rows, event_rows, label_rows) -> None:
    conn.executemany(
        "INSERT INTO conversations (id, channel, thread_key, status, snoozed_until, labels, last_message_at, "
        "last_message_preview, last_incoming_at, last_activity_at, unread_count, sentiment, intent, created_at, "
        "assignee_id, contact_id, identity_id, inbox_id, team_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        conv_rows,
    )
    conn.executemany(
        "INSERT INTO messages (id, inbox_id, direction, sender_type, origin, text, attachments, private, created_at, "
        "recorded_at, external_id, delivery_status, failure_reason, extra, sentiment, sentiment_score, intent, "
        "intent_confidence, entities, search_text, conversation_id, sender_user_id) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        message_rows,
    )
    conn.executemany("INSERT INTO message_fts (rowid, search_text) VALUES (?, ?)", fts_rows)
    conn.executemany(
        "INSERT INTO conversation_events (conversation_id, inbox_id, kind, actor_type, actor_id, message_id, data, "
        "occurred_at, recorded_at) VALUES (?,?,?,?,?,?,?,?,?)",
        event_rows,
    )
    conn.executemany("INSERT INTO conversation_labels (label, conversation_id) VALUES (?, ?)", label_rows)
    for rows in (conv_rows, message_rows, fts_rows, event_rows, label_rows):
        rows.clear()


def existing_fill(db_path: Path) -> dict[str, int] | None:
    try:
        with sqlite_connect(db_path) as conn:
            conversations = conn.execute("SELECT COUNT(*) FROM conversations").fetchone()[0]
            messages = conn.execute("SELECT MAX(id) FROM messages").fetchone()[0] or 0
            users = dict(conn.execute("SELECT email, id FROM users").fetchall())
            inbox0 = conn.execute("SELECT MIN(id) FROM inboxes").fetchone()[0]
    except sqlite3.Error:
        return None
    if not conversations or ADMIN_EMAIL not in users:
        return None
    return {"conversations": conversations, "messages": messages, "admin": users[ADMIN_EMAIL],
            "agent": users[AGENT_EMAIL], "inbox0": inbox0}  # fmt: skip


# ------------------------------------------------------------------------------------------------- timing

SEARCH_NAME = "Nguyễn Thị Lan"
SEARCH_COMMON = "shop"
SEARCH_NONE = "mũ lưỡi trai"


@dataclass(frozen=True)
class Scenario:
    label: str
    who: str  # admin | agent
    params: dict
    search: bool = False
    extra: bool = False  # beyond the list: the worst cases of search, fewer requests


SCENARIOS = (
    Scenario("first page", "admin", {}),
    Scenario("page 5 via cursor", "admin", {"__page__": 5}),
    Scenario("status=open", "admin", {"status": "open"}),
    Scenario("status=pending", "admin", {"status": "pending"}),
    Scenario("assignee=unassigned", "admin", {"assignee": "unassigned"}),
    Scenario("agent view (membership)", "agent", {}),
    Scenario(f"q={SEARCH_WITH} (diacritics)", "admin", {"q": SEARCH_WITH}, search=True),
    Scenario(f"q={SEARCH_WITHOUT} (no diacritics)", "admin", {"q": SEARCH_WITHOUT}, search=True),
    Scenario(f"agent view + q={SEARCH_WITHOUT}", "agent", {"q": SEARCH_WITHOUT}, search=True),
    Scenario(f"extra: q={SEARCH_NAME} (contact name)", "admin", {"q": SEARCH_NAME}, search=True, extra=True),
    Scenario(f"extra: q={SEARCH_COMMON} (very common word)", "admin", {"q": SEARCH_COMMON}, search=True, extra=True),
    Scenario(f"extra: q={SEARCH_NONE} (no match)", "admin", {"q": SEARCH_NONE}, search=True, extra=True),
)


async def login(session: aiohttp.ClientSession, base: str, email: str) -> str:
    async with session.post(base + "/api/auth/login", json={"email": email, "password": PASSWORD}) as response:
        body = await response.json()
        if response.status != 200:
            raise RuntimeError(f"login {email} failed: {response.status} {body}")
        return body["token"]


async def resolve_params(session: aiohttp.ClientSession, base: str, token: str, params: dict) -> dict:
    """Turn {"__page__": n} into the cursor of page n (following next_cursor from the first page)."""
    params = dict(params)
    page = params.pop("__page__", None)
    if page:
        cursor = None
        for _ in range(page - 1):
            query = {**params, **({"cursor": cursor} if cursor else {})}
            body = await get_page(session, base, token, query)
            cursor = body["next_cursor"]
            if cursor is None:
                break
        if cursor:
            params["cursor"] = cursor
    return params


async def get_page(session: aiohttp.ClientSession, base: str, token: str, params: dict) -> dict:
    url = base + "/api/conversations" + ("?" + urlencode(params) if params else "")
    async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
        body = await response.json()
        if response.status != 200:
            raise RuntimeError(f"GET {url}: {response.status} {body}")
        return body


async def time_scenarios(base: str, requests: int) -> tuple[dict[str, list[float]], dict[str, dict]]:
    latencies: dict[str, list[float]] = {}
    samples: dict[str, dict] = {}
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        tokens = {"admin": await login(session, base, ADMIN_EMAIL), "agent": await login(session, base, AGENT_EMAIL)}
        for scenario in SCENARIOS:
            label, who = scenario.label, scenario.who
            query = await resolve_params(session, base, tokens[who], scenario.params)
            for _ in range(5):  # warm the page cache and the connection
                samples[label] = await get_page(session, base, tokens[who], query)
            values = []
            for _ in range(max(10, requests // 4) if scenario.extra else requests):
                t0 = time.perf_counter()
                await get_page(session, base, tokens[who], query)
                values.append((time.perf_counter() - t0) * 1000)
            latencies[label] = values
            n = len(samples[label]["items"])
            print(f"  {label:<44} {latency_line('latency', values)}; {n} items")
    return latencies, samples


# ------------------------------------------------------------------------------------------------- counting

_STATEMENTS: contextvars.ContextVar[list[tuple[str, list]] | None] = contextvars.ContextVar(
    "bench_statements", default=None
)


def _wrap_tortoise_sqlite() -> None:
    from tortoise.backends.sqlite import client as sqlite_client

    for cls in (sqlite_client.SqliteClient, sqlite_client.SqliteTransactionWrapper):
        for name in ("execute_query", "execute_query_dict", "execute_insert", "execute_many", "execute_script"):
            original = cls.__dict__.get(name)
            if original is None or getattr(original, "_bench_wrapped", False):
                continue

            def make(fn):
                async def wrapper(self, query, *args, **kwargs):
                    statements = _STATEMENTS.get()
                    if statements is not None:
                        statements.append((query, list(args[0]) if args and args[0] is not None else []))
                    return await fn(self, query, *args, **kwargs)

                wrapper._bench_wrapped = True  # type: ignore[attr-defined]
                return wrapper

            setattr(cls, name, make(original))


async def count_queries(db_path: Path, env: dict[str, str]) -> tuple[dict[str, int], dict[str, list[tuple[str, list]]]]:
    """The app in this process; a middleware gives each request its own statement list."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    from inbox.app import create_app
    from inbox.config import load_settings

    _wrap_tortoise_sqlite()
    settings = load_settings(environ=env, profile_fetch=False)
    app = create_app(settings)
    collected: dict[str, list[tuple[str, list]]] = {}

    @web.middleware
    async def collect(request: web.Request, handler):
        statements: list[tuple[str, list]] = []
        token = _STATEMENTS.set(statements)
        try:
            return await handler(request)
        finally:
            _STATEMENTS.reset(token)
            collected[request.headers.get("X-Bench-Label", "")] = statements

    app.middlewares.insert(0, collect)
    counts: dict[str, int] = {}
    server = TestServer(app)
    await server.start_server()
    try:
        base = str(server.make_url("")).rstrip("/")
        async with aiohttp.ClientSession() as session:
            tokens = {
                "admin": await login(session, base, ADMIN_EMAIL),
                "agent": await login(session, base, AGENT_EMAIL),
            }
            for scenario in SCENARIOS:
                label, who = scenario.label, scenario.who
                query = await resolve_params(session, base, tokens[who], scenario.params)
                url = base + "/api/conversations" + ("?" + urlencode(query) if query else "")
                headers = {"Authorization": f"Bearer {tokens[who]}", "X-Bench-Label": label}
                async with session.get(url, headers=headers) as response:
                    await response.read()
                counts[label] = len(collected.get(label, []))
    finally:
        await server.close()
    return counts, collected


def print_plans(db_path: Path, statements: dict[str, list[tuple[str, list]]]) -> None:
    """Every statement counted, and SQLite's plan for the list query."""
    with sqlite_connect(db_path) as conn:
        for label, sqls in statements.items():
            print(f"  -- {label}")
            for query, values in sqls:
                print(f"     {query[:400]}  {values!r:.200}")
                if "FROM conversations c" in query:
                    for row in conn.execute("EXPLAIN QUERY PLAN " + query, values or []):
                        print(f"        plan: {row[3]}")


# ------------------------------------------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> Summary:
    summary = Summary(f"bench/inbox_list.py — conversation list (scale {args.scale:g})")
    conversations = max(10, int(FULL_CONVERSATIONS * args.scale))
    messages = max(conversations, int(FULL_MESSAGES * args.scale))
    work = Workdir(keep=args.keep)
    db_path = Path(args.db).resolve() if args.db else work.path / "list.db"
    env = hopthu_env(db_path, work.path, "http://127.0.0.1:9")  # no profile fetches happen here
    try:
        filled = existing_fill(db_path) if db_path.exists() else None
        if filled and filled["conversations"] == conversations and filled["messages"] == messages:
            print(f"reusing {db_path}: {conversations:,} conversations, {messages:,} messages")
            fill_seconds = None
        else:
            if db_path.exists():
                raise SystemExit(f"{db_path} exists with another fill; remove it or pick another --db")
            t0 = time.perf_counter()
            ids = migrate_and_seed(env, work.path)
            t1 = time.perf_counter()
            counts = fill(db_path, conversations, messages, ids)
            fill_seconds = time.perf_counter() - t1
            size = db_path.stat().st_size / 2**20
            print(
                f"migrated + seeded through the CLI in {t1 - t0:.1f} s; filled {counts['conversations']:,} "
                f"conversations / {counts['messages']:,} messages (+ events, FTS rows) in {fill_seconds:.1f} s; "
                f"{size:,.0f} MiB"
            )
        server = await start_hopthu(env, work.path)
        try:
            print(f"timing {args.requests} sequential requests per scenario against {server.url} (hopthu serve):")
            latencies, samples = await time_scenarios(server.url, args.requests)
        finally:
            server.stop()
        with_ids = [c["id"] for c in samples[SCENARIOS[6].label]["items"]]
        without_ids = [c["id"] for c in samples[SCENARIOS[7].label]["items"]]
        same = with_ids == without_ids and bool(with_ids)
        print(f"search '{SEARCH_WITH}' and '{SEARCH_WITHOUT}' return the same {len(with_ids)} conversations: {same}")
        counts, statements = await count_queries(db_path, env)
        print("SQL statements per request (in-process app, same database):")
        for label, n in counts.items():
            print(f"  {label:<44} {n}")
        if args.verbose:
            print_plans(db_path, statements)
    finally:
        work.cleanup()

    for scenario in SCENARIOS:
        values = latencies[scenario.label]
        target = TARGET_SEARCH_P99_MS if scenario.search else TARGET_PAGE_P99_MS
        summary.add(f"{scenario.label} p50", percentile(values, 50), "ms")
        summary.add(f"{scenario.label} p99", percentile(values, 99), "ms", target)
    summary.add("SQL statements per page (max of scenarios)", max(counts.values()), "", TARGET_QUERIES)
    summary.add("search: same results with/without diacritics", 1.0 if same else 0.0, "", 1.0, higher=True)
    if fill_seconds is not None:
        summary.add("database fill (raw executemany)", fill_seconds, "s")
    summary.note(
        f"{conversations:,} conversations, {messages:,} messages; {args.requests} sequential requests per scenario "
        f"({max(10, args.requests // 4)} for the extra search cases)"
    )
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of 1M messages / 100k conversations")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per scenario (default 200)")
    parser.add_argument("--quick", action="store_true", help="scale 0.02 and 40 requests per scenario")
    parser.add_argument("--db", help="fill this file once and reuse it on later runs with the same scale")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--verbose", action="store_true", help="print every SQL statement counted")
    args = parser.parse_args()
    if args.quick:
        args.scale, args.requests = min(args.scale, 0.02), min(args.requests, 40)
    summary = asyncio.run(run(args))
    summary.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
