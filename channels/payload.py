"""Reading platform JSON defensively: the small helpers every channel parser shares.

Platforms send ids as strings or as numbers beyond 2^53 (Python ints stay exact; never go through float), nest
objects that may be missing, and sometimes put the wrong type where a field should be. These helpers answer None
instead of raising, so a parser decides what a missing field means.
"""

from __future__ import annotations

from typing import Any

from channels.events import Unrecognized


def dig(obj: Any, *keys: str) -> Any:
    """`obj[k1][k2]…`, or None as soon as a level is missing or not an object."""
    for key in keys:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def id_of(value: Any) -> str | None:
    """An id as a string: from a string (trimmed, non-empty) or an exact integer; anything else is None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) and value.strip() else None


def str_of(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def unrecognized(channel: str, account: str | None, reason: str, raw: Any) -> Unrecognized:
    """A signed event this parser does not understand: kept raw for the dead-letter table."""
    payload = raw if isinstance(raw, dict) else {"value": raw}
    return Unrecognized(channel=channel, account_id=account, reason=reason, payload=payload)
