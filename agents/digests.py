"""Daily digests of `metric_facts`, so a month's report reads a few thousand rows instead of a million facts.

A digest row bundles the facts of one UTC day (`bucket`) that share (local day, inbox, channel, team, agent, kind):
their count, their values as JSON lists (the customer's wait, the agent's held part, both in business hours) and
the conversations. Medians and p90 stay exact (nearest rank over the merged values); "conversations handled" stays
a true distinct count (union of the conversation ids).

Freshness: the projector marks the buckets whose facts it replaced as stale (a `projection_cursors` row named
`digest:<bucket>` with position 0); a report rebuilds the stale buckets it needs, under the projector's lock,
before reading. Partial days at the edges of a period are read from the facts themselves.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson

from agents.metrics import DURATION_KINDS
from inbox.sql import Sql, as_datetime, insert_rows

PREFIX = "digest:"
KEY_COLUMNS = ("day", "inbox_id", "channel", "team_id", "agent_id", "kind")
VALUED_KINDS = (*DURATION_KINDS, "csat")  # kinds whose values matter (the others only count)
HANDLED_KINDS = ("message", "resolution")


def bucket_of(at: datetime) -> str:
    return at.astimezone(UTC).date().isoformat()


def bucket_start(bucket: str) -> datetime:
    return datetime.combine(date.fromisoformat(bucket), time(0), UTC)


def full_buckets(start: datetime, end: datetime) -> list[str]:
    """UTC days lying wholly inside [start, end)."""
    first = start.astimezone(UTC).date()
    if datetime.combine(first, time(0), UTC) < start:
        first += timedelta(days=1)
    days = []
    while datetime.combine(first + timedelta(days=1), time(0), UTC) <= end:
        days.append(first.isoformat())
        first += timedelta(days=1)
    return days


async def mark_stale(conn: Any, buckets: Iterable[str]) -> None:
    for bucket in sorted(set(buckets)):
        sql = Sql(conn.capabilities.dialect)
        await conn.execute_query(
            sql.insert(
                "projection_cursors",
                {"name": PREFIX + bucket, "position": 0, "updated_at": datetime.now(UTC)},
                on_conflict="(name) DO UPDATE SET position = 0",
            ),
            sql.params,
        )


async def refresh(conn: Any, buckets: list[str]) -> int:
    """Rebuild the stale digests among `buckets` (call with the projector's lock held)."""
    if not buckets:
        return 0
    sql = Sql(conn.capabilities.dialect)
    rows = await conn.execute_query_dict(
        "SELECT name FROM projection_cursors WHERE position = 0"
        f" AND name >= {sql.p(PREFIX + buckets[0])} AND name <= {sql.p(PREFIX + buckets[-1])}",
        sql.params,
    )
    wanted = set(buckets)
    stale = [r["name"][len(PREFIX) :] for r in rows if r["name"][len(PREFIX) :] in wanted]
    for bucket in stale:
        await _rebuild(conn, bucket)
    return len(stale)


async def _rebuild(conn: Any, bucket: str) -> None:
    start = bucket_start(bucket)
    sql = Sql(conn.capabilities.dialect)
    await conn.execute_query(f"DELETE FROM metric_digests WHERE bucket = {sql.p(bucket)}", sql.params)
    read = Sql(sql.dialect)
    facts = await conn.execute_query_dict(
        "SELECT day, inbox_id, channel, team_id, agent_id, kind, value, held, value_bh, held_bh, conversation_id"
        f" FROM metric_facts WHERE at >= {read.p(start)} AND at < {read.p(start + timedelta(days=1))}",
        read.params,
    )
    groups: dict[tuple, list[Any]] = {}
    for f in facts:
        key = tuple(f[c] for c in KEY_COLUMNS)
        entry = groups.get(key)
        if entry is None:
            entry = groups[key] = [0, [], [], [], [], set()]
        entry[0] += 1
        if f["kind"] in VALUED_KINDS:
            for slot, column in ((1, "value"), (2, "held"), (3, "value_bh"), (4, "held_bh")):
                if f[column] is not None:
                    entry[slot].append(f[column])
        if f["kind"] in HANDLED_KINDS:
            entry[5].add(f["conversation_id"])
    columns = ("bucket", *KEY_COLUMNS, "n", "vals", "held", "vals_bh", "held_bh", "convs")
    rows = [
        (bucket, *key, e[0], *(orjson.dumps(x).decode() for x in (e[1], e[2], e[3], e[4], sorted(e[5]))))
        for key, e in groups.items()
    ]
    for first in range(0, len(rows), 1000):
        await conn.execute_query(*insert_rows(sql.dialect, "metric_digests", columns, rows[first : first + 1000]))
    done = Sql(sql.dialect)
    await conn.execute_query(
        f"UPDATE projection_cursors SET position = 1 WHERE name = {done.p(PREFIX + bucket)}", done.params
    )


class Accumulator:
    """Merges digest rows and loose facts into figures per group key."""

    def __init__(self, dim: str, measure: str) -> None:
        self.dim, self.measure = dim, measure  # measure: vals | held | vals_bh | held_bh
        self.count: dict[Any, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.values: dict[Any, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        self.handled: dict[Any, set[int]] = defaultdict(set)

    def add_digest(self, row: dict[str, Any]) -> None:
        key, kind = row[self.dim], row["kind"]
        self.count[key][kind] += row["n"]
        if kind in DURATION_KINDS:
            self.values[key][kind].extend(orjson.loads(row["m"]))
        elif kind == "csat":
            self.values[key][kind].extend(orjson.loads(row["csat"]))
        if kind in HANDLED_KINDS:
            self.handled[key].update(orjson.loads(row["convs"]))

    def add_fact(self, row: dict[str, Any]) -> None:
        key, kind = row[self.dim], row["kind"]
        self.count[key][kind] += 1
        if kind in DURATION_KINDS and row["m"] is not None:
            self.values[key][kind].append(row["m"])
        elif kind == "csat":
            self.values[key][kind].append(row["value"])
        if kind in HANDLED_KINDS:
            self.handled[key].add(row["conversation_id"])


def nearest_rank(sorted_values: list[float], p: float) -> float:
    """The value at rank ⌈p·n⌉ (1-based): a value some conversation really had."""
    rank = max(1, math.ceil(round(p * len(sorted_values), 9)))
    return sorted_values[rank - 1]


def as_time(value: Any) -> datetime | None:
    return as_datetime(value)
