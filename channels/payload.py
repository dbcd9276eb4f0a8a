"""Reading platform JSON defensively: the small helpers every channel parser shares.

Platforms send ids as strings or as numbers beyond 2^53 (Python ints stay exact; never go through float), nest
objects that may be missing, and sometimes put the wrong type where a field should be. These helpers answer None
instead of raising, so a parser decides what a missing field means.
"""

from __future__ import annotations

import re
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


# PostgreSQL's text and jsonb cannot hold U+0000: one NUL in what a platform sent or answered failed the write that
# stored it, and every retry failed again (the platform answers the same). Platform text is stored with U+FFFD in
# its place, on either database, wherever it becomes our values: in ingest, and as each client decodes an answer.
NUL_STAND_IN = "\ufffd"
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")  # an escaped NUL, not an escaped backslash and "u0000"


def nul_free(value: Any) -> Any:
    """`value` with every NUL (in strings, dict keys and values, list items, at any depth) as U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", NUL_STAND_IN) if "\x00" in value else value
    if isinstance(value, dict):
        return {nul_free(key): nul_free(item) for key, item in value.items()}
    if isinstance(value, list):
        return [nul_free(item) for item in value]
    return value


def nul_free_json(text: str) -> str:
    """JSON text with every escaped NUL (`\\u0000`) as `\\ufffd`: what jsonb accepts, the same value otherwise."""
    return _NUL_ESCAPE.sub(r"\1\\ufffd", text) if "\\u0000" in text else text
