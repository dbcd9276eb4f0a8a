"""Which inbox a webhook belongs to, cached so the ack path does not query for it on every request."""

from __future__ import annotations

import time
from dataclasses import dataclass

from inbox.models import Inbox

REFRESH_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class InboxRef:
    id: int
    channel: str
    external_id: str
    credentials: dict


class InboxDirectory:
    def __init__(self) -> None:
        self._by_account: dict[tuple[str, str], InboxRef] = {}
        self._loaded_at = 0.0

    async def refresh(self) -> None:
        rows = await Inbox.all().values("id", "channel", "external_id", "credentials")
        self._by_account = {(r["channel"], r["external_id"]): InboxRef(**r) for r in rows}
        self._loaded_at = time.monotonic()

    async def _ensure_fresh(self, force: bool = False) -> None:
        if force or time.monotonic() - self._loaded_at > REFRESH_SECONDS:
            await self.refresh()

    async def of_channel(self, channel: str, *, force: bool = False) -> list[InboxRef]:
        await self._ensure_fresh(force)
        return [ref for (ch, _), ref in self._by_account.items() if ch == channel]

    async def find(self, channel: str, account_id: str) -> InboxRef | None:
        await self._ensure_fresh()
        ref = self._by_account.get((channel, account_id))
        if ref is None:  # an inbox added a moment ago by another process
            await self.refresh()
            ref = self._by_account.get((channel, account_id))
        return ref
