"""`hopthu serve` keeps full garbage collections off the ack path: start-up objects are frozen out of the collector's
walks once the app has started, and young collections are rarer (the pauses are measured in bench/bulk.py)."""

from __future__ import annotations

import gc

from aiohttp import web

from inbox import gc_pauses


async def test_after_start_up_the_long_lived_objects_are_no_longer_walked() -> None:
    threshold = gc.get_threshold()
    app = web.Application()
    gc_pauses.install(app)
    startup_object = [{"lives": "as long as the process"}]  # a tracked container alive at start-up
    try:
        assert gc.is_tracked(startup_object) and gc.get_freeze_count() == 0
        app.freeze()
        await app.on_startup.send(app)
        assert gc.get_freeze_count() > 0
        assert all(startup_object is not o for o in gc.get_objects())  # frozen: not in any generation walked
        assert gc.get_threshold()[0] == gc_pauses.YOUNG_THRESHOLD > threshold[0]
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
