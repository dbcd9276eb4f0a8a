"""Business hours per inbox: weekly opening intervals in a time zone (Asia/Ho_Chi_Minh by default) and holidays.

Stored in `Inbox.settings["business_hours"]`:

    {"timezone": "Asia/Ho_Chi_Minh",
     "days": {"mon": [["08:00", "17:30"]], "tue": [["08:00", "12:00"], ["13:30", "17:30"]], …, "sun": []},
     "holidays": ["2026-01-01", "2026-04-30"]}

An inbox without the key is open around the clock (in the default time zone), so metrics in business hours equal
the plain ones until someone sets hours. A day missing from `days` is closed. "24:00" ends a day.

Changing the hours does not rewrite the past: each change through the API appends the hours it replaces to
`Inbox.settings["business_hours_history"]` as `{"until": <ISO instant>, "hours": <the object above or null>}`, and
every figure counts each moment with the weekly hours and time zone in force then (`Schedule`), as Zendesk does. A
holiday is a dated fact, so the current list applies to every period: adding a forgotten holiday corrects its day.
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
MAX_HISTORY = 100  # earlier versions kept; past that, the oldest period is counted with the next version


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


@dataclass(frozen=True)
class Schedule:
    """Hours that changed over time: `parts[i]` applies before `untils[i]`, the last one from then on."""

    parts: tuple[BusinessHours, ...]
    untils: tuple[datetime, ...]  # one fewer than `parts`, increasing

    @property
    def always_open(self) -> bool:
        return all(part.always_open for part in self.parts)

    def at(self, moment: datetime) -> BusinessHours:
        for part, until in zip(self.parts, self.untils, strict=False):
            if moment < until:
                return part
        return self.parts[-1]

    def local_day(self, at: datetime) -> str:
        return self.at(at).local_day(at)

    def is_open(self, at: datetime) -> bool:
        return self.at(at).is_open(at)

    def seconds_between(self, start: datetime, end: datetime) -> float:
        total, since = 0.0, None
        for part, until in itertools.zip_longest(self.parts, self.untils):
            lo = start if since is None else max(start, since)
            hi = end if until is None else min(end, until)
            if hi > lo:
                total += part.seconds_between(lo, hi)
            since = until
        return total

    def next_open(self, at: datetime) -> datetime | None:
        since = None
        for part, until in itertools.zip_longest(self.parts, self.untils):
            if until is not None and until <= at:
                since = until
                continue
            opens = part.next_open(at if since is None else max(at, since))
            if opens is not None and (until is None or opens < until):
                return opens
            since = until
        return None


# What every figure takes: one set of hours, or hours that changed over time.
Hours = BusinessHours | Schedule


def from_settings(settings: dict[str, Any] | None) -> Hours:
    """The inbox's hours from its settings (cached by content); invalid stored data means always open."""
    settings = settings or {}
    raw, history = settings.get("business_hours"), settings.get("business_hours_history")
    if not history:
        return _current(raw)
    import json

    try:
        return _schedule(json.dumps([raw, history], sort_keys=True, default=str))
    except (InvalidHours, TypeError, ValueError, KeyError):
        return _current(raw)


def _current(raw: Any) -> BusinessHours:
    if not raw:
        return BusinessHours()
    import json

    try:
        return _parse(json.dumps(validate(raw), sort_keys=True))
    except InvalidHours:
        return BusinessHours()


@lru_cache(maxsize=256)
def _schedule(frozen: str) -> Schedule:
    import json

    raw, history = json.loads(frozen)
    current = _current(raw)
    parts, untils = [], []
    for entry in sorted(history, key=lambda e: e["until"]):
        until = datetime.fromisoformat(entry["until"])
        if until.tzinfo is None:
            raise ValueError("until needs a time zone")
        # The current holidays apply to every period (see the module's docstring).
        parts.append(_with_holidays(_current(entry.get("hours")), current.holidays))
        untils.append(until)
    return Schedule((*parts, current), tuple(untils))


def _with_holidays(hours: BusinessHours, holidays: frozenset[date]) -> BusinessHours:
    return BusinessHours(timezone=hours.timezone, week=hours.week, holidays=holidays)


def changed(settings: dict[str, Any], new: dict[str, Any] | None, at: datetime) -> dict[str, Any]:
    """`settings` with `new` as the inbox's hours from `at` on, the replaced ones kept in the history. A change of
    holidays alone needs no history entry (they apply to every period)."""
    old = settings.get("business_hours")
    result = dict(settings)
    if new is None:
        result.pop("business_hours", None)
    else:
        result["business_hours"] = new
    if _weekly(old) != _weekly(new):
        history = [*settings.get("business_hours_history", []), {"until": at.astimezone(UTC).isoformat(), "hours": old}]
        result["business_hours_history"] = history[-MAX_HISTORY:]
    return result


def _weekly(raw: dict[str, Any] | None) -> tuple[str, Any] | None:
    """What a change must keep in the history: the time zone and the weekly hours (None: always open)."""
    if not raw:
        return None
    return (raw.get("timezone", DEFAULT_TIMEZONE), raw.get("days"))


def is_open(inbox: Any, at: datetime) -> bool:
    """For the bots' away message: is this inbox (anything with `.settings`) open at `at`?"""
    return from_settings(getattr(inbox, "settings", None)).is_open(at)
