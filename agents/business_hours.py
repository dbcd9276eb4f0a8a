"""Business hours per inbox: weekly opening intervals in a time zone (Asia/Ho_Chi_Minh by default) and holidays.

Stored in `Inbox.settings["business_hours"]`:

    {"timezone": "Asia/Ho_Chi_Minh",
     "days": {"mon": [["08:00", "17:30"]], "tue": [["08:00", "12:00"], ["13:30", "17:30"]], …, "sun": []},
     "holidays": ["2026-01-01", "2026-04-30"]}

An inbox without the key is open around the clock (in the default time zone), so metrics in business hours equal
the plain ones until someone sets hours. A day missing from `days` is closed. "24:00" ends a day.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
MAX_HOLIDAYS = 500


class InvalidHours(ValueError):
    pass


def _minutes(text: str) -> int:
    if not isinstance(text, str) or not _CLOCK.match(text):
        raise InvalidHours(f"{text!r} is not a time of day HH:MM (00:00–24:00)")
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True)
class BusinessHours:
    timezone: str = DEFAULT_TIMEZONE
    # Per weekday (Monday = 0): sorted, non-overlapping (start, end) minutes since local midnight.
    week: tuple[tuple[tuple[int, int], ...], ...] | None = None  # None: always open
    holidays: frozenset[date] = frozenset()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def always_open(self) -> bool:
        return self.week is None and not self.holidays

    def local_day(self, at: datetime) -> str:
        return at.astimezone(self.zone).date().isoformat()

    def _intervals(self, day: date) -> tuple[tuple[int, int], ...]:
        if day in self.holidays:
            return ()
        if self.week is None:
            return ((0, 24 * 60),)
        return self.week[day.weekday()]

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self._intervals(local.date()))

    def seconds_between(self, start: datetime, end: datetime) -> float:
        """Seconds of `[start, end)` that fall inside business hours."""
        if end <= start:
            return 0.0
        if self.always_open:
            return (end - start).total_seconds()
        zone = self.zone
        local_start, local_end = start.astimezone(zone), end.astimezone(zone)
        total = 0.0
        day = local_start.date()
        while day <= local_end.date():
            for first, last in self._intervals(day):
                opens = _at(day, first, zone)
                closes = _at(day, last, zone)
                lo, hi = max(opens, start), min(closes, end)
                if hi > lo:
                    total += (hi - lo).total_seconds()
            day += timedelta(days=1)
        return total

    def next_open(self, at: datetime) -> datetime | None:
        """The first moment at or after `at` when the inbox is open (None if it never opens within a year)."""
        if self.is_open(at):
            return at
        zone = self.zone
        local = at.astimezone(zone)
        day = local.date()
        for _ in range(366):
            for first, _ in self._intervals(day):
                opens = _at(day, first, zone)
                if opens >= at:
                    return opens
            day += timedelta(days=1)
        return None


def _at(day: date, minute: int, zone: ZoneInfo) -> datetime:
    if minute >= 24 * 60:
        return datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
    return datetime.combine(day, time(minute // 60, minute % 60), zone).astimezone(UTC)


def validate(raw: Any) -> dict[str, Any]:
    """The settings as given, checked and normalised; InvalidHours with a readable message otherwise."""
    if not isinstance(raw, dict):
        raise InvalidHours("business_hours must be an object")
    timezone = raw.get("timezone", DEFAULT_TIMEZONE)
    try:
        ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidHours(f"unknown time zone {timezone!r}") from exc
    days = raw.get("days")
    clean_days: dict[str, list[list[str]]] | None = None
    if days is not None:
        if not isinstance(days, dict) or set(days) - set(DAY_NAMES):
            raise InvalidHours(f"days must be an object with keys among {', '.join(DAY_NAMES)}")
        clean_days = {}
        for name in DAY_NAMES:
            intervals = days.get(name, [])
            if not isinstance(intervals, list):
                raise InvalidHours(f"days.{name} must be a list of [open, close] pairs")
            spans = []
            for pair in intervals:
                if not isinstance(pair, list | tuple) or len(pair) != 2:
                    raise InvalidHours(f'days.{name}: each interval is ["HH:MM", "HH:MM"]')
                start, end = _minutes(pair[0]), _minutes(pair[1])
                if end <= start:
                    raise InvalidHours(f"days.{name}: {pair[0]}–{pair[1]} closes before it opens")
                spans.append((start, end, pair))
            spans.sort()
            for (_, end, _), (start, _, pair) in itertools.pairwise(spans):
                if start < end:
                    raise InvalidHours(f"days.{name}: interval {pair[0]}–{pair[1]} overlaps another")
            clean_days[name] = [list(p) for _, _, p in spans]
    holidays = raw.get("holidays", [])
    if not isinstance(holidays, list) or len(holidays) > MAX_HOLIDAYS:
        raise InvalidHours(f"holidays must be a list of at most {MAX_HOLIDAYS} dates YYYY-MM-DD")
    for day in holidays:
        try:
            date.fromisoformat(str(day))
        except ValueError as exc:
            raise InvalidHours(f"holiday {day!r} is not a date YYYY-MM-DD") from exc
    result: dict[str, Any] = {"timezone": str(timezone), "holidays": sorted({str(d) for d in holidays})}
    if clean_days is not None:
        result["days"] = clean_days
    return result


@lru_cache(maxsize=256)
def _parse(frozen: str) -> BusinessHours:
    import json

    data = json.loads(frozen)
    week = None
    if data.get("days") is not None:
        week = tuple(tuple((_minutes(a), _minutes(b)) for a, b in data["days"].get(name, [])) for name in DAY_NAMES)
    return BusinessHours(
        timezone=data.get("timezone", DEFAULT_TIMEZONE),
        week=week,
        holidays=frozenset(date.fromisoformat(d) for d in data.get("holidays", [])),
    )


def from_settings(settings: dict[str, Any] | None) -> BusinessHours:
    """The inbox's hours from its settings (cached by content); invalid stored data means always open."""
    raw = (settings or {}).get("business_hours")
    if not raw:
        return BusinessHours()
    import json

    try:
        return _parse(json.dumps(validate(raw), sort_keys=True))
    except InvalidHours:
        return BusinessHours()


def is_open(inbox: Any, at: datetime) -> bool:
    """For the bots' away message: is this inbox (anything with `.settings`) open at `at`?"""
    return from_settings(getattr(inbox, "settings", None)).is_open(at)
