"""Per-channel glue between the outbox / profile fetcher and the pure channel adapters."""

from __future__ import annotations

from datetime import datetime

import aiohttp

from channels.base import Profile, SendResult
from channels.facebook import GraphClient
from contacts.models import ContactIdentity
from inbox.models import Conversation, Inbox, Message
from inbox.outbox import SendPlan, messenger_plan


class FacebookSender:
    def __init__(self, graph_url: str, session: aiohttp.ClientSession) -> None:
        self.client = GraphClient(graph_url, session)

    def plan(self, conv: Conversation, msg: Message, at: datetime) -> SendPlan:
        return messenger_plan(conv.last_incoming_at, at, human=msg.sender_type == "agent")

    async def send(self, inbox: Inbox, identity: ContactIdentity, msg: Message, plan: SendPlan) -> SendResult:
        return await self.client.send_message(
            inbox.credentials["page_token"],
            identity.external_id,
            text=msg.text,
            messaging_type=plan.messaging_type,
            tag=plan.tag,
            metadata=f"hopthu:{msg.id}",  # lets the echo be matched to this message
        )

    async def fetch_profile(self, inbox: Inbox, identity: ContactIdentity) -> Profile:
        return await self.client.fetch_profile(inbox.credentials["page_token"], identity.external_id)
