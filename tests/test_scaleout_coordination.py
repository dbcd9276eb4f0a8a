"""Cross-process primitives (`inbox.coordination`): the same behaviour in memory and in Redis.

Two coordinator objects on one Redis stand for two server processes.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from inbox.coordination import CoordinationUnavailable, LocalCoordinator, LogLeader, RedisCoordinator, coordinator

REDIS_URL = os.environ.get("HOPTHU_TEST_REDIS_URL", "")


@pytest.fixture(params=["local", "redis"])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[object, object]]:
    """Two processes' coordinators: one shared object in memory, two clients on one Redis."""
    if request.param == "local":
        local = LocalCoordinator()
        yield local, local
        return
    if not REDIS_URL:
        pytest.skip("HOPTHU_TEST_REDIS_URL is not set (needs a Redis server)")
    prefix = f"hopthu-test-{uuid.uuid4().hex[:10]}:"
    a, b = RedisCoordinator(REDIS_URL, prefix=prefix), RedisCoordinator(REDIS_URL, prefix=prefix)
    yield a, b
    keys = [k async for k in a._redis.scan_iter(match=prefix + "*")]
    if keys:
        await a._redis.delete(*keys)
    await a.close()
    await b.close()


async def test_a_lock_lets_one_process_do_the_work(pair) -> None:
    a, b = pair
    refreshed: list[str] = []

    async def refresh(coord, who: str) -> None:
        async with coord.lock("token-refresh:7", ttl=10) as held:
            if held:
                refreshed.append(who)
                await asyncio.sleep(0.1)  # both try while one holds it

    await asyncio.gather(refresh(a, "a"), refresh(b, "b"))
    assert len(refreshed) == 1
    async with b.lock("token-refresh:7") as held:  # released after the work
        assert held


async def test_a_waiting_process_gets_the_lock_when_it_is_released(pair) -> None:
    a, b = pair
    order: list[str] = []

    async def first() -> None:
        async with a.lock("l") as held:
            assert held
            order.append("a in")
            await asyncio.sleep(0.1)
            order.append("a out")

    async def second() -> None:
        await asyncio.sleep(0.02)
        async with b.lock("l", wait=10) as held:
            assert held
            order.append("b in")

    await asyncio.gather(first(), second())
    assert order == ["a in", "a out", "b in"]


async def test_a_lease_expires_and_the_old_holder_cannot_release_the_new_one(pair) -> None:
    a, b = pair
    b_lock = b.lock("refresh", ttl=10)
    async with a.lock("refresh", ttl=0.2) as held_a:
        assert held_a
        await asyncio.sleep(0.4)  # the holder stalled past its lease (or died)
        assert await b_lock.__aenter__()  # so another process may take it
    # a's exit did not delete b's lease: b still holds it.
    async with a.lock("refresh") as held_again:
        assert not held_again
    await b_lock.__aexit__(None, None, None)
    async with a.lock("refresh") as held_after_b:
        assert held_after_b


async def test_counters_count_across_processes_within_a_window(pair) -> None:
    a, b = pair
    assert [await a.incr("rate:5", ttl=0.3), await b.incr("rate:5", ttl=0.3), await a.incr("rate:5", 3)] == [1, 2, 5]
    assert await b.get_count("rate:5") == 5
    await asyncio.sleep(0.5)  # the window set by the first hit is over
    assert await b.get_count("rate:5") == 0
    assert await a.incr("rate:5", ttl=10) == 1


async def test_set_members_age_out_unless_refreshed(pair) -> None:
    a, b = pair
    await a.set_add("online", "1", ttl=0.3)
    await b.set_add("online", "2", ttl=10)
    await b.set_add("online", "3")
    assert await a.set_members("online") == {"1", "2", "3"}
    await b.set_remove("online", "3")
    await asyncio.sleep(0.5)  # process a died without saying agent 1 went offline
    assert await b.set_members("online") == {"2"}


async def test_an_unreachable_redis_is_reported_not_hidden() -> None:
    down = RedisCoordinator("redis://127.0.0.1:9/0")
    with pytest.raises(CoordinationUnavailable):
        await down.incr("x")
    with pytest.raises(CoordinationUnavailable):
        async with down.lock("x"):
            pass
    await down.close()


@pytest.mark.parametrize(("url", "kind"), [("", LocalCoordinator), ("redis://127.0.0.1:6379/0", RedisCoordinator)])
def test_the_deployment_picks_the_home(url: str, kind: Callable) -> None:
    assert isinstance(coordinator(url or None), kind)


async def test_one_process_leads_the_inbound_log_and_another_takes_over(database_url: str) -> None:
    if not database_url.startswith("postgres"):
        pytest.skip("the inbound log's leader is a PostgreSQL advisory lock (HOPTHU_TEST_DATABASE_URL)")
    wake_a, wake_b = asyncio.Event(), asyncio.Event()
    a, b = LogLeader(database_url, wake_a), LogLeader(database_url, wake_b)
    try:
        assert await a.lead()
        assert not await b.lead()  # one leader at a time
        await b.nudge()  # b stored events: the leader is woken at once
        await asyncio.wait_for(wake_a.wait(), 10)
        assert not wake_b.is_set()
        await a.close()  # the leader's process (or its connection) is gone
        assert await b.lead()
        assert not await a.lead()
    finally:
        await a.close()
        await b.close()
