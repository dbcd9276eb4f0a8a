"""The application factory: routes, middlewares and every long-lived resource in `cleanup_ctx`.

Start-up order follows the data: database (migrated) → HTTP client → bus → outbox → profiles → processor
(which drains anything stored before a crash) → ingest writer. Shut-down runs in reverse.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from agents.routing import ManualRouting
from inbox import actions, db
from inbox.api import admin, auth_routes, conversations
from inbox.api.openapi import routes as openapi_routes
from inbox.bus import InProcessBus
from inbox.config import Settings
from inbox.http import error_middleware, json_response
from inbox.ingest import IngestWriter
from inbox.keys import BUS, DIRECTORY, HTTP, INGEST, OUTBOX, PROCESSOR, PROFILES, SETTINGS
from inbox.outbox import Outbox
from inbox.pipeline import PostCommitPipeline
from inbox.processing import InboundProcessor
from inbox.profiles import ProfileFetcher
from inbox.realtime import SOCKETS_PER_USER
from inbox.realtime import routes as realtime_routes
from inbox.senders import FacebookSender
from inbox.webhook_registry import InboxDirectory
from inbox.webhooks import routes as webhook_routes

log = logging.getLogger(__name__)
READY = web.AppKey("ready", asyncio.Event)


async def _database(app: web.Application) -> AsyncIterator[None]:
    await db.connect(app[SETTINGS].database_url)
    await app[DIRECTORY].refresh()
    yield
    await db.disconnect()


async def _services(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))
    app[HTTP] = session
    bus = app[BUS]
    facebook = FacebookSender(settings.facebook_graph_url, session)
    outbox = Outbox(
        bus,
        {"facebook": facebook},
        base_delay=settings.outbox_base_delay,
        max_attempts=settings.outbox_max_attempts,
    )
    profiles = ProfileFetcher(bus, {"facebook": facebook} if settings.profile_fetch else {})
    committed = asyncio.Event()
    pipeline = PostCommitPipeline(bus, ManualRouting(), profiles)
    writer = IngestWriter(on_committed=committed)
    processor = InboundProcessor(pipeline, committed, acks_waiting=writer.waiting)
    app[OUTBOX], app[PROFILES], app[PROCESSOR], app[INGEST] = outbox, profiles, processor, writer
    for service in (outbox, profiles, processor, writer):
        service.start()
    waker = asyncio.create_task(_wake_snoozed(app), name="snooze-waker")
    app[READY].set()
    yield
    waker.cancel()
    for service in (writer, processor, profiles, outbox):
        await service.stop()
    await bus.close()
    await session.close()


async def _wake_snoozed(app: web.Application) -> None:
    while True:
        await asyncio.sleep(15)
        try:
            await actions.wake_snoozed(app[BUS])
        except Exception:
            log.exception("waking snoozed conversations failed")


async def healthz(request: web.Request) -> web.Response:
    if not request.app[READY].is_set():
        return json_response({"status": "starting"}, status=503)
    try:
        await db.connection().execute_query("SELECT 1")
    except Exception as exc:
        return json_response({"status": "database unavailable", "detail": str(exc)}, status=503)
    return json_response({"status": "ok"})


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=1024 * 1024)
    app[SETTINGS] = settings
    app[BUS] = InProcessBus(settings.event_buffer_size)
    app[DIRECTORY] = InboxDirectory()
    app[READY] = asyncio.Event()
    app[SOCKETS_PER_USER] = Counter()
    app.cleanup_ctx.extend([_database, _services])
    app.router.add_get("/healthz", healthz)
    for table in (
        webhook_routes,
        auth_routes.routes,
        conversations.routes,
        admin.routes,
        realtime_routes,
        openapi_routes,
    ):
        app.router.add_routes(table)
    return app
