"""Login rate limit and temporary lock-out, checked before the (deliberately slow) password hash is computed.

Two limits, both on *failed* attempts in a sliding window:
- per account (the e-mail as typed, lower-cased): after `account_failures` failures the account is locked for
  `lockout` — even the right password is refused meanwhile, so guessing cannot continue slowly in the background;
- per client address: `address_failures` failures lock that address out, so one machine cannot spray passwords
  over many accounts.
A successful login clears the account's failures. State is per server process (a restart forgets it): the
numbers are small enough that several processes together still allow only a handful of guesses per minute.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Window:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0


class LoginLimiter:
    def __init__(
        self,
        *,
        account_failures: int = 5,
        address_failures: int = 30,
        window: float = 15 * 60,
        lockout: float = 15 * 60,
        clock: Callable[[], float] = time.monotonic,
        max_tracked: int = 100_000,
    ) -> None:
        self.account_failures, self.address_failures = account_failures, address_failures
        self.window, self.lockout, self.clock = window, lockout, clock
        self._max_tracked = max_tracked
        self._accounts: dict[str, _Window] = {}
        self._addresses: dict[str, _Window] = {}

    def retry_after(self, account: str, address: str | None) -> float | None:
        """Seconds until this account/address may try again, or None when it may try now."""
        now = self.clock()
        waits = [
            w.locked_until - now
            for w in (self._accounts.get(account), self._addresses.get(address or ""))
            if w is not None and w.locked_until > now
        ]
        return max(waits) if waits else None

    def failed(self, account: str, address: str | None) -> bool:
        """Record a failed attempt; True when it locked the account or the address."""
        now = self.clock()
        locked = self._record(self._accounts, account, self.account_failures, now)
        return self._record(self._addresses, address or "", self.address_failures, now) or locked

    def succeeded(self, account: str) -> None:
        self._accounts.pop(account, None)

    def _record(self, table: dict[str, _Window], key: str, limit: int, now: float) -> bool:
        if len(table) >= self._max_tracked:  # memory stays bounded under a flood of distinct e-mails
            self._forget_stale(table, now)
        entry = table.setdefault(key, _Window())
        entry.failures.append(now)
        while entry.failures and entry.failures[0] <= now - self.window:
            entry.failures.popleft()
        if len(entry.failures) >= limit:
            entry.locked_until = now + self.lockout
            entry.failures.clear()
            return True
        return False

    def _forget_stale(self, table: dict[str, _Window], now: float) -> None:
        for key in [
            k
            for k, w in table.items()
            if w.locked_until <= now and (not w.failures or w.failures[-1] <= now - self.window)
        ]:
            del table[key]
        if len(table) >= self._max_tracked:
            table.clear()
