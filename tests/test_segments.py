"""Saved dynamic segments as contact and conversation filters; RFM refresh through the API; business KPIs."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta

from contacts.models import Contact, Order
from inbox.models import Conversation
from tests.conftest import quick_user
from tests.test_contacts import conversation_of


async def test_segment_filters_contacts_and_conversations(client, inbox) -> None:
    big = await conversation_of(client, "PSID-1", "m1", "Chào shop")
    small = await conversation_of(client, "PSID-2", "m2", "Chào shop")
    now = datetime.now(UTC)
    for i in range(3):
        await Order.create(
            contact_id=big.contact_id,
            status="completed",
            total=5_000_000,
            ordered_at=now - timedelta(days=i),
            conversation_id=big.id,
        )
    await Order.create(contact_id=small.contact_id, status="completed", total=100_000, ordered_at=now - timedelta(300))
    await Contact.filter(id=big.contact_id).update(tags=["vip"], city="Hà Nội")
    supervisor = await quick_user("supervisor")
    refreshed = await client.post("/api/segments/rfm/refresh", headers=supervisor.headers)
    assert refreshed.status == 200, await refreshed.text()
    summary = await refreshed.json()
    assert summary["customers"] == 2 and summary["spend_tiers"]["vip"] == 1
    created = await client.post(
        "/api/segments",
        json={"name": "VIP Hà Nội", "rules": {"spend_tier": ["vip"], "tags_any": ["vip"], "city": "Hà Nội"}},
        headers=supervisor.headers,
    )
    assert created.status == 201, await created.text()
    seg = (await created.json())["id"]
    contacts = await (
        await client.get("/api/contacts", params={"segment": str(seg)}, headers=supervisor.headers)
    ).json()
    assert [c["id"] for c in contacts["items"]] == [big.contact_id]
    convs = await (
        await client.get("/api/conversations", params={"segment": str(seg)}, headers=supervisor.headers)
    ).json()
    assert [c["id"] for c in convs["items"]] == [big.id]
    by_rfm = await client.get("/api/conversations", params={"segment": "rfm:Lost"}, headers=supervisor.headers)
    assert [c["id"] for c in (await by_rfm.json())["items"]] == [small.id]
    for ref in ("rfm:Nobody", "²", "99999999999999999999"):  # "²" passes str.isdigit; the last overflows SQLite
        for path in ("/api/conversations", "/api/contacts"):
            bad = await client.get(path, params={"segment": ref}, headers=supervisor.headers)
            assert bad.status == 400, (path, ref)
    invalid = await client.post(
        "/api/segments", json={"name": "x", "rules": {"spend_tier": ["gold"]}}, headers=supervisor.headers
    )
    assert invalid.status == 422
    kpis = await (await client.get("/api/reports/customers", headers=supervisor.headers)).json()
    assert kpis["orders"] == 4 and kpis["repeat_purchase_rate"] == 0.5 and kpis["aov"] == 15_100_000 // 4
    assert kpis["chat_to_order_conversion"] == 0.5  # one of two chatting customers ordered from a conversation
    assert await Conversation.filter().count() == 2


async def test_customer_kpis_show_the_monthly_csat_trend(client, inbox) -> None:
    from datetime import UTC, datetime, timedelta

    from agents.models import CsatSurvey
    from tests.conftest import eventually, send_text

    await send_text(client, "PSID-CSAT", "mid.csat", "Cảm ơn shop")
    conv = await eventually(lambda: Conversation.first())
    now = datetime.now(UTC)
    last_month = now.replace(day=1) - timedelta(days=1)
    for rating, answered in ((5, now), (3, now), (4, last_month), (None, now)):
        await CsatSurvey.create(
            conversation_id=conv.id,
            inbox_id=inbox.id,
            state="answered" if rating else "sent",
            rating=rating,
            sent_at=answered,
            answered_at=answered if rating else None,
        )
    supervisor = await quick_user("supervisor")
    kpis = await (await client.get("/api/reports/customers", headers=supervisor.headers)).json()
    assert kpis["csat_trend"] == [
        {"month": last_month.strftime("%Y-%m"), "answered": 1, "mean": 4.0, "satisfied_share": 1.0},
        {"month": now.strftime("%Y-%m"), "answered": 2, "mean": 4.0, "satisfied_share": 0.5},
    ]


async def segment_members(client, staff, rules: dict) -> list[int]:
    """The ids of the customers in a segment saved with `rules`, as `staff` lists them."""
    created = await client.post("/api/segments", json={"name": "x", "rules": rules}, headers=staff.headers)
    assert created.status == 201, await created.text()
    seg = str((await created.json())["id"])
    found = await client.get("/api/contacts", params={"segment": seg}, headers=staff.headers)
    return sorted(c["id"] for c in (await found.json())["items"])


async def test_segment_rules_match_cities_and_genders_as_people_type_them(client) -> None:
    """A supervisor types 'ha noi' or 'hà nội' for the customers stored as 'Hà Nội', and 'nữ' for female."""
    hanoi = await Contact.create(name="Lan", city="Hà Nội", gender="female")
    await Contact.create(name="Huệ", city="Huế", gender="female")
    await Contact.create(name="Nam", city="Hà Nam", gender="male")
    supervisor = await quick_user("supervisor")

    async def members(rules: dict) -> list[int]:
        return await segment_members(client, supervisor, rules)

    for city in ("Hà Nội", "hà nội", "ha noi", " HA  NOI "):
        assert await members({"city": city}) == [hanoi.id], city
    assert await members({"city": "ha noi", "gender": "nữ"}) == [hanoi.id]
    assert await members({"city": "Đà Nẵng"}) == []
    for rules in ({"gender": "robot"}, {"birthday_month": 13}, {"birthday_month": 0}):
        refused = await client.post("/api/segments", json={"name": "x", "rules": rules}, headers=supervisor.headers)
        assert refused.status == 422, rules


async def test_segment_tags_match_without_case_or_diacritics(client) -> None:
    """Agents tag 'vip', 'Vip' or 'VIP' and 'khách quen' in any Unicode form; a segment `tags_any: ["VIP"]` finds
    them all, as the city rule does ('ha noi' is 'Hà Nội')."""
    lower = await Contact.create(name="An", tags=["vip"])
    title = await Contact.create(name="Bình", tags=["Vip", "sỉ"])
    decomposed = await Contact.create(name="Chi", tags=[unicodedata.normalize("NFD", "Khách quen")])
    await Contact.create(name="Dung", tags=["vipp", "khach"])
    supervisor = await quick_user("supervisor")

    async def members(rules: dict) -> list[int]:
        return await segment_members(client, supervisor, rules)

    assert await members({"tags_any": ["VIP"]}) == sorted([lower.id, title.id])
    assert await members({"tags_any": ["khách quen"]}) == [decomposed.id]
    assert await members({"tags_any": ["KHACH QUEN", "vip"]}) == sorted([lower.id, title.id, decomposed.id])
    assert await members({"tags_any": ["Si"]}) == [title.id]
    assert await members({"tags_any": ["nobody has this"]}) == []


async def test_a_merge_rescores_the_surviving_profile_for_segments(client) -> None:
    """Two profiles of one customer, one order and two: after the merge the survivor is a three-order customer in
    the segments and on its profile at once (not at the next RFM refresh); undo scores both back."""
    now = datetime.now(UTC)
    a = await Contact.create(name="Lan")
    b = await Contact.create(name="Lan Nguyễn")
    other = await Contact.create(name="Huệ")
    for contact, totals in ((a, [400_000]), (b, [300_000, 300_000]), (other, [200_000])):
        for i, total in enumerate(totals):
            await Order.create(contact=contact, status="completed", total=total, ordered_at=now - timedelta(days=i))
    supervisor = await quick_user("supervisor")
    assert (await client.post("/api/segments/rfm/refresh", headers=supervisor.headers)).status == 200
    created = await client.post(
        "/api/segments",
        json={"name": "3+ đơn, từ 1 triệu", "rules": {"min_orders": 3, "min_revenue": 1_000_000}},
        headers=supervisor.headers,
    )
    seg = str((await created.json())["id"])

    async def members() -> list[int]:
        found = await client.get("/api/contacts", params={"segment": seg}, headers=supervisor.headers)
        return [c["id"] for c in (await found.json())["items"]]

    assert await members() == []
    merged = await client.post(f"/api/contacts/{a.id}/merge", json={"other_id": b.id}, headers=supervisor.headers)
    assert merged.status == 200, await merged.text()
    rfm = (await merged.json())["contact"]["rfm"]
    assert (rfm["frequency"], rfm["monetary"]) == (3, 1_000_000)
    assert await members() == [a.id]
    undo = await client.post(
        f"/api/contact-merges/{(await merged.json())['merge']['id']}/undo", headers=supervisor.headers
    )
    assert undo.status == 200, await undo.text()
    assert await members() == []
    for contact, orders in ((a, 1), (b, 2), (other, 1)):
        profile = await (await client.get(f"/api/contacts/{contact.id}", headers=supervisor.headers)).json()
        assert profile["rfm"]["frequency"] == orders, contact.name
