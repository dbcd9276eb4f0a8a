"""`GET /metrics` in Prometheus' text format: ingest rate, webhook ack latency, queue length, outbox backlog,
WebSocket clients.

Counters and histograms live in one process-wide registry (the core increments them: `INGESTED`, `OUTBOX_SENDS`);
the gauges are read at scrape time from the running application (the database and the socket table), so they are
never stale and cost nothing between scrapes. Access: an admin session, or `Authorization: Bearer
<HOPTHU_METRICS_TOKEN>` when that variable is set (for the Prometheus scraper, which has no login).
"""

from __future__ import annotations

import functools
import hmac
import os
import time
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from inbox.api.guard import bearer_token, requires
from inbox.api.openapi import document, op
from inbox.db import connection

REGISTRY = CollectorRegistry(auto_describe=True)
CONTENT_TYPE = "text/plain; version=0.0.4"
METRICS_TOKEN_VARIABLE = "HOPTHU_METRICS_TOKEN"

INGESTED = Counter(
    "hopthu_ingested_events_total",
    "Events acknowledged by webhooks after storing them (redeliveries included): the ingest rate",
    ["channel"],
    registry=REGISTRY,
)
WEBHOOK_REQUESTS = Counter(
    "hopthu_webhook_requests_total", "Webhook requests by channel and status", ["channel", "status"], registry=REGISTRY
)
ACK_SECONDS = Histogram(
    "hopthu_webhook_ack_seconds",
    "Time from a webhook request to its 200 (the event is stored by then)",
    ["channel"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
OUTBOX_SENDS = Counter(
    "hopthu_outbox_attempts_total", "Outbox attempts by result: sent, retry (will try again), failed (gave up)",
    ["result"],
    registry=REGISTRY,
)  # fmt: skip


@web.middleware
async def webhook_timing(request: web.Request, handler: Any) -> web.StreamResponse:
    """Ack latency and status of every webhook request (other paths pass through untouched)."""
    if not request.path.startswith("/webhooks/") or request.method != "POST":
        return await handler(request)
    channel = request.path.split("/", 3)[2] or "unknown"
    if request.match_info.route.resource is None:  # no such webhook: no label for arbitrary names
        return await handler(request)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        _requests_of(channel, status).inc()
        if status == 200:
            _ack_seconds_of(channel).observe(time.perf_counter() - started)


@functools.cache
def _requests_of(channel: str, status: int) -> Any:
    """The labelled child, looked up once: `labels()` takes a lock and builds a tuple on every call."""
    return WEBHOOK_REQUESTS.labels(channel, str(status))


@functools.cache
def _ack_seconds_of(channel: str) -> Any:
    return ACK_SECONDS.labels(channel)


async def _scalar(sql: str) -> int:
    rows = await connection().execute_query_dict(sql)
    return int(next(iter(rows[0].values())) or 0) if rows else 0


async def _live_gauges(app: web.Application) -> list[GaugeMetricFamily]:
    from inbox.realtime import SOCKETS_PER_USER

    queue = GaugeMetricFamily("hopthu_inbound_queue_length", "Stored webhook events not yet processed")
    queue.add_metric([], await _scalar("SELECT COUNT(*) FROM inbound_events WHERE processed = false"))
    backlog = GaugeMetricFamily("hopthu_outbox_backlog", "Replies waiting to be sent (pending outbox items)")
    backlog.add_metric([], await _scalar("SELECT COUNT(*) FROM outbox WHERE state = 'pending'"))
    sockets = app.get(SOCKETS_PER_USER) or {}
    clients = GaugeMetricFamily("hopthu_websocket_clients", "Open agent WebSockets")
    clients.add_metric([], sum(sockets.values()))
    agents = GaugeMetricFamily("hopthu_websocket_agents", "Agents with at least one open WebSocket")
    agents.add_metric([], len(sockets))
    return [queue, backlog, clients, agents]


class _Snapshot:
    """A one-scrape collector holding gauges already read (prometheus_client collects synchronously)."""

    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self) -> list[GaugeMetricFamily]:
        return self.families


def _metrics_token(app: web.Application) -> str:
    from inbox.keys import SETTINGS  # not at import time: the core imports this module for its counters

    settings = app.get(SETTINGS)
    configured = settings.extra.get(METRICS_TOKEN_VARIABLE) if settings is not None else None
    return configured or os.environ.get(METRICS_TOKEN_VARIABLE, "")


async def _render(request: web.Request) -> web.Response:
    live = CollectorRegistry(auto_describe=False)
    live.register(_Snapshot(await _live_gauges(request.app)))
    body = generate_latest(REGISTRY) + generate_latest(live)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


_admin_metrics = requires("admin")(_render)


async def metrics(request: web.Request) -> web.Response:
    token, wanted = bearer_token(request), _metrics_token(request.app)
    if token and wanted and hmac.compare_digest(token.encode(), wanted.encode()):
        return await _render(request)
    return await _admin_metrics(request)


metrics.required_role = "admin"  # type: ignore[attr-defined]  # or the scraper's token
routes = [web.get("/metrics", metrics)]

document(
    {
        "/metrics": {
            "get": op(
                "Prometheus metrics (admins, or the HOPTHU_METRICS_TOKEN bearer token)",
                {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}},
                role="admin",
                tag="ops",
            )
        }
    }
)
