"""Bulk jobs against live ingest: resolving, then deleting, 10,000 conversations must not more than double the
webhook ack p99 while the job runs.

One `hopthu serve` (SQLite). After seeding --conversations conversations (one customer each, through signed
webhooks), an open loop sends Messenger webhooks at --rate msg/s on a fixed schedule (latency counted from the
scheduled send time):
  1. baseline: --duration s with no job;
  2. while `POST /api/bulk-jobs {"action": "resolve", filter: open}` runs (until it is done);
  3. while `POST /api/bulk-jobs {"action": "delete", …}` runs over the same conversations.
Reports p99 during each job / baseline p99 (target ≤ 2.0), each job's duration and rate.

    python bench/bulk.py [--conversations 10000] [--rate 200] [--duration 10] [--quick] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from bench.common import (
    APP_SECRET,
    PAGE_ID,
    PASSWORD,
    FakeGraphProcess,
    Summary,
    WebhookFactory,
    Workdir,
    add_facebook_inbox,
    cli,
    drain,
    fmt,
    hopthu_env,
    latency_line,
    percentile,
    start_hopthu,
)
from bench.ingest import LoadResult, _post, _session

TARGET_RATIO = 2.0


async def seed(url: str, db_path: Path, conversations: int) -> None:
    from channels.fakes import messenger_batch, messenger_text, signed

    ts = int(time.time() * 1000) - 3_600_000
    async with aiohttp.ClientSession() as session:
        for start in range(0, conversations, 100):
            bodies = [messenger_text(PAGE_ID, f"{8_000_000_000_000_000 + i}", f"m_seed_{i}", "Shop ơi còn áo không?",
                                     ts + i) for i in range(start, min(conversations, start + 100))]  # fmt: skip
            raw, headers = signed(messenger_batch(*bodies), APP_SECRET)
            async with session.post(url + "/webhooks/facebook", data=raw, headers=headers) as response:
                assert response.status == 200, await response.text()
            await drain(db_path, "m_seed_", timeout=600)  # batch by batch: the seeding is not what is measured
    stored, pending = await drain(db_path, "m_seed_", timeout=600)
    print(f"    seeded {stored:,} conversations ({pending} events still pending)")


async def open_loop_until(url: str, factory: WebhookFactory, rate: float, stop: asyncio.Event) -> LoadResult:
    """Webhooks at `rate`/s on a fixed schedule until `stop` is set."""
    result = LoadResult()
    tasks: set[asyncio.Task[None]] = set()
    async with _session(2_000) as session:
        await asyncio.gather(*(_post(session, url, factory, LoadResult(), time.perf_counter()) for _ in range(16)))
        t0 = time.perf_counter()
        i = 0
        while not stop.is_set():
            scheduled = t0 + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            task = asyncio.create_task(_post(session, url, factory, result, scheduled))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        result.elapsed = time.perf_counter() - t0
        if tasks:
            await asyncio.gather(*tasks)
    return result


async def timed(url: str, factory: WebhookFactory, rate: float, seconds: float) -> LoadResult:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, stop.set)
    return await open_loop_until(url, factory, rate, stop)


async def during_job(
    base: str, token: str, body: dict, factory: WebhookFactory, rate: float, minimum: float
) -> tuple[LoadResult, dict, float]:
    """Ingest load for as long as the job runs (at least `minimum` s); returns the load, the job, its seconds."""
    headers = {"Authorization": f"Bearer {token}"}
    stop = asyncio.Event()
    load = asyncio.create_task(open_loop_until(base + "/webhooks/facebook", factory, rate, stop))
    await asyncio.sleep(1.0)  # the load is steady before the job starts
    async with aiohttp.ClientSession(headers=headers) as session:
        t0 = time.perf_counter()
        async with session.post(base + "/api/bulk-jobs", json=body) as response:
            assert response.status == 202, await response.text()
            job = await response.json()
        while True:
            async with session.get(f"{base}/api/bulk-jobs/{job['id']}") as response:
                job = await response.json()
            if job["state"] in ("done", "failed"):
                break
            await asyncio.sleep(0.1)
        seconds = time.perf_counter() - t0
    await asyncio.sleep(max(0.0, minimum - seconds))
    stop.set()
    return await load, job, seconds


async def run(args: argparse.Namespace) -> Summary:
    summary = Summary(f"bench/bulk.py — bulk jobs on {args.conversations:,} conversations vs ingest p99")
    work = Workdir(keep=args.keep)
    graph = FakeGraphProcess(work.path)
    server = None
    try:
        await graph.wait()
        db_path = work.path / "bulk.db"
        env = hopthu_env(db_path, work.path, graph.url)
        inbox = add_facebook_inbox(env, work.path)
        cli(env, work.path, "user", "add", "--email", "admin@bench.vn", "--password", PASSWORD, "--role", "admin")
        server = await start_hopthu(env, work.path)
        print(f"seeding {args.conversations:,} conversations …", flush=True)
        await seed(server.url, db_path, args.conversations)
        async with aiohttp.ClientSession() as session:
            login = await session.post(server.url + "/api/auth/login",
                                       json={"email": "admin@bench.vn", "password": PASSWORD})  # fmt: skip
            token = (await login.json())["token"]
        factory = WebhookFactory(contacts=500)
        url = server.url + "/webhooks/facebook"
        await timed(url, factory, args.rate, 2.0)  # warm: the load's customers exist
        await drain(db_path, f"m_{factory.run_id}_")

        baseline = await timed(url, factory, args.rate, args.duration)
        print(baseline.describe(f"baseline, {args.rate:g}/s open loop"))
        base_p99 = percentile(baseline.latencies_ms, 99)
        results = {}
        for action in ("resolve", "delete"):
            body = {"action": action, "filter": {"inbox_id": inbox["id"]}}
            load, job, seconds = await during_job(server.url, token, body, factory, args.rate, args.duration)
            results[action] = (load, job, seconds)
            print(f"{action}: job {job['state']}, {job['done']:,} done / {job['total']:,} in {seconds:.1f} s "
                  f"({fmt(job['done'] / seconds if seconds else 0)} conversations/s)")  # fmt: skip
            print("    " + latency_line(f"ack latency during the {action} job", load.latencies_ms))
            await drain(db_path, f"m_{factory.run_id}_")
        after = await timed(url, factory, args.rate, args.duration)
        base_p99 = (base_p99 + percentile(after.latencies_ms, 99)) / 2  # baseline before and after, averaged
        print("    " + latency_line("baseline ack latency", baseline.latencies_ms + after.latencies_ms))

        summary.add(f"baseline ack p99 at {args.rate:g}/s", base_p99, "ms")
        for action, (load, job, seconds) in results.items():
            p99 = percentile(load.latencies_ms, 99)
            summary.add(f"{action} job: ack p99 during the job", p99, "ms")
            summary.add(f"{action} job: p99 / baseline p99", p99 / base_p99 if base_p99 else float("nan"), "",
                        TARGET_RATIO)  # fmt: skip
            summary.add(f"{action} job: conversations handled", job["done"], "", args.conversations, higher=True)
            summary.add(f"{action} job: duration", seconds, "s")
            lost = load.sent - load.ok
            summary.add(f"{action} job: webhooks not acknowledged during it", lost, "", 0)
    finally:
        if server is not None:
            server.stop()
        graph.stop()
        work.cleanup()
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000, help="conversations to resolve/delete")
    parser.add_argument("--rate", type=float, default=200.0, help="open-loop webhooks per second (default 200)")
    parser.add_argument("--duration", type=float, default=10.0, help="baseline seconds (default 10)")
    parser.add_argument("--quick", action="store_true", help="2,000 conversations, 3 s baseline: a smoke run")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (database, server log)")
    args = parser.parse_args()
    if args.quick:
        args.conversations, args.duration = min(args.conversations, 2_000), 3.0
    summary = asyncio.run(run(args))
    summary.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
