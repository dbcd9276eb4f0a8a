"""Typed application state (aiohttp's `web.AppKey`), set up by `inbox.app.create_app`."""

from __future__ import annotations

from aiohttp import ClientSession, web

from agents.bots import BotResponder
from inbox.bus import InProcessBus
from inbox.config import Settings
from inbox.coordination import Coordinator
from inbox.ingest import IngestWriter
from inbox.outbox import Outbox
from inbox.pipeline import PostCommitPipeline
from inbox.processing import InboundProcessor
from inbox.profiles import ProfileFetcher
from inbox.webhook_registry import InboxDirectory

SETTINGS = web.AppKey("settings", Settings)
BUS = web.AppKey("bus", InProcessBus)
INGEST = web.AppKey("ingest", IngestWriter)
PROCESSOR = web.AppKey("processor", InboundProcessor)
OUTBOX = web.AppKey("outbox", Outbox)
PROFILES = web.AppKey("profiles", ProfileFetcher)
HTTP = web.AppKey("http", ClientSession)
DIRECTORY = web.AppKey("directory", InboxDirectory)
BOTS = web.AppKey("bots", BotResponder)
PIPELINE = web.AppKey("pipeline", PostCommitPipeline)
COORDINATOR = web.AppKey("coordinator", Coordinator)  # locks, counters, sets shared by every server process
