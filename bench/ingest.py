"""Webhook ingest: signed Messenger webhooks against a bare aiohttp handler and against `hopthu serve` (SQLite).

Same load generator, same run, each server in its own process:
  1. full speed (closed loop: --concurrency workers on keep-alive connections for --duration s) → req/s of
     each server and their ratio (target ≥ 0.60);
  2. a fixed --rate msg/s open loop (sends on schedule whether or not earlier answers came back; latency
     counted from the scheduled send time, so a stall is never hidden) → ack latency p50/p99 (target p99 ≤ 25 ms).
Before the hopthu phases every customer writes once (conversations exist, profiles fetched from a FakeGraphAPI
process), so the timed traffic is steady state. After each hopthu phase the script waits for the processor to
drain and counts the messages stored in the database, to show the acks were real. The baseline's full-speed
phase runs before and after hopthu's, and the ratio uses their mean.

    python bench/ingest.py [--duration 10] [--concurrency 32] [--rate 1000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from bench.common import (
    FakeGraphProcess,
    Server,
    Summary,
    WebhookFactory,
    Workdir,
    add_facebook_inbox,
    drain,
    fmt,
    hopthu_env,
    latency_line,
    percentile,
    start_bare,
    start_hopthu,
    warm_contacts,
)

TARGET_RATIO = 0.60
TARGET_P99_MS = 25.0


@dataclass
class LoadResult:
    sent: int = 0
    ok: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    late_ms: list[float] = field(default_factory=list)  # open loop: how late the client sent

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def describe(self, label: str) -> str:
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        return (
            f"{label}: {self.ok:,} ok / {self.sent:,} sent in {self.elapsed:.1f} s = {fmt(self.rps)} req/s "
            f"(status {codes or '-'}; errors {self.errors}); CPU s: server {self.server_cpu:.1f}, "
            f"load generator {self.client_cpu:.1f}\n    {latency_line('ack latency', self.latencies_ms)}"
        )


def _session(connections: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=connections, keepalive_timeout=60, force_close=False)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30))


async def _post(
    session: aiohttp.ClientSession, url: str, factory: WebhookFactory, result: LoadResult, start: float
) -> None:
    _, body, headers = factory.next()
    result.sent += 1
    try:
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError):
        result.errors += 1
        return
    result.statuses[status] = result.statuses.get(status, 0) + 1
    if status == 200:
        result.ok += 1
        result.latencies_ms.append((time.perf_counter() - start) * 1000)


async def closed_loop(server: Server, factory: WebhookFactory, duration: float, concurrency: int) -> LoadResult:
    """`concurrency` workers, each sending its next webhook as soon as the previous one is answered."""
    url = server.url + "/webhooks/facebook"
    result = LoadResult()
    async with _session(concurrency) as session:
        # Warm the connections up (keep-alive) before the clock starts.
        await asyncio.gather(*(_post(session, url, factory, LoadResult(), time.perf_counter()) for _ in range(32)))
        cpu0, server_cpu0 = time.process_time(), server.cpu_seconds()
        t0 = time.perf_counter()
        deadline = t0 + duration

        async def worker() -> None:
            while time.perf_counter() < deadline:
                await _post(session, url, factory, result, time.perf_counter())

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.elapsed = time.perf_counter() - t0
        result.client_cpu, result.server_cpu = time.process_time() - cpu0, server.cpu_seconds() - server_cpu0
    return result


async def open_loop(
    server: Server, factory: WebhookFactory, duration: float, rate: float, max_in_flight: int = 2_000
) -> LoadResult:
    """Send at `rate`/s on a fixed schedule; latency is measured from each request's scheduled time."""
    url = server.url + "/webhooks/facebook"
    result = LoadResult()
    tasks: set[asyncio.Task[None]] = set()
    async with _session(max_in_flight) as session:
        await asyncio.gather(*(_post(session, url, factory, LoadResult(), time.perf_counter()) for _ in range(32)))
        cpu0, server_cpu0 = time.process_time(), server.cpu_seconds()
        t0 = time.perf_counter()
        total = int(duration * rate)
        interval = 1.0 / rate
        for i in range(total):
            scheduled = t0 + i * interval
            delay = scheduled - time.perf_counter()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            result.late_ms.append(max(0.0, time.perf_counter() - scheduled) * 1000)
            if len(tasks) >= max_in_flight:
                result.sent += 1
                result.errors += 1  # the server is this far behind: count it as a failure, don't queue more
                continue
            task = asyncio.create_task(_post(session, url, factory, result, scheduled))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        send_done = time.perf_counter()
        if tasks:
            await asyncio.gather(*tasks)
        result.elapsed = send_done - t0
        result.client_cpu, result.server_cpu = time.process_time() - cpu0, server.cpu_seconds() - server_cpu0
    return result


