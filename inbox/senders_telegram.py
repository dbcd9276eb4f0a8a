"""Telegram's sender for the outbox and profile source, through aiogram (`channels.telegram.TelegramClient`).

Bots have no messaging window: a customer who wrote to the bot can be answered at any time, unless they blocked
it, which the Bot API reports on the send (a failed message with a readable reason, not retried). Flood control
(429) is retried no sooner than Telegram's `retry_after`.
"""

from __future__ import annotations

from datetime import datetime

from channels.base import Profile, SendResult
from channels.telegram import TelegramClient
from contacts.models import ContactIdentity
from inbox.models import Conversation, Inbox, Message
from inbox.outbox import SendPlan, WindowClosed


class TelegramSender:
    def __init__(self, client: TelegramClient) -> None:
        self.client = client

    def plan(self, conv: Conversation, msg: Message, at: datetime) -> SendPlan:
        if conv.last_incoming_at is None:
            # A bot may only write to someone who started it; hopthu only knows chats that wrote first.
            raise WindowClosed("Khách chưa nhắn cho bot nên chưa thể gửi (the customer has not started the bot)")
        return SendPlan()

    async def send(self, inbox: Inbox, identity: ContactIdentity, msg: Message, plan: SendPlan) -> SendResult:
        return await self.client.send_text(inbox.credentials["bot_token"], identity.external_id, msg.text or "")

    async def fetch_profile(self, inbox: Inbox, identity: ContactIdentity) -> Profile:
        return await self.client.fetch_profile(inbox.credentials["bot_token"], identity.external_id)
