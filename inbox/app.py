"""The application factory: routes, middlewares and every long-lived resource in `cleanup_ctx`.

Start-up order follows the data: database (migrated) → HTTP client → bus → outbox → profiles → processor
(which drains anything stored before a crash) → ingest writer. Shut-down runs in reverse.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web

from agents import business_hours
from agents import presence as presence_service
from agents.bots import BotResponder
from agents.csat import Csat
from agents.live import SUPERVISION, Supervision, supervisors_connected
from agents.routing import ROUTER, QueueRouter
from agents.sla import SlaChecker
from channels.telegram import TelegramClient
from channels.zalo import ZaloClient
from contacts import masking
from contacts.integrations import Dispatcher
from inbox import actions, db, frontend, metrics, security, webchat
from inbox.api import activity as activity_api
from inbox.api import admin, auth_routes, bots, bulk, comments, conversations, routing_settings, telegram_files
from inbox.api import audit as audit_api
from inbox.api import contacts as contacts_api
from inbox.api import integrations as integrations_api
from inbox.api import mentions as mentions_api
from inbox.api import orders as orders_api
from inbox.api import reports as reports_api
from inbox.api import segments as segments_api
from inbox.api import zalo as zalo_api
from inbox.api.openapi import routes as openapi_routes
from inbox.autohide import COMMENTS, CommentWorker
from inbox.bus import InProcessBus
from inbox.config import Settings
from inbox.coordination import LogLeader, coordinator
from inbox.enrich import NlpEnricher
from inbox.http import error_middleware, for_agents, json_response, lets_sockets_through
from inbox.ingest import IngestWriter
from inbox.keys import BOTS, BUS, COORDINATOR, DIRECTORY, HTTP, INGEST, OUTBOX, PIPELINE, PROCESSOR, PROFILES, SETTINGS
from inbox.outbox import Outbox
from inbox.pipeline import PostCommitPipeline
from inbox.processing import InboundProcessor
from inbox.profiles import ProfileFetcher
from inbox.realtime import SOCKETS_PER_USER, heartbeats
from inbox.realtime import routes as realtime_routes
from inbox.senders import FacebookSender, ZaloSender
from inbox.senders_telegram import TelegramSender
from inbox.senders_webchat import WebchatSender
from inbox.webhook_registry import InboxDirectory
from inbox.webhooks import routes as webhook_routes
from inbox.webhooks_telegram import TELEGRAM
from inbox.webhooks_telegram import routes as telegram_webhook_routes
from inbox.zalo_tokens import ZALO_TOKENS, ZaloTokens

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
    await bus.start()
    facebook = FacebookSender(settings.facebook_graph_url, session)
    zalo_client = ZaloClient(settings.zalo_openapi_url, settings.zalo_oauth_url, session)
    tokens = app[ZALO_TOKENS] = ZaloTokens(zalo_client)
    zalo = ZaloSender(zalo_client, tokens)
    comments = app[COMMENTS] = CommentWorker(bus, facebook.client)
    telegram_client = app[TELEGRAM] = TelegramClient(settings.telegram_api_url)
    telegram = TelegramSender(telegram_client)
    outbox = Outbox(
        bus,
        {"facebook": facebook, "webchat": WebchatSender(), "zalo": zalo, "telegram": telegram},
        base_delay=settings.outbox_base_delay,
        max_attempts=settings.outbox_max_attempts,
    )
    sources = {"facebook": facebook, "zalo": zalo, "telegram": telegram}
    profiles = ProfileFetcher(bus, sources if settings.profile_fetch else {})
    committed = asyncio.Event()
    responder = app[BOTS] = BotResponder(bus, outbox, hours_open=business_hours.is_open)
    away_after = presence_service.away_after_from_env()
    presence = app[presence_service.PRESENCE] = presence_service.Presence(bus, away_after=away_after)
    router = app[ROUTER] = QueueRouter(bus, away_after=away_after)
    csat = Csat(bus, outbox)
    pipeline = app[PIPELINE] = PostCommitPipeline(bus, router, profiles, bots=responder, csat=csat)
    # Sentiment, intent and entities of customers' messages, in a worker process (or thread: HOPTHU_NLP_WORKER).
    nlp_enricher = NlpEnricher(bus, worker=settings.nlp_worker)
    pipeline.enrichers.insert(0, nlp_enricher)
    pipeline.preparers.append(nlp_enricher.prepare)  # analysis starts while the processor writes the batch
    pipeline.enrichers.append(comments)  # auto-hide comments that show a phone or an address
    writer = IngestWriter(on_committed=committed, sqlite_thread=settings.database_url.startswith("sqlite"))
    # Several processes (Redis between them) on one Postgres database: one applies the inbound log at a time, so
    # events reach the shared bus in the log's order. A single process applies what it stores, as always.
    several = bool(settings.redis_url) and settings.database_url.startswith("postgres")
    leader = LogLeader(settings.database_url, committed) if several else None
    processor = InboundProcessor(
        pipeline,
        committed,
        acks_waiting=writer.waiting,
        acks_caught_up=writer.caught_up,
        acks_arrived=writer.arrived,
        leader=leader,
        before_apply=pipeline.prepare,
        finished_analyses=nlp_enricher.finished,
    )
    app[OUTBOX], app[PROFILES], app[PROCESSOR], app[INGEST] = outbox, profiles, processor, writer
    for service in (outbox, profiles, processor, writer):
        service.start()
    comments.start()
    nlp_enricher.start()
    tokens.start()
    waker = asyncio.create_task(_wake_snoozed(app), name="snooze-waker")
    retry = settings.extra.get("webhook_retry_base_delay")
    webhooks_out = Dispatcher(bus, session, base_delay=float(retry) if retry is not None else None)  # signed, logged
    webhooks_out.start()
    tick = float(settings.extra.get("supervision_tick_seconds", 5.0))
    watched = supervisors_connected(app[SOCKETS_PER_USER])
    supervision = app[SUPERVISION] = Supervision(
        bus, router, presence, SlaChecker(bus), csat, tick_seconds=tick, watched=watched
    )
    supervision.start()  # routing ticks, queue drains, SLA checks, metric projection, live queue push
    app[READY].set()
    yield
    waker.cancel()
    stops = [supervision.stop, webhooks_out.stop, tokens.stop, comments.stop, nlp_enricher.stop]
    stops += [writer.stop, processor.stop, profiles.stop, outbox.stop, bus.close, app[COORDINATOR].close]
    for stop in [*stops, telegram_client.close, session.close]:
        await _bounded(stop)


async def _bounded(stop: Callable[[], Awaitable[object]], seconds: float = 10.0) -> None:
    """Shut one service down; one that does not stop in time is logged and left, so shutdown never hangs."""
    try:
        await asyncio.wait_for(stop(), seconds)
    except TimeoutError:
        log.error("%s did not stop within %.0f s; shutting down without it", stop, seconds)
    except Exception:
        log.exception("%s failed while stopping", stop)


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


def _bus(settings: Settings) -> InProcessBus:
    """Several server processes share events through Redis (`HOPTHU_REDIS_URL`); one process needs nothing."""
    if settings.redis_url:
        from inbox.bus_redis import RedisBus

        return RedisBus(settings.redis_url, settings.event_buffer_size)  # type: ignore[return-value]
    return InProcessBus(settings.event_buffer_size)


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        # Sockets and webhooks skip the middlewares that do nothing to them (a frame per open socket or request).
        middlewares=[
            lets_sockets_through(metrics.webhook_timing),
            lets_sockets_through(error_middleware),  # a socket's handshake is in `ContractErrors` itself
            for_agents(masking.mask_responses),  # webhooks and sockets answer nothing to mask
            # Any API request keeps its agent from turning "away".
            for_agents(presence_service.activity_middleware),
        ],
        client_max_size=1024 * 1024,
    )
    security.install(app, settings)  # CSP and the usual headers on every response; WebSocket origins
    app.on_cleanup.append(bulk.cancel_jobs)
    app[SETTINGS] = settings
    app[BUS] = _bus(settings)
    app[COORDINATOR] = coordinator(settings.redis_url)
    app[DIRECTORY] = InboxDirectory()
    app[READY] = asyncio.Event()
    app[SOCKETS_PER_USER] = Counter()
    app.cleanup_ctx.extend([_database, _services, heartbeats])
    webchat.setup(app)  # the live-chat widget's routes and per-visitor limits
    app.router.add_get("/healthz", healthz)
    for table in (
        webhook_routes,
        telegram_webhook_routes,
        telegram_files.routes,
        auth_routes.routes,
        conversations.routes,
        activity_api.routes,
        mentions_api.routes,
        admin.routes,
        realtime_routes,
        openapi_routes,
        audit_api.routes,
        bulk.routes,
        metrics.routes,
        bots.routes,
        contacts_api.routes,
        orders_api.routes,
        segments_api.routes,
        integrations_api.routes,
        comments.routes,
        zalo_api.routes,
        reports_api.routes,
        routing_settings.routes,
        frontend.routes,
    ):
        app.router.add_routes(table)
    return app
