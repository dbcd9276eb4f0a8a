"""Business KPIs over customers and orders: repeat-purchase rate, retention, AOV, chat-to-order conversion, and
the CSAT trend (monthly, from the answered satisfaction surveys)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from contacts.orders import NOT_REVENUE
from inbox.db import connection
from inbox.sql import Sql, as_datetime


async def business_kpis(now: datetime | None = None, days: int = 90) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    conn = connection()
    sql = Sql(conn.capabilities.dialect)
    excluded = sql.marks(NOT_REVENUE)
    rows = await conn.execute_query_dict(
        f"SELECT contact_id, COUNT(*) AS n, SUM(total) AS revenue, MIN(ordered_at) AS first_at, "
        f"MAX(ordered_at) AS last_at FROM orders WHERE status NOT IN ({excluded}) GROUP BY contact_id",
        sql.params,
    )
    buyers = len(rows)
    orders = sum(int(r["n"]) for r in rows)
    revenue = sum(int(r["revenue"]) for r in rows)
    start = now - timedelta(days=days)
    earlier = [r for r in rows if as_datetime(r["first_at"]) < start]
    retained = [r for r in earlier if as_datetime(r["last_at"]) >= start]
    chats = await conn.execute_query_dict("SELECT COUNT(DISTINCT contact_id) AS n FROM conversations")
    converted = await conn.execute_query_dict(
        "SELECT COUNT(DISTINCT contact_id) AS n FROM orders WHERE conversation_id IS NOT NULL"
    )
    chatting = int(chats[0]["n"]) if chats else 0
    return {
        "customers_with_orders": buyers,
        "orders": orders,
        "revenue": revenue,
        "aov": round(revenue / orders) if orders else 0,
        "repeat_purchase_rate": round(sum(1 for r in rows if int(r["n"]) > 1) / buyers, 4) if buyers else 0.0,
        "retention_rate": round(len(retained) / len(earlier), 4) if earlier else 0.0,
        "retention_window_days": days,
        "chat_to_order_conversion": round(int(converted[0]["n"]) / chatting, 4) if chatting else 0.0,
        "currency": "VND",
        "csat_trend": await csat_trend(now),
    }


async def csat_trend(now: datetime, months: int = 6) -> list[dict[str, Any]]:
    """Per calendar month (oldest first): answered surveys, mean rating (1–5), share satisfied (4 or 5)."""
    conn = connection()
    sql = Sql(conn.capabilities.dialect)
    since = (now.replace(day=1) - timedelta(days=31 * (months - 1))).replace(day=1)
    rows = await conn.execute_query_dict(
        f"SELECT rating, answered_at FROM csat_surveys WHERE state = 'answered' AND rating IS NOT NULL "
        f"AND answered_at >= {sql.p(since)}",
        sql.params,
    )
    by_month: dict[str, list[int]] = {}
    for row in rows:
        by_month.setdefault(as_datetime(row["answered_at"]).strftime("%Y-%m"), []).append(int(row["rating"]))
    return [
        {
            "month": month,
            "answered": len(ratings),
            "mean": round(sum(ratings) / len(ratings), 2),
            "satisfied_share": round(sum(r >= 4 for r in ratings) / len(ratings), 4),
        }
        for month, ratings in sorted(by_month.items())
    ]
