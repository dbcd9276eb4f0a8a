"""Website live chat's sender for the outbox.

There is no platform in between: an agent's reply reaches the visitor's widget through the event bus the moment
it is stored (`message.created`, filtered per visitor in `inbox.webchat`). The outbox still runs it, so the reply
gets the same delivery states as on every channel (pending → sent → read when the visitor reads it).
"""

from __future__ import annotations

from datetime import datetime

from channels.base import SendResult
from contacts.models import ContactIdentity
from inbox.models import Conversation, Inbox, Message
from inbox.outbox import SendPlan


class WebchatSender:
    def plan(self, conv: Conversation, msg: Message, at: datetime) -> SendPlan:
        return SendPlan()  # no messaging window: the visitor sees the reply whenever they come back

    async def send(self, inbox: Inbox, identity: ContactIdentity, msg: Message, plan: SendPlan) -> SendResult:
        return SendResult(external_id=f"wc-out:{msg.id}")
