"""Routing seam: decides who gets a conversation once it is stored.

The core ships the `manual` policy: conversations wait unassigned in the inbox until a person assigns them.
Round-robin, least-busy, capacity and queues plug in here with the same interface.
"""

from __future__ import annotations

from typing import Protocol

from inbox.bus import Event
from inbox.models import Conversation


class Router(Protocol):
    async def route(self, conversations: list[Conversation]) -> list[Event]:
        """Assign what the policy assigns; return the events to publish about it."""
        ...


class ManualRouting:
    async def route(self, conversations: list[Conversation]) -> list[Event]:
        return []
