"""RFM: recency, frequency and monetary scores (quintiles, 5 = best) and the named segments, plus spend tiers.

Scores are quintiles over the customers with at least one revenue order: a value's score is 1 + ⌊5 × (number of
customers strictly worse) / n⌋, so equal values always share a score. Segments follow the usual R × F map:

    R\\F  1              2              3                 4          5
    5    New            Potential loy. Potential loy.    Champions  Champions
    4    Promising      Potential loy. Potential loy.    Loyal      Loyal
    3    About to sleep About to sleep Need attention    Loyal      Loyal
    2    Hibernating    Hibernating    At risk           At risk    Can't lose
    1    Lost           Hibernating    At risk           At risk    Can't lose
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from contacts.models import ContactScore
from contacts.orders import NOT_REVENUE
from inbox.db import connection
from inbox.sql import Sql, as_datetime

SEGMENTS = (
    "Champions",
    "Loyal",
    "Potential loyalist",
    "New",
    "Promising",
    "Need attention",
    "About to sleep",
    "At risk",
    "Can't lose",
    "Hibernating",
    "Lost",
)
SPEND_TIERS = (("vip", 10_000_000), ("high", 3_000_000), ("medium", 1_000_000), ("low", 0))


@dataclass(slots=True)
class Scored:
    contact_id: int
    recency_days: int
    frequency: int
    monetary: int
    r: int
    f: int
    m: int
    segment: str
    spend_tier: str


def segment_of(r: int, f: int) -> str:
    if r == 5:
        return "New" if f == 1 else "Potential loyalist" if f <= 3 else "Champions"
    if r == 4:
        return "Promising" if f == 1 else "Potential loyalist" if f <= 3 else "Loyal"
    if r == 3:
        return "About to sleep" if f <= 2 else "Need attention" if f == 3 else "Loyal"
    if f == 5:
        return "Can't lose"
    if f >= 3:
        return "At risk"
    return "Lost" if (r, f) == (1, 1) else "Hibernating"


def spend_tier(monetary: int) -> str:
    return next(name for name, floor in SPEND_TIERS if monetary >= floor)


def quintile_scores(values: list[float]) -> list[int]:
    """Higher value → higher score; ties share the score."""
    ordered = sorted(values)
    n = len(values)
    return [min(5, 1 + (bisect_left(ordered, v) * 5) // n) for v in values]


def score(rows: list[tuple[int, datetime, int, int]], now: datetime) -> list[Scored]:
    """rows: (contact_id, last purchase, order count, revenue)."""
    if not rows:
        return []
    recency = [max(0, int((now - last).total_seconds() // 86400)) for _, last, _, _ in rows]
    r = quintile_scores([-d for d in recency])  # fewer days since the last purchase is better
    f = quintile_scores([count for _, _, count, _ in rows])
    m = quintile_scores([total for _, _, _, total in rows])
    return [
        Scored(cid, recency[i], count, total, r[i], f[i], m[i], segment_of(r[i], f[i]), spend_tier(total))
        for i, (cid, _, count, total) in enumerate(rows)
    ]


async def aggregate() -> list[tuple[int, datetime, int, int]]:
    conn = connection()
    sql = Sql(conn.capabilities.dialect)
    excluded = sql.marks(NOT_REVENUE)
    rows = await conn.execute_query(
        "SELECT contact_id, MAX(ordered_at), COUNT(*), SUM(total) FROM orders "
        f"WHERE status NOT IN ({excluded}) GROUP BY contact_id",
        sql.params,
    )
    return [(row[0], as_datetime(row[1]), int(row[2]), int(row[3])) for row in rows[1]]


async def refresh(now: datetime | None = None) -> list[Scored]:
    """Score every customer with orders and replace the stored scores (one transaction)."""
    now = now or datetime.now(UTC)
    scored = score(await aggregate(), now)
    columns = "contact_id, recency_days, frequency, monetary, r, f, m, segment, spend_tier"
    async with in_transaction() as conn:
        await conn.execute_query("DELETE FROM contact_scores")
        if conn.capabilities.dialect == "postgres":
            # One statement for every row (arrays unnested server-side): row-by-row inserts cost seconds here.
            await conn.execute_query(
                f"INSERT INTO contact_scores ({columns}, computed_at) SELECT u.*, $10::timestamptz FROM unnest("
                "$1::int[], $2::int[], $3::int[], $4::bigint[], $5::smallint[], $6::smallint[], $7::smallint[], "
                "$8::text[], $9::text[]) AS u",
                [
                    [s.contact_id for s in scored],
                    [s.recency_days for s in scored],
                    [s.frequency for s in scored],
                    [s.monetary for s in scored],
                    [s.r for s in scored],
                    [s.f for s in scored],
                    [s.m for s in scored],
                    [s.segment for s in scored],
                    [s.spend_tier for s in scored],
                    now,
                ],
            )
        else:
            stamp = now.isoformat()
            await conn.execute_many(
                f"INSERT INTO contact_scores ({columns}, computed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    [
                        s.contact_id,
                        s.recency_days,
                        s.frequency,
                        s.monetary,
                        s.r,
                        s.f,
                        s.m,
                        s.segment,
                        s.spend_tier,
                        stamp,
                    ]
                    for s in scored
                ],
            )
    return scored


async def refresh_contacts(contact_ids: Collection[int], now: datetime | None = None) -> list[Scored]:
    """Rescore only these customers (the two profiles of a merge, once their orders moved): each gets the score
    `refresh` would give it now, against every customer's current orders; the others keep theirs until the next
    refresh. A profile left without revenue orders loses its score, as in `refresh`."""
    now = now or datetime.now(UTC)
    wanted = set(contact_ids)
    scored = [s for s in score(await aggregate(), now) if s.contact_id in wanted]
    async with in_transaction() as conn:
        await ContactScore.filter(contact_id__in=wanted).using_db(conn).delete()
        await ContactScore.bulk_create(
            [
                ContactScore(
                    contact_id=s.contact_id,
                    recency_days=s.recency_days,
                    frequency=s.frequency,
                    monetary=s.monetary,
                    r=s.r,
                    f=s.f,
                    m=s.m,
                    segment=s.segment,
                    spend_tier=s.spend_tier,
                    computed_at=now,
                )
                for s in scored
            ],
            using_db=conn,
        )
    return scored


def summary(scored: list[Scored]) -> dict[str, dict[str, int]]:
    segments = dict.fromkeys(SEGMENTS, 0)
    tiers = {name: 0 for name, _ in SPEND_TIERS}
    for s in scored:
        segments[s.segment] += 1
        tiers[s.spend_tier] += 1
    return {"segments": segments, "spend_tiers": tiers}
