"""Shared helpers (no tests here) for the routing, presence and report tests: a controlled clock, an app whose
background tick stays out of the way, conversations made straight in the database, and online agents."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from agents.models import AgentState
from agents.routing import ROUTER, QueueRouter
from contacts.models import Contact, ContactIdentity
from inbox import db
from inbox.app import create_app
from inbox.config import Settings
from inbox.models import Conversation, Inbox
from inbox.processing import record
from tests.conftest import Staff, quick_user

_counter = itertools.count(1)


class Clock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 2, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
async def client(aiohttp_client: Callable[..., Awaitable[TestClient]], settings: Settings) -> TestClient:
    """The app with its periodic tick out of the way: tests call `maintain`, `tick` and `project` themselves."""
    quiet = dataclasses.replace(settings, extra={**settings.extra, "supervision_tick_seconds": "3600"})
    return await aiohttp_client(create_app(quiet))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def router(client: TestClient, clock: Clock) -> QueueRouter:
    router = client.app[ROUTER]
    router.clock = clock
    return router


async def set_routing(inbox: Inbox, router: QueueRouter | None = None, **routing: Any) -> None:
    inbox.settings = {**(inbox.settings or {}), "routing": {"policy": "round_robin", **routing}}
    await inbox.save(update_fields=["settings"])
    if router is not None:
        router.forget(inbox.id)


async def online_agent(inbox: Inbox, *, capacity: int | None = None, status: str = "online", at=None) -> Staff:
    staff = await quick_user("agent", inboxes=[inbox])
    await AgentState.create(user_id=staff.user.id, status=status, connections=1, capacity=capacity, last_active_at=at)
    return staff


async def conversation(
    inbox: Inbox,
    *,
    at: datetime | None = None,
    sentiment: str | None = None,
    intent: str | None = None,
    contact: Contact | None = None,
    tags: list[str] | None = None,
    thread: str = "dm",
) -> Conversation:
    """A customer's open conversation with one waiting message (events included), made without the pipeline."""
    at = at or datetime.now(UTC)
    n = next(_counter)
    if contact is None:
        contact = await Contact.create(name=f"Khách {n}", tags=tags or [], first_seen_at=at, last_seen_at=at)
    identity = await ContactIdentity.get_or_none(contact_id=contact.id, inbox_id=inbox.id)
    if identity is None:
        identity = await ContactIdentity.create(
            contact=contact, inbox=inbox, channel=inbox.channel, external_id=f"P{n}"
        )
    conv = await Conversation.create(
        inbox=inbox, contact=contact, identity=identity, channel=inbox.channel, thread_key=thread, status="open",
        last_activity_at=at, last_incoming_at=at, last_message_at=at, sentiment=sentiment, intent=intent,
    )  # fmt: skip
    conn = db.connection()
    await record(conn, conv, "opened", "contact", contact.id, at)
    await record(conn, conv, "message_in", "contact", contact.id, at)
    return conv


async def open_load(user_id: int) -> int:
    return await Conversation.filter(assignee_id=user_id, status="open").count()
