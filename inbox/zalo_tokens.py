"""Zalo OA access tokens: refreshed ahead of expiry, the new pair stored atomically, one refresh at a time.

Zalo refresh tokens work once. Two refreshes with the same token lock the OA out, so:
- in one process, a lock per inbox makes concurrent callers share one refresh (single-flight);
- across processes, a lease row claimed with a conditional UPDATE on the stored refresh token decides who
  spends it; the others wait for the new pair to appear;
- the new pair replaces the old one only by compare-and-swap on the refresh token that was spent.
A refused refresh puts the inbox into the visible state "needs_reauth" instead of failing silently; a refresh
that Zalo did not judge (rate limit, timeout, outage) changes no state and is tried again later.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from aiohttp import web
from tortoise.expressions import Q

from channels.base import SendError
from channels.zalo import TokenRefused, ZaloClient
from inbox.models import Inbox, ZaloToken

log = logging.getLogger(__name__)
ZALO_TOKENS = web.AppKey("zalo_tokens", "ZaloTokens")

REFRESH_AHEAD = timedelta(hours=1)  # access tokens live ~25 h
LEASE = timedelta(seconds=30)  # longer than the refresh call's timeout
ASSUMED_LIFETIME = timedelta(seconds=90000)  # tokens typed at `inbox add`: no expiry given, assume a fresh one
NEEDS_REAUTH = "needs_reauth"
REAUTH_REASON = "Zalo từ chối làm mới mã truy cập, cần cấp quyền lại cho OA (refresh refused: re-authorise the OA)"


def now() -> datetime:
    return datetime.now(UTC)


class NeedsReauthorisation(SendError):
    def __init__(self, detail: str = "") -> None:
        super().__init__(REAUTH_REASON + (f": {detail}" if detail else ""), retryable=False, code="needs_reauth")


class ZaloTokens:
    def __init__(self, client: ZaloClient, *, ahead: timedelta = REFRESH_AHEAD, poll: float = 0.05) -> None:
        self._client = client
        self._ahead = ahead
        self._poll = poll
        self._locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._task: asyncio.Task[None] | None = None
        self.refreshes = 0  # refresh calls this process made (tests and metrics)

    # -- lifecycle: refresh every OA's token ahead of expiry even when nobody sends ---------------------

    def start(self, interval: float = 300.0) -> None:
        self._task = asyncio.create_task(self._keep_fresh(interval), name="zalo-tokens")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _keep_fresh(self, interval: float) -> None:
        while True:
            try:
                for inbox in await Inbox.filter(channel="zalo", state="active"):
                    try:
                        await self.access_token(inbox)
                    except SendError as error:
                        log.info("zalo inbox %s: token not refreshed: %s", inbox.id, error.reason)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("zalo token upkeep failed")
            await asyncio.sleep(interval)

    # -- the API the sender uses ------------------------------------------------------------------------

    async def access_token(self, inbox: Inbox) -> str:
        """A usable access token, refreshed first when it expires within `ahead`."""
        row = await self._row(inbox)
        if row.expires_at - now() > self._ahead:
            return row.access_token
        try:
            return await self.refresh(inbox, stale_access_token=row.access_token)
        except SendError as error:
            if not error.retryable or row.expires_at <= now():
                raise
            # Zalo did not answer the early refresh (rate limit, outage): the current token still works meanwhile,
            # and the next call tries the same refresh token again.
            log.info("zalo inbox %s: early refresh failed, the current token serves: %s", inbox.id, error.reason)
            return row.access_token

    async def refresh(self, inbox: Inbox, *, stale_access_token: str) -> str:
        """Replace `stale_access_token` (expiring, or refused by the API). If another caller already replaced it,
        return theirs: only one refresh per stale token, in this process and across processes."""
        async with self._locks[inbox.id]:
            while True:
                row = await self._row(inbox)
                if row.access_token != stale_access_token:
                    return row.access_token  # someone refreshed while we waited
                if await Inbox.filter(id=inbox.id, state=NEEDS_REAUTH).exists():
                    # Refused while we waited for the lock: that refresh token is dead, never spend it twice.
                    raise NeedsReauthorisation("the OA must be authorised again")
                if await self._claim(inbox.id, row.refresh_token):
                    return await self._spend(inbox, row)
                await asyncio.sleep(self._poll)  # another process holds the lease: wait for its new pair

    async def _row(self, inbox: Inbox) -> ZaloToken:
        row = await ZaloToken.get_or_none(inbox_id=inbox.id)
        if row is not None:
            return row
        creds = inbox.credentials or {}
        if not creds.get("access_token") or not creds.get("refresh_token"):
            raise NeedsReauthorisation("no token configured")
        created = inbox.created_at or now()
        await ZaloToken.bulk_create(
            [ZaloToken(inbox_id=inbox.id, access_token=creds["access_token"], refresh_token=creds["refresh_token"],
                       expires_at=created + ASSUMED_LIFETIME)],
            ignore_conflicts=True,
        )  # fmt: skip
        return await ZaloToken.get(inbox_id=inbox.id)

    async def _claim(self, inbox_id: int, refresh_token: str) -> bool:
        at = now()
        free = Q(refresh_lease_until__isnull=True) | Q(refresh_lease_until__lt=at)
        won = await ZaloToken.filter(free, inbox_id=inbox_id, refresh_token=refresh_token).update(
            refresh_lease_until=at + LEASE
        )
        return bool(won)

    async def _spend(self, inbox: Inbox, row: ZaloToken) -> str:
        creds = inbox.credentials or {}
        try:
            self.refreshes += 1
            pair = await self._client.refresh(str(creds.get("app_id", "")), str(creds.get("app_secret", "")),
                                              row.refresh_token)  # fmt: skip
        except TokenRefused as refused:
            await ZaloToken.filter(inbox_id=inbox.id).update(refresh_lease_until=None)
            await mark_needs_reauth(inbox, str(refused))
            raise NeedsReauthorisation(str(refused)) from refused
        except SendError:
            await ZaloToken.filter(inbox_id=inbox.id).update(refresh_lease_until=None)
            raise
        swapped = await ZaloToken.filter(inbox_id=inbox.id, refresh_token=row.refresh_token).update(
            access_token=pair.access_token, refresh_token=pair.refresh_token, expires_at=pair.expires_at,
            refresh_lease_until=None, refreshed_at=now(),
        )  # fmt: skip
        if not swapped:  # only possible if an admin stored new tokens meanwhile: theirs win
            log.warning("zalo inbox %s: tokens changed during refresh; keeping the stored ones", inbox.id)
            return (await ZaloToken.get(inbox_id=inbox.id)).access_token
        return pair.access_token


async def mark_needs_reauth(inbox: Inbox, detail: str) -> None:
    inbox.state, inbox.state_reason = NEEDS_REAUTH, f"{REAUTH_REASON}: {detail}"[:1000]
    await Inbox.filter(id=inbox.id).update(state=inbox.state, state_reason=inbox.state_reason)
    log.warning("zalo inbox %s needs re-authorisation: %s", inbox.id, detail)


async def store_new_tokens(inbox: Inbox, access_token: str, refresh_token: str, expires_in: int | None) -> None:
    """An admin authorised the OA again: the new pair replaces whatever was stored; the inbox is active."""
    expires_at = now() + (timedelta(seconds=expires_in) if expires_in else ASSUMED_LIFETIME)
    updated = await ZaloToken.filter(inbox_id=inbox.id).update(
        access_token=access_token, refresh_token=refresh_token, expires_at=expires_at, refresh_lease_until=None
    )
    if not updated:
        await ZaloToken.create(inbox_id=inbox.id, access_token=access_token, refresh_token=refresh_token,
                               expires_at=expires_at)  # fmt: skip
    inbox.state, inbox.state_reason = "active", None
    await Inbox.filter(id=inbox.id).update(state="active", state_reason=None)
