"""Signed outgoing webhooks for contact, conversation, message and order events, with retries and a delivery log.

`emit` writes one delivery row per subscribed endpoint (the log); the dispatcher POSTs pending rows with
`X-Hopthu-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the endpoint's secret>` and
`X-Hopthu-Timestamp`, retrying with exponential backoff (`BASE_DELAY × 2^attempt`) up to `MAX_ATTEMPTS`.
Conversation and message events come from the bus, so the ingest path needs no hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson

from contacts.models import WebhookDelivery, WebhookEndpoint
from inbox.bus import Event, EventBus

log = logging.getLogger(__name__)
EVENTS = (
    "contact.updated", "contact.merged", "contact.erased", "order.created", "order.updated",
    "conversation.created", "conversation.updated", "conversation.assigned", "message.created", "message.updated",
)  # fmt: skip
BUS_EVENTS = {e for e in EVENTS if e.startswith(("conversation.", "message."))}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


async def emit(event: str, data: dict[str, Any]) -> int:
    """Queue `event` for every active endpoint that wants it; returns how many deliveries were queued."""
    return await emit_many([(event, data)], await WebhookEndpoint.filter(active=True))


async def emit_many(events: list[tuple[str, dict[str, Any]]], endpoints: list[WebhookEndpoint]) -> int:
    """Queue each (event, data) for those of `endpoints` that want it, in one insert."""
    now = datetime.now(UTC)
    deliveries = [
        WebhookDelivery(
            endpoint=endpoint,
            event=event,
            payload={"event": event, "data": data, "occurred_at": now.isoformat()},
            next_attempt_at=now,
        )
        for event, data in events
        for endpoint in endpoints
        if not endpoint.events or event in endpoint.events
    ]
    if deliveries:
        await WebhookDelivery.bulk_create(deliveries)
    return len(deliveries)


class Dispatcher:
    BASE_DELAY = 2.0
    MAX_ATTEMPTS = 6

    def __init__(self, bus: EventBus, session: aiohttp.ClientSession, *, base_delay: float | None = None) -> None:
        self.bus, self.session = bus, session
        self.base_delay = self.BASE_DELAY if base_delay is None else base_delay
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._deliver_loop())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _listen(self) -> None:
        subscription = self.bus.subscribe(None, lambda e: e.type in BUS_EVENTS)
        try:
            while True:
                batch = await subscription.next_batch()
                if not batch:
                    if subscription.closed:
                        return
                    # A burst we could not follow (overflow): carry on from here rather than spin on [].
                    log.warning("outgoing webhooks fell behind a burst of events; some were not sent")
                    subscription.overflowed = False
                    continue
                await self._from_bus(batch)
        finally:
            subscription.close()

    async def _from_bus(self, batch: list[Event]) -> None:
        # One look at the endpoints per batch, not per event: most shops have none, and every message makes events.
        try:
            endpoints = await WebhookEndpoint.filter(active=True)
            if endpoints and await emit_many([(e.type, e.data) for e in batch], endpoints):
                self._wake.set()
        except Exception:
            log.exception("queueing an outgoing webhook failed")

    def kick(self) -> None:
        self._wake.set()

    async def _deliver_loop(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)
            self._wake.clear()
            try:
                await self.deliver_due()
            except Exception:
                log.exception("delivering outgoing webhooks failed")

    async def deliver_due(self) -> int:
        due = (
            await WebhookDelivery.filter(state="pending", next_attempt_at__lte=datetime.now(UTC))
            .select_related("endpoint")
            .order_by("id")
            .limit(100)
        )
        for delivery in due:
            await self.attempt(delivery)
        return len(due)

    async def attempt(self, delivery: WebhookDelivery) -> None:
        endpoint = delivery.endpoint
        body = orjson.dumps(delivery.payload)
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Hopthu-Event": delivery.event,
            "X-Hopthu-Delivery": str(delivery.id),
            "X-Hopthu-Timestamp": stamp,
            "X-Hopthu-Signature": sign(endpoint.secret, stamp, body),
        }
        delivery.attempts += 1
        try:
            async with self.session.post(endpoint.url, data=body, headers=headers, timeout=10) as response:
                delivery.last_status = response.status
                ok = 200 <= response.status < 300
                delivery.last_error = None if ok else f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            ok, delivery.last_error = False, f"{type(exc).__name__}: {exc}"[:500]
        if ok:
            delivery.state, delivery.delivered_at = "delivered", datetime.now(UTC)
        elif delivery.attempts >= self.MAX_ATTEMPTS:
            delivery.state = "failed"
        else:
            delay = self.base_delay * 2 ** (delivery.attempts - 1)
            delivery.next_attempt_at = datetime.now(UTC) + timedelta(seconds=delay)
        await delivery.save(
            update_fields=["attempts", "last_status", "last_error", "state", "delivered_at", "next_attempt_at"]
        )


def endpoint_json(e: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": e.id,
        "url": e.url,
        "events": e.events or [],
        "active": e.active,
        "created_at": e.created_at.isoformat(),
    }


def delivery_json(d: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "endpoint_id": d.endpoint_id,
        "event": d.event,
        "state": d.state,
        "attempts": d.attempts,
        "last_status": d.last_status,
        "last_error": d.last_error,
        "next_attempt_at": d.next_attempt_at.isoformat(),
        "created_at": d.created_at.isoformat(),
        "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
    }
