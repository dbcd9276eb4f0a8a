"""Access-matrix cases for contacts, orders, segments and integrations (see tests/matrix.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient

from contacts.merge import merge_contacts
from contacts.models import Contact, ContactSuggestion, Order, Segment, WebhookEndpoint
from tests.matrix import Case, World


async def prepare(world: World, client: TestClient) -> None:
    a, b = world.conv_a.contact_id, world.conv_b.contact_id
    x = await Contact.create(name="Khách X", phone="+84901111111")
    y = await Contact.create(name="Khách Y", phone="+84901111111")
    merge = await merge_contacts(x.id, y.id, actor_id=None)
    suggestion = await ContactSuggestion.create(
        contact_id=a, kind="phone", value="0902222222", normalized="+84902222222"
    )
    order = await Order.create(contact_id=a, total=100_000, status="completed", ordered_at=datetime.now(UTC))
    segment = await Segment.create(name="VIP", rules={"spend_tier": ["vip"]})
    hook = await WebhookEndpoint.create(url="http://127.0.0.1:9/hook", secret="s")
    world.extra["contacts"] = {
        "a": a,
        "b": b,
        "merge": merge.id,
        "suggestion": suggestion.id,
        "order": order.id,
        "segment": segment.id,
        "hook": hook.id,
    }


def _c(world: World) -> dict[str, Any]:
    return {"id": world.extra["contacts"]["a"]}


def _key(name: str):
    return lambda world: {"id": world.extra["contacts"][name]}


CASES = [
    Case("GET", "/api/contacts", "agent"),
    Case("GET", "/api/contacts/duplicates", "supervisor"),
    Case(
        "POST",
        "/api/contacts/duplicates/dismiss",
        "supervisor",
        body=lambda w, who: {"contact_ids": [w.extra["contacts"]["a"], w.extra["contacts"]["b"]]},
    ),
    Case("GET", "/api/contacts/{id}", "agent", target=_c),
    Case("PATCH", "/api/contacts/{id}", "agent", body=lambda w, who: {"notes": "Khách quen"}, target=_c),
    Case("DELETE", "/api/contacts/{id}", "admin", target=_c),
    Case(
        "POST",
        "/api/contacts/{id}/merge",
        "supervisor",
        body=lambda w, who: {"other_id": w.extra["contacts"]["b"]},
        target=_c,
    ),
    Case("POST", "/api/contact-merges/{id}/undo", "supervisor", target=_key("merge")),
    Case("GET", "/api/contacts/{id}/export", "supervisor", target=_c),
    Case(
        "POST",
        "/api/contacts/{id}/consents",
        "agent",
        201,
        body=lambda w, who: {"kind": "marketing", "granted": True},
        target=_c,
    ),
    Case(
        "POST",
        "/api/contacts/{id}/suggestions/{suggestion_id}",
        "agent",
        body=lambda w, who: {"accept": True},
        target=lambda w: {"id": w.extra["contacts"]["a"], "suggestion_id": w.extra["contacts"]["suggestion"]},
    ),
    Case("GET", "/api/contacts/{id}/orders", "agent", target=_c),
    Case(
        "POST",
        "/api/contacts/{id}/orders",
        "agent",
        201,
        body=lambda w, who: {"items": [{"name": "Áo thun", "quantity": 2, "unit_price": 150000}]},
        target=_c,
    ),
    Case("POST", "/api/conversations/{id}/orders/draft", "agent", 201),
    Case("PATCH", "/api/orders/{id}", "agent", body=lambda w, who: {"status": "shipped"}, target=_key("order")),
    Case("POST", "/api/segments/rfm/refresh", "supervisor"),
    Case("GET", "/api/segments", "agent"),
    Case(
        "POST",
        "/api/segments",
        "supervisor",
        201,
        body=lambda w, who: {"name": "Champions HN", "rules": {"rfm_segment": ["Champions"]}},
    ),
    Case("DELETE", "/api/segments/{id}", "supervisor", target=_key("segment")),
    Case("GET", "/api/reports/customers", "supervisor"),
    Case("GET", "/api/integrations/webhooks", "admin"),
    Case(
        "POST",
        "/api/integrations/webhooks",
        "admin",
        201,
        body=lambda w, who: {"url": "http://127.0.0.1:9/crm", "events": ["order.created"]},
    ),
    Case("DELETE", "/api/integrations/webhooks/{id}", "admin", target=_key("hook")),
    Case("GET", "/api/integrations/deliveries", "admin"),
]
