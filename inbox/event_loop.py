"""The event loop `hopthu serve` and `hopthu demo` run on: uvloop where it is installed, else asyncio's own.

uvloop runs the same asyncio code with its transports, timers and callbacks written in C. A webhook's ack path is
mostly that machinery (read the request, resolve futures, write the answer), and the inbound processor waits on
many small futures (aiosqlite's thread, the NLP worker): on the 2-core development VM `bench/ingest.py` acknowledged
8–12 % more webhooks per second on uvloop with the same code (3,076 → 3,325 and 2,870 → 3,233 req/s).
`HOPTHU_EVENT_LOOP=asyncio` keeps asyncio's loop (for a debugger, or a platform uvloop does not support); `uvloop`
insists on it and fails if it is missing.
The test suite runs on asyncio's loop; the tests that start `hopthu serve` as a process run it on uvloop.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable

from inbox.config import EVENT_LOOPS, ConfigError


def loop_factory(choice: str = "auto") -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes the server's loop for `HOPTHU_EVENT_LOOP` (`auto`, `uvloop` or `asyncio`)."""
    if choice not in EVENT_LOOPS:  # load_settings checks it first; this guards other callers
        raise ConfigError(f"HOPTHU_EVENT_LOOP must be one of {', '.join(EVENT_LOOPS)}, not {choice!r}")
    if choice == "asyncio" or (choice == "auto" and importlib.util.find_spec("uvloop") is None):
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError as exc:
        raise ConfigError("HOPTHU_EVENT_LOOP=uvloop, but uvloop is not installed (pip install uvloop)") from exc
    return uvloop.new_event_loop


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