async def run(args: argparse.Namespace) -> Summary:
    summary = Summary("bench/ingest.py — Messenger webhook ingest")
    work = Workdir(keep=args.keep)
    graph = FakeGraphProcess(work.path)
    try:
        await graph.wait()
        db_path = work.path / "ingest.db"
        env = hopthu_env(db_path, work.path, graph.url)
        add_facebook_inbox(env, work.path)
        print(f"workdir {work.path}; duration {args.duration:g} s, concurrency {args.concurrency}, "
              f"rate {args.rate:g}/s, {args.contacts} customers")  # fmt: skip

        bare = await start_bare(work.path)
        try:
            factory = WebhookFactory(args.contacts, run_id="bare")
            bare_full = await closed_loop(bare, factory, args.duration, args.concurrency)
            print(bare_full.describe("bare aiohttp, full speed"))
            bare_rate = await open_loop(bare, factory, args.duration, args.rate)
            print(bare_rate.describe(f"bare aiohttp, {args.rate:g}/s open loop"))
        finally:
            bare.stop()

        hopthu = await start_hopthu(env, work.path)
        try:
            await warm_contacts(hopthu.url, db_path, args.contacts)
            factory = WebhookFactory(args.contacts)
            full = await closed_loop(hopthu, factory, args.duration, args.concurrency)
            print(full.describe("hopthu serve, full speed"))
            t0 = time.perf_counter()
            stored_full, pending = await drain(db_path, f"m_{factory.run_id}_")
            drained_in = time.perf_counter() - t0
            print(
                f"    stored after drain: {stored_full:,} messages for {full.ok + 32:,} acknowledged webhooks "
                f"(incl. 32 warm-up), {pending} still pending; drained in {drained_in:.1f} s"
            )
            factory2 = WebhookFactory(args.contacts)
            rate = await open_loop(hopthu, factory2, args.duration, args.rate)
            print(rate.describe(f"hopthu serve, {args.rate:g}/s open loop"))
            print(f"    load generator lateness: p99 {fmt(percentile(rate.late_ms, 99), 2)} ms")
            stored_rate, pending2 = await drain(db_path, f"m_{factory2.run_id}_")
            print(
                f"    stored after drain: {stored_rate:,} messages for {rate.ok + 32:,} acknowledged webhooks "
                f"(incl. 32 warm-up), {pending2} still pending"
            )
        finally:
            hopthu.stop()

        # The baseline again, so background load drifting during the run biases neither side.
        bare = await start_bare(work.path)
        try:
            bare_full2 = await closed_loop(bare, WebhookFactory(args.contacts, run_id="bare2"), args.duration,
                                           args.concurrency)  # fmt: skip
            print(bare_full2.describe("bare aiohttp, full speed (again)"))
        finally:
            bare.stop()
    finally:
        graph.stop()
        work.cleanup()

    bare_rps = (bare_full.rps + bare_full2.rps) / 2
    summary.add("bare aiohttp full speed (mean of before/after)", bare_rps, "req/s")
    summary.add("hopthu serve full speed", full.rps, "req/s")
    summary.add("ratio hopthu / bare", full.rps / bare_rps if bare_rps else 0.0, "", TARGET_RATIO, higher=True)
    summary.add(f"bare ack p99 at {args.rate:g}/s", percentile(bare_rate.latencies_ms, 99), "ms")
    summary.add(f"hopthu ack p50 at {args.rate:g}/s", percentile(rate.latencies_ms, 50), "ms")
    summary.add(f"hopthu ack p99 at {args.rate:g}/s", percentile(rate.latencies_ms, 99), "ms", TARGET_P99_MS)
    summary.add(f"hopthu acked/sent at {args.rate:g}/s", rate.ok / rate.sent if rate.sent else 0.0, "", 1.0,
                higher=True)  # fmt: skip
    summary.add("hopthu server CPU per webhook (full speed)", full.server_cpu / max(full.ok, 1) * 1e6, "µs")
    summary.add("bare server CPU per webhook (full speed)", bare_full.server_cpu / max(bare_full.ok, 1) * 1e6, "µs")
    summary.add("messages stored / acked (both phases)",
                (stored_full + stored_rate) / max(full.ok + rate.ok + 64, 1), "", 1.0, higher=True)  # fmt: skip
    summary.note("load generator and servers share the same cores; CPU seconds show who was busy")
    busy = max(bare_full.client_cpu / bare_full.elapsed, bare_full2.client_cpu / bare_full2.elapsed)
    if busy > 0.85:
        summary.note(
            f"the load generator used {busy:.0%} of a core against the baseline: the bare figure is a floor "
            "(the ratio is optimistic by that much)"
        )
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase (default 10)")
    parser.add_argument("--concurrency", type=int, default=32, help="closed-loop workers (default 32)")
    parser.add_argument("--rate", type=float, default=1000.0, help="open-loop webhooks per second (default 1000)")
    parser.add_argument("--contacts", type=int, default=500, help="distinct customers (default 500)")
    parser.add_argument("--quick", action="store_true", help="2 s phases: a smoke run")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (database, server log)")
    args = parser.parse_args()
    if args.quick:
        args.duration = min(args.duration, 2.0)
    summary = asyncio.run(run(args))
    summary.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
