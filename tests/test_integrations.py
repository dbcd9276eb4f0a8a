"""Signed outgoing webhooks: contact, conversation, message and order events reach a CRM, retried after a
failure, with every attempt in the delivery log."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace

from aiohttp import web

from contacts.models import WebhookDelivery
from inbox.app import create_app
from inbox.models import Conversation
from tests.conftest import eventually, make_inbox, quick_user, send_text


async def test_signed_webhooks_with_retries_and_delivery_log(aiohttp_client, aiohttp_server, settings, fake_graph):
    received: list[tuple[dict, bytes]] = []
    failures = {"left": 1}

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        if failures["left"] > 0:  # the CRM is down once: the delivery must be retried
            failures["left"] -= 1
            return web.Response(status=503)
        received.append((dict(request.headers), body))
        return web.Response(status=200)

    crm = web.Application()
    crm.router.add_post("/hook", hook)
    server = await aiohttp_server(crm)
    client = await aiohttp_client(create_app(replace(settings, extra={"webhook_retry_base_delay": "0.05"})))
    await make_inbox()
    admin = await quick_user("admin")
    created = await client.post(
        "/api/integrations/webhooks",
        json={"url": str(server.make_url("/hook")), "events": ["message.created", "contact.updated"]},
        headers=admin.headers,
    )
    assert created.status == 201, await created.text()
    secret = (await created.json())["secret"]
    listed = await (await client.get("/api/integrations/webhooks", headers=admin.headers)).text()
    assert secret not in listed  # shown once

    await send_text(client, "PSID-H", "mh1", "Shop ơi")
    conv = await eventually(lambda: Conversation.get_or_none(channel="facebook"))
    await client.patch(f"/api/contacts/{conv.contact_id}", json={"city": "Đà Nẵng"}, headers=admin.headers)

    async def both() -> bool:
        return {h["X-Hopthu-Event"] for h, _ in received} >= {"message.created", "contact.updated"}

    await eventually(both)
    for headers, body in received:
        expected = hmac.new(secret.encode(), headers["X-Hopthu-Timestamp"].encode() + b"." + body, hashlib.sha256)
        assert headers["X-Hopthu-Signature"] == "sha256=" + expected.hexdigest()
    events = {h["X-Hopthu-Event"] for h, _ in received}
    assert "conversation.updated" not in events  # only what the endpoint subscribed to
    log = await (await client.get("/api/integrations/deliveries", headers=admin.headers)).json()
    retried = [d for d in log["items"] if d["attempts"] == 2]
    assert len(retried) == 1 and retried[0]["state"] == "delivered" and retried[0]["last_status"] == 200
    assert all(d["state"] == "delivered" for d in log["items"])
    assert await WebhookDelivery.filter(state="pending").count() == 0
