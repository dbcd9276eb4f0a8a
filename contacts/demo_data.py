"""Demo orders, so the profile's value, RFM segments and the segment filters show something on first run."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from contacts import rfm
from contacts.models import Contact, Order
from inbox.models import Conversation

PRODUCTS = (
    ("Áo sơ mi trắng", 350_000),
    ("Váy đầm dự tiệc", 890_000),
    ("Giày thể thao", 1_250_000),
    ("Nồi chiên không dầu 5L", 1_690_000),
    ("Son môi màu đỏ", 290_000),
    ("Áo khoác dạ", 621_000),
)


async def seed_orders(seed: int = 20) -> int:
    """Past orders for the demo's customers (a few loyal ones, some one-off, some long gone), then RFM."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    created = 0
    contacts = await Contact.filter(merged_into_id=None).order_by("id")
    for index, contact in enumerate(contacts):
        conv = await Conversation.filter(contact_id=contact.id).first()
        pattern = index % 4  # 0: loyal, 1: one recent order, 2: lapsed, 3: none yet
        counts = {0: rng.randint(4, 8), 1: 1, 2: rng.randint(1, 3), 3: 0}[pattern]
        for n in range(counts):
            name, price = rng.choice(PRODUCTS)
            quantity = rng.randint(1, 2)
            days = rng.randint(1, 40) + 35 * n if pattern != 2 else rng.randint(200, 400) + 30 * n
            await Order.create(
                contact=contact,
                conversation_id=conv.id if conv and n == 0 else None,
                channel=conv.channel if conv else None,
                status="completed",
                source="agent",
                items=[{"name": name, "quantity": quantity, "unit_price": price}],
                total=quantity * price,
                ordered_at=now - timedelta(days=days, hours=rng.randint(0, 23)),
            )
            created += 1
    await rfm.refresh(now)
    return created
