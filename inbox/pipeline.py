"""After the commit: enrich (NLP seam) → route (routing seam) → publish (event bus) → fetch profiles.

Everything here runs off the ack path; a failure here never loses the stored event.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from agents.routing import Router
from inbox.bus import Event, EventBus
from inbox.models import Message
from inbox.processing import Outcome
from inbox.profiles import ProfileFetcher
from inbox.serialize import conversation_json, message_json

log = logging.getLogger(__name__)

# An enricher reads inbound messages and stores what it finds on them (sentiment, intent, entities).
Enricher = Callable[[list[Message]], Awaitable[None]]


class PostCommitPipeline:
    def __init__(
        self, bus: EventBus, router: Router, profiles: ProfileFetcher | None, enrichers: list[Enricher] | None = None
    ) -> None:
        self.bus = bus
        self.router = router
        self.profiles = profiles
        self.enrichers = enrichers or []

    async def __call__(self, out: Outcome) -> None:
        inbound = [msg for _, _, msg in out.new_messages if msg.direction == "in"]
        for enrich in self.enrichers:
            try:
                await enrich(inbound)
            except Exception:  # enrichment is best effort: the message is already stored
                log.exception("enricher %r failed", enrich)
        waiting = [conv for conv, _ in out.changed_conversations.values() if conv.assignee_id is None]
        routed = await self.router.route(waiting) if waiting else []

        new_ids = {conv.id for conv in out.new_conversations}
        for conv_id, (conv, contact) in out.changed_conversations.items():
            kind = "conversation.created" if conv_id in new_ids else "conversation.updated"
            await self.bus.publish(
                Event(kind, conversation_json(conv, contact), inbox_id=conv.inbox_id, team_id=conv.team_id)
            )
        for conv, _, msg in out.new_messages:
            await self.bus.publish(
                Event("message.created", message_json(msg), inbox_id=conv.inbox_id, team_id=conv.team_id)
            )
        for conv, msg in out.updated_messages:
            await self.bus.publish(
                Event("message.updated", message_json(msg), inbox_id=conv.inbox_id, team_id=conv.team_id)
            )
        for event in routed:
            await self.bus.publish(event)
        if self.profiles is not None:
            for identity in out.identities_to_enrich:
                self.profiles.enqueue(identity.id)
