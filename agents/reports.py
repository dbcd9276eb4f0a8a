"""Reports: the projection of `conversation_events` into `metric_facts`, and pure aggregations over the facts.

Projection: new events (by id, past a cursor) name the conversations that changed; each of those is replayed by
`agents.metrics.derive` and its facts replaced: from where its last replay stopped when the kept state can vouch for
the new events (agents/replay.py), else in full, so late or out-of-order events land correctly and the table can be
rebuilt from nothing (`rebuild`). A short overlap behind the cursor catches events whose ids were
taken by a transaction that committed after a later one (Postgres).

Aggregation: counts and means in one GROUP BY; medians and p90 are *nearest-rank* (the value at rank ⌈p·n⌉), so
every figure is the number of a real conversation that the drill-down lists. Per-agent durations use `held` (the
part of the wait that agent held); per team/inbox/channel/day they use `value` (the customer's whole wait).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from agents import business_hours, digests
from agents.metrics import DURATION_KINDS, Fact, State, derive, rows_to_events
from agents.replay import Replayed, Stops, go_on
from inbox import db
from inbox.sql import Sql, as_datetime, as_json, insert_rows

CURSOR = "metric_facts"
OVERLAP = 200
GROUPS = {"agent": "agent_id", "team": "team_id", "inbox": "inbox_id", "channel": "channel", "day": "day"}
FACT_COLUMNS = (
    "conversation_id", "inbox_id", "team_id", "agent_id", "channel", "kind", "value", "held", "value_bh", "held_bh",
    "at", "day", "start_event_id", "end_event_id",
)  # fmt: skip
METRICS = {  # public metric names → fact kinds
    "first_response_time": "first_response",
    "reply_time": "reply",
    "resolution_time": "resolution",
    "messages_sent": "message",
    "reassignments": "reassigned",
    "sla_breaches": "sla_breach",
    "csat": "csat",
    "conversations_handled": "handled",
    "bot_resolutions": "bot_resolution",
}


# ---------------------------------------------------------------------------------------------- projection


STOPS = Stops()  # where each conversation's replay stopped, in this process (agents/replay.py)
CONVERSATIONS_PER_STEP = 50  # conversations replayed per transaction, at most …
EVENTS_PER_STEP = 1_000  # … and about this many of their events (a long conversation gets a step of its own)


async def project(max_events: int = 5000) -> int:
    """Bring `metric_facts` up to date with up to `max_events` new events; returns the conversations replayed.

    Each conversation those events name is replayed once, however many of them it has, in transactions of at most
    `CONVERSATIONS_PER_STEP` conversations and about `EVENTS_PER_STEP` events: on SQLite a transaction holds the
    only connection, and webhooks waiting for their commit must not wait behind a replay of hundreds of
    conversations, or of a few very long ones (a step of 50 conversations of 80 events each held it for 10–56 ms
    at 1,000 webhooks/s in `bench/ingest.py`, the ack p99's tail). Each step reads the events under
    the projector's lock, so it sees everything committed before it; replaying is idempotent, so a step repeated
    (after a crash, or by another process) changes nothing. The cursor moves once every step is done."""
    conn = db.connection()
    dialect = conn.capabilities.dialect
    read = Sql(dialect)
    cursor = await conn.execute_query_dict(
        f"SELECT position FROM projection_cursors WHERE name = {read.p(CURSOR)}", read.params
    )
    position = cursor[0]["position"] if cursor else 0
    # SQLite has one writer, so ids are committed in order; Postgres may commit a lower id after a higher one.
    overlap = 0 if dialect == "sqlite" else OVERLAP
    new = Sql(dialect)
    rows = await conn.execute_query_dict(
        f"SELECT id, conversation_id FROM conversation_events WHERE id > {new.p(max(0, position - overlap))}"
        f" ORDER BY id LIMIT {int(max_events)}",
        new.params,
    )
    if not rows or rows[-1]["id"] <= position:
        return 0
    conv_ids = sorted({r["conversation_id"] for r in rows})
    for step_ids in await _steps(conn, conv_ids):
        async with in_transaction() as step:
            await _lock(step)  # one projector at a time, across processes
            replayed = await replace_facts(step, step_ids)
        STOPS.keep(replayed)
    async with in_transaction() as step:
        await _lock(step)
        done, last = Sql(dialect), rows[-1]["id"]
        await step.execute_query(
            f"UPDATE projection_cursors SET position = {done.p(last)} WHERE name = {done.p(CURSOR)}"
            f" AND position < {done.p(last)}",
            done.params,
        )
    return len(conv_ids)


async def _steps(conn: Any, conv_ids: list[int]) -> list[list[int]]:
    """`conv_ids` cut into steps of at most `CONVERSATIONS_PER_STEP` conversations and about `EVENTS_PER_STEP`
    events to replay, by each conversation's count of events (one indexed read, outside any transaction) less
    those its kept state replayed already."""
    sizes: dict[int, int] = {}
    for start in range(0, len(conv_ids), 500):
        sql = Sql(conn.capabilities.dialect)
        ids = sql.marks(conv_ids[start : start + 500])
        for row in await conn.execute_query_dict(
            f"SELECT conversation_id, COUNT(*) AS n FROM conversation_events WHERE conversation_id IN ({ids})"
            " GROUP BY conversation_id",
            sql.params,
        ):
            sizes[row["conversation_id"]] = row["n"]
    steps: list[list[int]] = []
    current: list[int] = []
    events = 0
    for conv_id in conv_ids:
        size = max(0, sizes.get(conv_id, 0) - STOPS.replayed_events(conv_id))  # a kept state: only the new ones
        if current and (len(current) >= CONVERSATIONS_PER_STEP or events + size > EVENTS_PER_STEP):
            steps.append(current)
            current, events = [], 0
        current.append(conv_id)
        events += size
    if current:
        steps.append(current)
    return steps


async def project_all() -> int:
    total = 0
    while True:
        done = await project()
        if not done:
            return total
        total += done


async def forget_facts(conn: Any, conv_ids: list[int]) -> None:
    """Deleted conversations' report figures go with them, as a rebuild from the (now deleted) events would have
    it: the facts, and the day digests they were summed into are marked to be summed again."""
    sql = Sql(conn.capabilities.dialect)
    where = f"conversation_id IN ({sql.marks(conv_ids)})"
    days = await conn.execute_query_dict(f"SELECT DISTINCT at FROM metric_facts WHERE {where}", sql.params)
    await digests.mark_stale(conn, {digests.bucket_of(as_datetime(row["at"])) for row in days})
    await conn.execute_query(f"DELETE FROM metric_facts WHERE {where}", sql.params)


async def rebuild() -> int:
    """Forget every fact and replay every event."""
    STOPS.forget()
    async with in_transaction() as conn:
        await conn.execute_query("DELETE FROM metric_facts")
        await conn.execute_query("DELETE FROM metric_digests")
        await conn.execute_query("DELETE FROM projection_cursors WHERE name = 'metric_facts' OR name LIKE 'digest:%'")
    return await project_all()


async def replace_facts(conn: Any, conv_ids: list[int]) -> list[Replayed]:
    """Replace the facts of `conv_ids`: from where the last replay stopped when it can vouch for the new events
    (agents/replay.py), else from each conversation's first event. Returns what to keep once committed."""
    sql = Sql(conn.capabilities.dialect)
    ids = sql.marks(conv_ids)
    convs = await conn.execute_query_dict(
        f"SELECT c.id, c.inbox_id, c.channel, i.settings FROM conversations c JOIN inboxes i ON i.id = c.inbox_id"
        f" WHERE c.id IN ({ids})",
        sql.params,
    )
    hours_cache: dict[int, business_hours.Hours] = {}
    hours_of: dict[int, business_hours.Hours] = {}
    for conv in convs:
        hours = hours_cache.get(conv["inbox_id"])
        if hours is None:
            hours = hours_cache[conv["inbox_id"]] = business_hours.from_settings(as_json(conv["settings"]))
        hours_of[conv["id"]] = hours
    stops = {cid: stop for cid, hours in hours_of.items() if (stop := STOPS.get(cid, hours)) is not None}
    replayed: list[Replayed] = []
    facts: dict[int, list[Fact]] = {}
    going_on: dict[int, int] = {}  # conversation → the last event id replayed before (its later facts go)
    up_to_date: set[int] = set()  # nothing new since the last replay
    new_events, totals = await _events_after(conn, stops) if stops else ({}, {})
    for cid, stop in stops.items():
        new = new_events.get(cid, [])
        state = go_on(stop, new, totals.get(cid, 0))
        if state is None:
            continue  # the kept state cannot vouch for the new events: replayed in full below
        if not new:
            up_to_date.add(cid)
            continue
        going_on[cid] = stop.last_id
        facts[cid] = state.facts
        replayed.append(Replayed(cid, state, stop.hours, new, stop))
    whole = [cid for cid in conv_ids if cid not in going_on and cid not in up_to_date]
    if whole:
        events_sql = Sql(sql.dialect)
        ids = events_sql.marks(whole)
        rows = await conn.execute_query_dict(
            "SELECT id, conversation_id, kind, actor_type, actor_id, occurred_at, data FROM conversation_events"
            f" WHERE conversation_id IN ({ids}) ORDER BY conversation_id, id",
            events_sql.params,
        )
        by_conv = _events_by_conversation(rows)
        for cid in whole:
            events = rows_to_events(by_conv.get(cid, []))
            hours = hours_of.get(cid)
            if hours is None:  # the conversation is gone: its facts go with it
                replayed.append(Replayed(cid, State(), business_hours.BusinessHours(), [], None))
                continue
            state = derive(events, hours)
            facts[cid] = state.facts
            replayed.append(Replayed(cid, state, hours, events, None))
    if not whole and not going_on:
        return replayed
    by_id = {conv["id"]: conv for conv in convs}
    values = [_fact_row(by_id[cid], fact, hours_of[cid]) for cid, conv_facts in facts.items() for fact in conv_facts]
    where = Sql(sql.dialect)
    replaced = _replaced(where, whole, going_on)
    old = await conn.execute_query_dict(f"SELECT DISTINCT at FROM metric_facts WHERE {replaced}", where.params)
    touched = {digests.bucket_of(as_datetime(r["at"])) for r in old} | {digests.bucket_of(v[10]) for v in values}
    await digests.mark_stale(conn, touched)
    delete = Sql(sql.dialect)
    await conn.execute_query(f"DELETE FROM metric_facts WHERE {_replaced(delete, whole, going_on)}", delete.params)
    per_statement = 30_000 // len(FACT_COLUMNS)
    for start in range(0, len(values), per_statement):
        await conn.execute_query(
            *insert_rows(sql.dialect, "metric_facts", FACT_COLUMNS, values[start : start + per_statement])
        )
    return replayed


def _replaced(sql: Sql, whole: list[int], going_on: dict[int, int]) -> str:
    """The facts a step replaces: all of the conversations replayed whole, and those made by the new events of
    the others (`end_event_id` is the event each fact came from)."""
    parts = [f"conversation_id IN ({sql.marks(whole)})"] if whole else []
    parts += [f"(conversation_id = {sql.p(cid)} AND end_event_id > {sql.p(last)})" for cid, last in going_on.items()]
    return " OR ".join(parts)


def _events_by_conversation(rows: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    by_conv: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        row["occurred_at"] = as_datetime(row["occurred_at"])
        row["data"] = as_json(row["data"])
        by_conv.setdefault(row["conversation_id"], []).append(row)
    return by_conv


async def _events_after(conn: Any, stops: dict) -> tuple[dict[int, list], dict[int, int]]:
    """The events of `stops`' conversations after where each replay stopped, and each conversation's event count,
    in one statement (one snapshot on Postgres: a count read apart could miss an event that the rows include)."""
    sql = Sql(conn.capabilities.dialect)
    first = min(stop.last_id for stop in stops.values())
    rows = await conn.execute_query_dict(
        "SELECT id, conversation_id, kind, actor_type, actor_id, occurred_at, data, CAST(NULL AS BIGINT) AS n"
        f" FROM conversation_events WHERE conversation_id IN ({sql.marks(list(stops))}) AND id > {sql.p(first)}"
        " UNION ALL SELECT NULL, conversation_id, NULL, NULL, NULL, NULL, NULL, COUNT(*) FROM conversation_events"
        f" WHERE conversation_id IN ({sql.marks(list(stops))}) GROUP BY conversation_id",
        sql.params,
    )
    totals = {r["conversation_id"]: int(r["n"]) for r in rows if r["id"] is None}
    events = [r for r in rows if r["id"] is not None and r["id"] > stops[r["conversation_id"]].last_id]
    by_conv = _events_by_conversation(events)  # in any order: `go_on` sorts them
    return {cid: rows_to_events(conv_rows) for cid, conv_rows in by_conv.items()}, totals


def _fact_row(conv: dict[str, Any], fact: Fact, hours: business_hours.Hours) -> tuple:
    return (
        conv["id"],
        conv["inbox_id"],
        fact.team_id,
        fact.agent_id,
        conv["channel"],
        fact.kind,
        fact.value,
        fact.held,
        fact.value_bh,
        fact.held_bh,
        fact.at,
        hours.local_day(fact.at),
        fact.start_event_id,
        fact.end_event_id,
    )


# ---------------------------------------------------------------------------------------------- aggregation


def _column(kind_is_duration: bool, group: str, bh: bool) -> str:
    if not kind_is_duration:
        return "value"
    base = "held" if group == "agent" else "value"
    return f"{base}_bh" if bh else base


def _where(sql: Sql, start: datetime | None, end: datetime | None, filters: dict[str, Any]) -> str:
    parts = ["1 = 1"]
    if start is not None:
        parts.append(f"at >= {sql.p(start)}")
    if end is not None:
        parts.append(f"at < {sql.p(end)}")
    for name in ("agent_id", "team_id", "inbox_id", "channel"):
        value = filters.get(name)
        if value is not None:
            parts.append(f"{name} = {sql.p(value)}")
    return " AND ".join(parts)


async def aggregate(
    start: datetime, end: datetime, *, group: str = "agent", business: bool = False, filters: dict | None = None
) -> dict[Any, dict[str, Any]]:
    """Every figure per group key: counts, means, nearest-rank median and p90, handled, CSAT.

    Whole UTC days come from the daily digests (rebuilt first if stale), the partial days at the edges from the
    facts; both merge into the same figures.
    """
    if group not in GROUPS:
        raise ValueError(f"group must be one of {', '.join(GROUPS)}")
    filters = filters or {}
    dim = GROUPS[group]
    fact_measure = _column(True, group, business)
    digest_measure = {"value": "vals", "held": "held", "value_bh": "vals_bh", "held_bh": "held_bh"}[fact_measure]
    acc = digests.Accumulator(dim, digest_measure)
    durations = ", ".join(f"'{k}'" for k in DURATION_KINDS)
    conn = db.connection()
    days = digests.full_buckets(start, end)
    edges = [(start, end)]
    if days:
        await _refresh_digests(days)
        first, after = digests.bucket_start(days[0]), digests.bucket_start(days[-1]) + timedelta(days=1)
        edges = [(start, first), (after, end)]
        sql = Sql(conn.capabilities.dialect)
        where = _where(sql, None, None, filters)
        rows = await conn.execute_query_dict(
            # Only what each kind needs crosses the wire: values of durations, ratings, conversations handled.
            f"SELECT {', '.join(digests.KEY_COLUMNS)}, n,"
            f" CASE WHEN kind IN ({durations}) THEN {digest_measure} END AS m,"
            " CASE WHEN kind = 'csat' THEN vals END AS csat,"
            " CASE WHEN kind IN ('message', 'resolution') THEN convs END AS convs"
            f" FROM metric_digests WHERE bucket >= {sql.p(days[0])} AND bucket <= {sql.p(days[-1])} AND {where}",
            sql.params,
        )
        for row in rows:
            acc.add_digest(row)
    for lo, hi in edges:
        if hi <= lo:
            continue
        sql = Sql(conn.capabilities.dialect)
        where = _where(sql, lo, hi, filters)
        for row in await conn.execute_query_dict(
            f"SELECT {', '.join(digests.KEY_COLUMNS)}, {fact_measure} AS m, value, conversation_id"
            f" FROM metric_facts WHERE {where}",
            sql.params,
        ):
            acc.add_fact(row)
    return _figures(acc)


async def _refresh_digests(days: list[str]) -> None:
    async with in_transaction() as conn:
        await _lock(conn)
        await digests.refresh(conn, days)


async def _lock(conn: Any) -> None:
    sql = Sql(conn.capabilities.dialect)
    await conn.execute_query(
        sql.insert("projection_cursors", {"name": CURSOR, "position": 0, "updated_at": datetime.now(UTC)},
                   on_conflict="(name) DO NOTHING"),
        sql.params,
    )  # fmt: skip
    lock = Sql(sql.dialect)
    await conn.execute_query(
        f"UPDATE projection_cursors SET updated_at = {lock.p(datetime.now(UTC))} WHERE name = {lock.p(CURSOR)}",
        lock.params,
    )


_COUNTED = {"message": "messages_sent", "reassigned": "reassignments", "sla_breach": "sla_breaches",
            "bot_resolution": "bot_resolutions"}  # fmt: skip


def _figures(acc: digests.Accumulator) -> dict[Any, dict[str, Any]]:
    result: dict[Any, dict[str, Any]] = {}
    for key in set(acc.count) | set(acc.handled):
        entry = result[key] = _empty()
        for kind, n in acc.count[key].items():
            if kind in _COUNTED:
                entry[_COUNTED[kind]] = n
        for kind in DURATION_KINDS:
            values = sorted(acc.values[key].get(kind, []))
            if values:
                entry[_name(kind)] = {
                    "count": len(values),
                    "median": round(digests.nearest_rank(values, 0.5), 3),
                    "p90": round(digests.nearest_rank(values, 0.9), 3),
                    "mean": round(sum(values) / len(values), 3),
                }
        ratings = acc.values[key].get("csat", [])
        if ratings:
            entry["csat"] = {
                "count": len(ratings),
                "mean": round(sum(ratings) / len(ratings), 3),
                "satisfied_share": round(sum(1 for r in ratings if r >= 4) / len(ratings), 4),
            }
        entry["conversations_handled"] = len(acc.handled.get(key, ()))
    return result


def _name(kind: str) -> str:
    return {"first_response": "first_response_time", "reply": "reply_time", "resolution": "resolution_time"}[kind]


def _empty() -> dict[str, Any]:
    timing = {"count": 0, "median": None, "p90": None, "mean": None}
    return {
        "conversations_handled": 0,
        "messages_sent": 0,
        "reassignments": 0,
        "sla_breaches": 0,
        "bot_resolutions": 0,
        "first_response_time": dict(timing),
        "reply_time": dict(timing),
        "resolution_time": dict(timing),
        "csat": {"count": 0, "mean": None, "satisfied_share": None},
    }


async def drilldown(
    metric: str,
    start: datetime,
    end: datetime,
    *,
    group: str = "agent",
    key: Any = None,
    business: bool = False,
    filters: dict | None = None,
    limit: int = 100,
    after_id: int = 0,
) -> list[dict[str, Any]]:
    """The facts behind one figure: which conversation, how long, and the events that produced the number."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}")
    if group not in GROUPS:
        raise ValueError(f"group must be one of {', '.join(GROUPS)}")
    kind = METRICS[metric]
    conn = db.connection()
    sql = Sql(conn.capabilities.dialect)
    filters = dict(filters or {})
    where = _where(sql, start, end, filters)
    dim = GROUPS[group]
    kinds = "('message', 'resolution')" if kind == "handled" else f"({sql.p(kind)})"
    where += f" AND kind IN {kinds}"
    if key is None:
        where += f" AND {dim} IS NULL"
    else:
        where += f" AND {dim} = {sql.p(key)}"
    where += f" AND id > {sql.p(after_id)}"
    column = _column(kind in DURATION_KINDS, group, business)
    rows = await conn.execute_query_dict(
        f"SELECT id, conversation_id, inbox_id, team_id, agent_id, channel, kind, {column} AS v, value, at, day,"
        f" start_event_id, end_event_id FROM metric_facts WHERE {where} ORDER BY id LIMIT {int(limit)}",
        sql.params,
    )
    return [
        {
            "fact_id": r["id"],
            "conversation_id": r["conversation_id"],
            "inbox_id": r["inbox_id"],
            "team_id": r["team_id"],
            "agent_id": r["agent_id"],
            "channel": r["channel"],
            "kind": r["kind"],
            "seconds" if kind in DURATION_KINDS else "value": r["v"],
            "customer_wait_seconds": r["value"] if kind in ("first_response", "reply") else None,
            "at": _iso(as_datetime(r["at"])),
            "day": r["day"],
            "start_event_id": r["start_event_id"],
            "end_event_id": r["end_event_id"],
        }
        for r in rows
    ]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


CSV_COLUMNS = (
    ("conversations_handled", None), ("messages_sent", None), ("reassignments", None), ("sla_breaches", None),
    ("first_response_time", "median"), ("first_response_time", "p90"), ("first_response_time", "mean"),
    ("first_response_time", "count"), ("reply_time", "median"), ("reply_time", "p90"), ("reply_time", "mean"),
    ("reply_time", "count"), ("resolution_time", "median"), ("resolution_time", "p90"), ("resolution_time", "mean"),
    ("resolution_time", "count"), ("csat", "mean"), ("csat", "count"), ("csat", "satisfied_share"),
)  # fmt: skip


def to_csv(items: Iterable[dict[str, Any]], key_columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*key_columns, *(f"{a}_{b}" if b else a for a, b in CSV_COLUMNS)])
    for item in items:
        row = [item.get(k) for k in key_columns]
        row += [item[a][b] if b else item[a] for a, b in CSV_COLUMNS]
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()
