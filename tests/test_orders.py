"""Orders: an agent drafts one from a conversation (pre-filled from its entities), creates and updates orders;
the profile shows the customer's value."""

from __future__ import annotations

from contacts.models import Order
from inbox.models import Conversation, Message
from tests.conftest import quick_user
from tests.test_contacts import settled_message


async def test_draft_from_conversation_uses_its_entities(client, inbox) -> None:
    msg = await settled_message(client, "PSID-O", "mo1", "Lấy em áo sơ mi size L giá 350k, ship 12 Lê Lợi, 0901234567")
    await Message.filter(id=msg.id).update(
        entities=[
            {"type": "product", "value": "áo sơ mi", "normalized": "áo sơ mi", "start": 7, "end": 15},
            {"type": "size", "value": "L", "normalized": "L", "start": 21, "end": 22},
            {"type": "price", "value": "350k", "normalized": "350000", "start": 27, "end": 31},
            {"type": "address", "value": "12 Lê Lợi", "normalized": "12 Lê Lợi", "start": 38, "end": 47},
            {"type": "phone", "value": "0901234567", "normalized": "+84901234567", "start": 49, "end": 59},
        ]
    )
    agent = await quick_user("agent", inboxes=[inbox])
    response = await client.post(f"/api/conversations/{msg.conversation_id}/orders/draft", headers=agent.headers)
    assert response.status == 201, await response.text()
    draft = await response.json()
    assert draft["status"] == "draft" and draft["conversation_id"] == msg.conversation_id
    assert draft["items"] == [{"name": "áo sơ mi", "quantity": 1, "unit_price": 350_000, "size": "L"}]
    assert draft["total"] == 350_000 and draft["shipping_address"] == "12 Lê Lợi"
    assert draft["phone"] == "+84*******67"  # masked for this agent
    assert (await Order.get(id=draft["id"])).phone == "+84901234567"
    # Confirming it makes it revenue on the profile.
    contact_id = (await Conversation.get(id=msg.conversation_id)).contact_id
    before = await (await client.get(f"/api/contacts/{contact_id}", headers=agent.headers)).json()
    assert before["value"]["orders"] == 0
    confirmed = await client.patch(f"/api/orders/{draft['id']}", json={"status": "paid"}, headers=agent.headers)
    assert confirmed.status == 200
    after = await (await client.get(f"/api/contacts/{contact_id}", headers=agent.headers)).json()
    assert (after["value"]["orders"], after["value"]["revenue"], after["value"]["aov"]) == (1, 350_000, 350_000)


async def test_create_order_validates_and_totals_items(client, inbox) -> None:
    msg = await settled_message(client, "PSID-Q", "mq1", "Cho em đặt hàng")
    contact_id = (await Conversation.get(id=msg.conversation_id)).contact_id
    agent = await quick_user("agent", inboxes=[inbox])
    url = f"/api/contacts/{contact_id}/orders"
    bad = await client.post(url, json={"items": [{"name": "Áo", "quantity": 0}]}, headers=agent.headers)
    assert bad.status == 422
    bad = await client.post(url, json={"items": [{"name": "Áo", "unit_price": -1}]}, headers=agent.headers)
    assert bad.status == 422
    huge = [{"name": "Áo", "quantity": 1_000_000, "unit_price": 10**13}]  # a total beyond a 64-bit integer
    for body in ({"items": huge}, {"items": [{"name": "Áo", "quantity": 2**32}]}, {"ordered_at": "9999-12-31"}):
        bad = await client.post(url, json={"items": [{"name": "Áo"}], **body}, headers=agent.headers)
        assert bad.status == 422, body
    assert await Order.filter(contact_id=contact_id).count() == 0
    items = [{"name": "Áo thun", "quantity": 2, "unit_price": 150_000}, {"name": "Quần", "unit_price": 200_000}]
    created = await client.post(url, json={"items": items}, headers=agent.headers)
    assert created.status == 201, await created.text()
    assert (await created.json())["total"] == 500_000
    listed = await (await client.get(url, headers=agent.headers)).json()
    assert [o["total"] for o in listed["items"]] == [500_000]
    # Changing the items checks their sum as creating does (a total past int64 was a 500).
    order_url = f"/api/orders/{(await created.json())['id']}"
    bad = await client.patch(order_url, json={"items": huge}, headers=agent.headers)
    assert bad.status == 422, await bad.text()
    changed = await client.patch(order_url, json={"items": items[:1]}, headers=agent.headers)
    assert (await changed.json())["total"] == 300_000
    assert (await Order.get(contact_id=contact_id)).total == 300_000
    outsider = await quick_user("agent")
    assert (await client.get(url, headers=outsider.headers)).status == 404


async def test_order_times_without_a_zone_are_vietnam_time_as_in_the_import(client, inbox) -> None:
    """An agent (or a shop system) sends 10:00 as its staff saw it: 10:00 in Vietnam, 03:00 UTC, exactly as the CSV
    import reads the same text; a time with a zone stays that moment."""
    msg = await settled_message(client, "PSID-T", "mt1", "Cho em đặt hàng")
    contact_id = (await Conversation.get(id=msg.conversation_id)).contact_id
    agent = await quick_user("agent", inboxes=[inbox])
    url = f"/api/contacts/{contact_id}/orders"
    sent = {
        "2026-11-20T10:00:00": "2026-11-20T03:00:00Z",
        "2026-11-20": "2026-11-19T17:00:00Z",
        "2026-11-20T10:00:00Z": "2026-11-20T10:00:00Z",
        "2026-11-20T10:00:00+07:00": "2026-11-20T03:00:00Z",
    }
    for ordered_at, stored in sent.items():
        created = await client.post(
            url, json={"items": [{"name": "Áo"}], "ordered_at": ordered_at}, headers=agent.headers
        )
        assert created.status == 201, await created.text()
        order = await created.json()
        assert order["ordered_at"] == stored, ordered_at
        listed = await (await client.get(url, headers=agent.headers)).json()
        assert {o["ordered_at"] for o in listed["items"] if o["id"] == order["id"]} == {stored}, ordered_at
    changed = await client.patch(
        f"/api/orders/{order['id']}", json={"ordered_at": "2026-11-21T23:30:00"}, headers=agent.headers
    )
    assert (await changed.json())["ordered_at"] == "2026-11-21T16:30:00Z"
    assert (await Order.get(id=order["id"])).ordered_at.isoformat().startswith("2026-11-21T16:30:00")
