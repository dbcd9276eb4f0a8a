"""After the commit: publish what was stored → enrich (NLP) → bot decides → route → publish what they changed →
bot answers → fetch profiles.

Everything here runs off the ack path; a failure here never loses the stored event.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from agents.bots import BotResponder
from agents.csat import Csat
from agents.routing import Router
from contacts.models import Contact
from inbox.bus import Event, EventBus
from inbox.enrich import refresh_conversations
from inbox.models import Conversation, Message
from inbox.processing import Outcome
from inbox.profiles import ProfileFetcher
from inbox.serialize import conversation_json, message_json

log = logging.getLogger(__name__)

# An enricher reads inbound messages and stores what it finds on them (sentiment, intent, entities).
Enricher = Callable[[list[Message]], Awaitable[None]]


class PostCommitPipeline:
    def __init__(
        self,
        bus: EventBus,
        router: Router,
        profiles: ProfileFetcher | None,
        enrichers: list[Enricher] | None = None,
        bots: BotResponder | None = None,
        csat: Csat | None = None,
    ) -> None:
        self.bots = bots
        self.csat = csat  # reads customers' answers to satisfaction surveys before anything else reacts
        self.bus = bus
        # The newest inbound message that has been through every step (tests and diagnostics wait on it).
        self.handled_up_to = 0
        self.router = router
        self.profiles = profiles
        self.enrichers = enrichers or []
        # Told the customers' texts of a batch before it is applied, to start on them early (NLP: `prepare`).
        self.preparers: list[Callable[[list[str]], None]] = []

    def prepare(self, records: list[dict]) -> None:
        """The inbound log records the processor is about to apply."""
        texts = [
            text
            for r in records
            if r.get("kind") == "message" and r.get("direction") == "in" and isinstance(text := r.get("text"), str)
        ]
        if not texts:
            return
        for prepare in self.preparers:
            try:
                prepare(texts)
            except Exception:  # only a head start: the enricher analyses the batch anyway
                log.exception("preparing %r failed", prepare)

    async def __call__(self, out: Outcome) -> None:
        # What was stored goes out first, as soon as it is committed: an agent sees the customer's message before
        # NLP, bots and routing have looked at it, and what they change follows as updates (message.updated with
        # the NLP results, conversation.updated / conversation.assigned). Only where the readers are settled: a
        # conversation with neither a team nor an agent may get a team from routing, and that team's agents would
        # miss frames sent before it — those go out after routing, as they are then.
        settled = {cid for cid, (conv, _) in out.changed_conversations.items() if _settled(conv)}
        shown = await self._publish_stored(out, settled)
        for conv, msg in out.updated_messages:
            await self.bus.publish(
                Event("message.updated", message_json(msg), inbox_id=conv.inbox_id, team_id=conv.team_id)
            )
        inbound = [msg for _, _, msg in out.new_messages if msg.direction == "in"]
        # Read again: new text, maybe a phone number now (a message edited twice in a batch: its latest text).
        edits = list({msg.id: (conv, msg) for conv, msg in out.edited_messages}.values())
        edited = [msg for _, msg in edits]
        # Messages whose analysis was in when they were stored went out with it; the others are analysed here.
        unanalysed = [msg for msg in inbound + edited if msg.sentiment is None]
        for enrich in self.enrichers:
            try:
                await enrich(inbound + edited)
            except Exception:  # enrichment is best effort: the message is already stored
                log.exception("enricher %r failed", enrich)
        enriched = [msg for msg in unanalysed if msg.sentiment is not None]  # NLP results, stored by inbox/enrich.py
        if enriched:
            await refresh_conversations([conv for conv, _ in out.changed_conversations.values()])
        rated = await self.csat.absorb(out) if self.csat else set()  # a rating only: resolved again, not routed
        # The bot keeps the conversations it is answering out of routing; what it hands off is routed now.
        plan = await self.bots.decide(out) if self.bots else None
        held = plan.held if plan else set()
        waiting = [
            conv
            for conv, _ in out.changed_conversations.values()
            if conv.assignee_id is None and conv.id not in held and conv.id not in rated
        ]
        routed = await self.router.route(waiting, inbound) if waiting else []
        await self._publish_stored(out, set(out.changed_conversations) - settled)

        enriched_ids = {msg.id for msg in enriched}
        news = [(conv, msg) for conv, _, msg in out.new_messages]
        for conv, msg in news + edits:  # the NLP results, as the contract's message.updated
            if msg.id in enriched_ids:
                await self.bus.publish(
                    Event("message.updated", message_json(msg), inbox_id=conv.inbox_id, team_id=conv.team_id)
                )
        # Edits read again, and edits that left no text (their analysis and its share of the summary are gone).
        resummarised = [(conv, msg) for conv, msg in edits if msg.id in enriched_ids or not (msg.text or "").strip()]
        await self._publish_edited_summaries(out, resummarised)
        assigned = {event.data.get("id") for event in routed if event.type == "conversation.assigned"}
        for conv_id, (conv, contact) in out.changed_conversations.items():
            if conv_id not in shown or conv_id in assigned:
                continue  # shown as it is now, or conversation.assigned carries it (NLP summary included)
            data = conversation_json(conv, contact)
            if data != shown[conv_id]:  # the NLP summary (sentiment, intent) or the bot changed it
                await self.bus.publish(
                    Event("conversation.updated", data, inbox_id=conv.inbox_id, team_id=conv.team_id)
                )
        for event in routed:
            await self.bus.publish(event)
        if plan is not None and plan.replies:
            await self.bots.act(plan)  # after the customer's message is out, so agents see them in order
        if self.profiles is not None:
            for identity in out.identities_to_enrich:
                self.profiles.enqueue(identity.id)
        if inbound:
            self.handled_up_to = max(self.handled_up_to, max(msg.id for msg in inbound))

    async def _publish_edited_summaries(self, out: Outcome, analysed: list[tuple[Conversation, Message]]) -> None:
        """conversation.updated where the new analysis of edited messages changed their conversation's NLP summary
        (an edit leaves the conversation out of `changed_conversations`: nothing else about it changed)."""
        convs = {conv.id: conv for conv, _ in analysed if conv.id not in out.changed_conversations}
        if not convs:
            return
        before = {conv.id: (conv.sentiment, conv.worst_sentiment, conv.intent) for conv in convs.values()}
        await refresh_conversations(list(convs.values()))
        changed = [
            conv for conv in convs.values() if (conv.sentiment, conv.worst_sentiment, conv.intent) != before[conv.id]
        ]
        contacts = (
            {c.id: c for c in await Contact.filter(id__in=[conv.contact_id for conv in changed])} if changed else {}
        )
        for conv in changed:
            data = conversation_json(conv, contacts.get(conv.contact_id))
            await self.bus.publish(Event("conversation.updated", data, inbox_id=conv.inbox_id, team_id=conv.team_id))

    async def _publish_stored(self, out: Outcome, conv_ids: set[int]) -> dict[int, dict]:
        """conversation.created / .updated and message.created for these conversations; returns them as published."""
        new_ids = {conv.id for conv in out.new_conversations}
        shown: dict[int, dict] = {}
        for conv_id, (conv, contact) in out.changed_conversations.items():
            if conv_id in conv_ids:
                kind = "conversation.created" if conv_id in new_ids else "conversation.updated"
                shown[conv_id] = conversation_json(conv, contact)
                await self.bus.publish(Event(kind, shown[conv_id], inbox_id=conv.inbox_id, team_id=conv.team_id))
        for conv, _, msg in out.new_messages:
            if conv.id in conv_ids:
                await self.bus.publish(
                    Event("message.created", message_json(msg), inbox_id=conv.inbox_id, team_id=conv.team_id)
                )
        return shown


def _settled(conv: Conversation) -> bool:
    """Its readers will not change in this batch: routing keeps a team once set and skips assigned ones."""
    return conv.team_id is not None or conv.assignee_id is not None
