"""Customer names and pictures from the platform, fetched off the ack path and cached on the identity."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Protocol

from tortoise.transactions import in_transaction

from channels.base import Profile, SendError
from contacts.audience import contact_events
from contacts.models import Contact, ContactIdentity
from inbox.bus import EventBus
from inbox.models import Inbox
from inbox.processing import update_contact_search
from inbox.serialize import contact_summary

log = logging.getLogger(__name__)
REFRESH_AFTER = timedelta(days=7)


class ProfileSource(Protocol):
    async def fetch_profile(self, inbox: Inbox, identity: ContactIdentity) -> Profile: ...


class ProfileFetcher:
    def __init__(self, bus: EventBus, sources: dict[str, ProfileSource], concurrency: int = 4) -> None:
        self._bus = bus
        self._sources = sources
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._queued: set[int] = set()
        self._concurrency = concurrency
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker(), name="profiles") for _ in range(self._concurrency)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def enqueue(self, identity_id: int) -> None:
        if identity_id not in self._queued:
            self._queued.add(identity_id)
            self._queue.put_nowait(identity_id)

    async def idle(self) -> None:
        await self._queue.join()

    async def _worker(self) -> None:
        while True:
            identity_id = await self._queue.get()
            try:
                await self.fetch(identity_id)
            except Exception:
                log.exception("profile fetch for identity %s failed", identity_id)
            finally:
                self._queued.discard(identity_id)
                self._queue.task_done()

    async def fetch(self, identity_id: int) -> None:
        identity = await ContactIdentity.get_or_none(id=identity_id)
        if identity is None:
            return
        fetched = identity.profile_fetched_at
        if fetched is not None and datetime.now(UTC) - fetched < REFRESH_AFTER:
            return
        inbox = await Inbox.get(id=identity.inbox_id)
        source = self._sources.get(inbox.channel)
        if source is None:
            return
        try:
            profile = await source.fetch_profile(inbox, identity)
        except SendError as error:
            log.info("profile for identity %s not available: %s", identity_id, error.reason)
            return
        async with in_transaction() as conn:
            identity.name, identity.picture_url = profile.name, profile.picture_url
            identity.profile_fetched_at = datetime.now(UTC)
            await identity.save(using_db=conn, update_fields=["name", "picture_url", "profile_fetched_at"])
            contact = await Contact.get(id=identity.contact_id).using_db(conn)
            # The platform's name fills an empty profile; a name an agent typed is never overwritten.
            if not contact.name and profile.name:
                contact.name = profile.name
            if not contact.picture_url and profile.picture_url:
                contact.picture_url = profile.picture_url
            await contact.save(using_db=conn, update_fields=["name", "picture_url"])
            await update_contact_search(conn, contact)
        for event in await contact_events("contact.updated", contact_summary(contact) or {}, contact.id):
            await self._bus.publish(event)
