"""Orders and what each customer is worth: revenue, order count, AOV, first/last purchase, historic and predicted
CLTV.

Revenue counts orders that were not cancelled, returned or left as drafts. Historic CLTV is the revenue so far
(margins are not known to the inbox). Predicted CLTV (next 12 months) = AOV × purchases per year × P(still active),
with purchases per year from the customer's own pace (lifetime at least 30 days) and P(still active) =
min(1, 2 × typical gap / days since last purchase), the typical gap being 90 days for one-time buyers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from contacts.models import Order
from contacts.normalize import InvalidValue, normalize_phone
from inbox.db import connection
from inbox.http import plausible
from inbox.models import Conversation, Message
from inbox.serialize import iso
from inbox.sql import Sql, as_datetime

STATUSES = ("draft", "confirmed", "paid", "shipped", "completed", "cancelled", "returned")
NOT_REVENUE = ("draft", "cancelled", "returned")
ONE_TIME_GAP_DAYS = 90
MAX_QUANTITY = 1_000_000
MAX_AMOUNT = 10**13  # VND; sums over many orders (RFM, reports) stay far inside a 64-bit integer
SHOP_TIMEZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def shop_time(value: datetime) -> datetime:
    """An order time in UTC. Without a zone it is the shop's local time (Vietnam), as its staff or its shop system
    saw it: the same reading for the API and the CSV import."""
    try:
        return (value if value.tzinfo else value.replace(tzinfo=SHOP_TIMEZONE)).astimezone(UTC)
    except OverflowError:  # year 1 moved back to UTC: below the plausible range, refused by the caller
        return datetime.min.replace(tzinfo=UTC)


class OrderError(ValueError):
    pass


def clean_items(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or len(raw) > 200:
        raise OrderError("items must be a list (at most 200)")
    items = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"].strip():
            raise OrderError(f"items[{i}] needs a name")
        qty, price = item.get("quantity", 1), item.get("unit_price", 0)
        if not isinstance(qty, int) or isinstance(qty, bool) or not 1 <= qty <= MAX_QUANTITY:
            raise OrderError(f"items[{i}].quantity must be an integer from 1 to {MAX_QUANTITY:,}")
        if not isinstance(price, int) or isinstance(price, bool) or not 0 <= price <= MAX_AMOUNT:
            raise OrderError(f"items[{i}].unit_price must be an integer from 0 to {MAX_AMOUNT:,} (VND)")
        clean = {"name": item["name"].strip()[:200], "quantity": qty, "unit_price": price}
        for key in ("sku", "size", "color"):
            if isinstance(item.get(key), str) and item[key].strip():
                clean[key] = item[key].strip()[:60]
        items.append(clean)
    return items


def order_values(body: dict[str, Any]) -> dict[str, Any]:
    """Validated order fields from an API body."""
    values: dict[str, Any] = {}
    if "items" in body:
        values["items"] = clean_items(body["items"])
    if "total" in body:
        total = body["total"]
        if not isinstance(total, int) or isinstance(total, bool) or not 0 <= total <= MAX_AMOUNT:
            raise OrderError(f"total must be an integer from 0 to {MAX_AMOUNT:,} (VND)")
        values["total"] = total
    elif "items" in values:  # new items without a total: their sum, within bounds (creating or changing)
        values["total"] = sum(i["quantity"] * i["unit_price"] for i in values["items"])
        if values["total"] > MAX_AMOUNT:
            raise OrderError(f"the items add up to more than {MAX_AMOUNT:,} VND")
    if "status" in body:
        if body["status"] not in STATUSES:
            raise OrderError(f"status must be one of {', '.join(STATUSES)}")
        values["status"] = body["status"]
    if body.get("phone"):
        try:
            values["phone"] = normalize_phone(str(body["phone"]))
        except InvalidValue as exc:
            raise OrderError(str(exc)) from exc
    for key in ("shipping_address", "note", "channel"):
        if key in body:
            if body[key] is not None and not isinstance(body[key], str):
                raise OrderError(f"{key} must be a string")
            values[key] = body[key] if key != "note" else (body[key] or "")
    if "ordered_at" in body:
        try:
            at = datetime.fromisoformat(str(body["ordered_at"]).replace("Z", "+00:00"))
        except ValueError as exc:
            raise OrderError("ordered_at must be an ISO 8601 date-time") from exc
        at = shop_time(at)
        if not plausible(at):
            raise OrderError("ordered_at must be between 1970 and 2100")
        values["ordered_at"] = at
    return values


async def draft_from_conversation(conv: Conversation, actor_id: int | None) -> Order:
    """A draft order pre-filled from the entities found in the conversation (phone, address, product, size, price)."""
    messages = await Message.filter(conversation_id=conv.id, direction="in").order_by("-id").limit(200)
    found: dict[str, str] = {}
    prices: list[int] = []
    for msg in messages:  # newest first: the latest value wins
        for e in msg.entities or []:
            if not isinstance(e, dict):
                continue
            kind, value = e.get("type"), e.get("normalized") or e.get("value")
            if kind == "price" and len(prices) < 1:
                try:
                    prices.append(int(float(str(value).replace(",", "").replace(".", ""))))
                except ValueError:
                    pass
            elif kind in ("phone", "address", "product", "size", "color") and kind not in found and value:
                found[kind] = str(value)
    phone = None
    if found.get("phone"):
        try:
            phone = normalize_phone(found["phone"])
        except InvalidValue:
            phone = None
    item: dict[str, Any] = {"name": found.get("product", ""), "quantity": 1, "unit_price": prices[0] if prices else 0}
    for key in ("size", "color"):
        if key in found:
            item[key] = found[key]
    return await Order.create(
        contact_id=conv.contact_id,
        conversation_id=conv.id,
        channel=conv.channel,
        status="draft",
        items=[item] if item["name"] or item["unit_price"] else [],
        total=item["unit_price"],
        shipping_address=found.get("address"),
        phone=phone,
        source="conversation",
        created_by_id=actor_id,
        ordered_at=datetime.now(UTC),
    )


def order_json(o: Order) -> dict[str, Any]:
    return {
        "id": o.id,
        "contact_id": o.contact_id,
        "conversation_id": o.conversation_id,
        "channel": o.channel,
        "status": o.status,
        "items": o.items or [],
        "total": o.total,
        "currency": "VND",
        "shipping_address": o.shipping_address,
        "phone": o.phone,
        "note": o.note,
        "source": o.source,
        "external_id": o.external_id,
        "created_by_id": o.created_by_id,
        "ordered_at": iso(o.ordered_at),
        "created_at": iso(o.created_at),
    }


def value_from(revenues: list[tuple[datetime, int]], now: datetime) -> dict[str, Any]:
    """The value figures from a customer's (ordered_at, total) list of revenue orders."""
    if not revenues:
        return {"revenue": 0, "orders": 0, "aov": 0, "first_purchase_at": None, "last_purchase_at": None,
                "historic_cltv": 0, "predicted_cltv_12m": 0, "currency": "VND"}  # fmt: skip
    revenues = sorted(revenues)
    total = sum(t for _, t in revenues)
    count = len(revenues)
    aov = total / count
    first, last = revenues[0][0], revenues[-1][0]
    lifetime_days = max((now - first).total_seconds() / 86400, 30.0)
    per_year = count / lifetime_days * 365
    gap = (last - first).total_seconds() / 86400 / (count - 1) if count > 1 else ONE_TIME_GAP_DAYS
    gap = max(gap, 1.0)
    since_last = max((now - last).total_seconds() / 86400, 0.0)
    alive = 1.0 if since_last <= 0 else min(1.0, 2 * gap / since_last)
    return {
        "revenue": total,
        "orders": count,
        "aov": round(aov),
        "first_purchase_at": iso(first),
        "last_purchase_at": iso(last),
        "historic_cltv": total,
        "predicted_cltv_12m": round(aov * per_year * alive),
        "currency": "VND",
    }


async def contact_value(contact_id: int, now: datetime | None = None) -> dict[str, Any]:
    conn = connection()
    sql = Sql(conn.capabilities.dialect)
    who = sql.p(contact_id)  # placeholders in the order they appear (SQLite's ? are positional)
    excluded = sql.marks(NOT_REVENUE)
    rows = await conn.execute_query_dict(
        f"SELECT ordered_at, total FROM orders WHERE contact_id = {who} AND status NOT IN ({excluded})",
        sql.params,
    )
    return value_from([(as_datetime(r["ordered_at"]), int(r["total"])) for r in rows], now or datetime.now(UTC))
