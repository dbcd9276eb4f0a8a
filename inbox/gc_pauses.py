"""Garbage-collector pauses kept off the ack path, for `hopthu serve`.

A full collection walks every object the collector tracks and answers no webhook meanwhile. In a running server most
of them are start-up objects that live as long as the process (the imported libraries' classes and pydantic models,
tortoise's metadata): measured with a `gc` callback under `bench/bulk.py`, full collections over ~170,000–300,000
objects took 100–220 ms, which was the ingest p99. So, once the app has started, everything alive is moved to the
permanent generation (`gc.freeze`, never walked again), and the youngest generation is collected less often (a webhook
allocates thousands of short-lived objects; the freeze is what removed the pauses, the threshold was not measured on
its own). Tests do not call this (the suite's many apps come and go).
"""

from __future__ import annotations

import gc

from aiohttp import web

YOUNG_THRESHOLD = 10_000  # CPython's default is 700


async def freeze_after_start(app: web.Application) -> None:
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def install(app: web.Application) -> None:
    """Run `freeze_after_start` once the app's start-up (database, workers, NLP) is done."""
    app.on_startup.append(freeze_after_start)
