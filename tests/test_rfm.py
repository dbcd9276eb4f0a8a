"""RFM scores, named segments and CLTV on a hand-computed order set; CSV import with bad rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contacts import rfm
from contacts.models import Contact, ContactScore, Order
from contacts.orders import contact_value

NOW = datetime(2026, 6, 1, tzinfo=UTC)


async def test_rfm_and_cltv_hand_computed(client) -> None:
    # Five customers: (days since last order, orders, revenue in VND); one cancelled order that must not count.
    plan = {
        "A": (2, 10, 20_000_000),
        "B": (10, 6, 5_000_000),
        "C": (40, 3, 2_000_000),
        "D": (100, 2, 800_000),
        "E": (300, 1, 300_000),
    }
    ids = {}
    for name, (days, count, revenue) in plan.items():
        contact = await Contact.create(name=name)
        ids[name] = contact.id
        for i in range(count):  # the last order `days` ago, earlier ones 30 days apart
            await Order.create(
                contact=contact,
                status="completed",
                total=revenue // count,
                ordered_at=NOW - timedelta(days=days + 30 * i),
            )
    await Order.create(contact_id=ids["E"], status="cancelled", total=9_000_000, ordered_at=NOW)
    scored = {s.contact_id: s for s in await rfm.refresh(NOW)}
    got = {
        name: (scored[cid].r, scored[cid].f, scored[cid].m, scored[cid].segment, scored[cid].spend_tier)
        for name, cid in ids.items()
    }
    assert got == {
        "A": (5, 5, 5, "Champions", "vip"),
        "B": (4, 4, 4, "Loyal", "high"),
        "C": (3, 3, 3, "Need attention", "medium"),
        "D": (2, 2, 2, "Hibernating", "low"),
        "E": (1, 1, 1, "Lost", "low"),
    }
    assert (await ContactScore.get(contact_id=ids["A"])).segment == "Champions"
    # CLTV of D: 2 orders of 400,000 on days 100 and 130 ago. AOV 400,000; lifetime 130 days → 2/130×365 per
    # year; typical gap 30 days, 100 days since the last → P(active) = 60/100.
    value = await contact_value(ids["D"], NOW)
    assert (value["revenue"], value["orders"], value["aov"], value["historic_cltv"]) == (800_000, 2, 400_000, 800_000)
    assert value["predicted_cltv_12m"] == round(400_000 * (2 / 130 * 365) * 0.6)
    assert value["last_purchase_at"].startswith((NOW - timedelta(days=100)).date().isoformat())
    none = await contact_value((await Contact.create(name="F")).id, NOW)
    assert none["orders"] == 0 and none["predicted_cltv_12m"] == 0


async def test_segment_map_covers_every_cell() -> None:
    names = {rfm.segment_of(r, f) for r in range(1, 6) for f in range(1, 6)}
    assert names == set(rfm.SEGMENTS)
