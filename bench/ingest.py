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

Page comments (`feed` changes on /webhooks/facebook) and Zalo OA webhooks (/webhooks/zalo, against a local fake
Zalo API) get the same full-speed comparison with bare aiohttp (`--channels`, default all three).

    python bench/ingest.py [--duration 10] [--concurrency 32] [--rate 1000] [--channels comments,zalo]
                           [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from bench.common import (
    APP_SECRET,
    PAGE_ID,
    SETTLE_WINDOW,
    FakeGraphProcess,
    Server,
    Summary,
    WebhookFactory,
    Workdir,
    add_facebook_inbox,
    cli,
    collector_paused,
    drain,
    fmt,
    hopthu_env,
    latency_line,
    percentile,
    settle,
    sqlite_connect,
    start_bare,
    start_hopthu,
    text_for,
    wait_profiles,
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
    settled: tuple[float, float] = (0.0, 0.0)  # seconds waited for the server to go quiet, its load when asked

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def describe(self, label: str) -> str:
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        return (
            f"{label}: {self.ok:,} ok / {self.sent:,} sent in {self.elapsed:.1f} s = {fmt(self.rps)} req/s "
            f"(status {codes or '-'}; errors {self.errors}); CPU s: server {self.server_cpu:.1f}, "
            f"load generator {self.client_cpu:.1f}\n    {latency_line('ack latency', self.latencies_ms)}"
            + (
                f"\n    before the clock: waited {self.settled[0]:.1f} s for the server to go quiet "
                f"(it was using {self.settled[1]:.0%} of a core)"
                if self.settled[0] > SETTLE_WINDOW + 1.0  # more than the one quiet window it always waits
                else ""
            )
        )


def _session(connections: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=connections, keepalive_timeout=60, force_close=False)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30))


OA_ID = "4318650519027215123"
ZALO_APP_ID = "3608465249409039671"
OA_SECRET = "bench_oa_secret"
POST_ID = "106001234567890_712750021053074"


class CommentFactory:
    """Signed `feed` comment webhooks (seconds, string ids), one thread per customer on one post."""

    def __init__(self, contacts: int = 500, run_id: str | None = None) -> None:
        from channels.fakes import page_comment, signed

        self._comment, self._signed = page_comment, signed
        self.contacts = contacts
        self.run_id = run_id or f"{int(time.time() * 1000):x}"
        self._counter = itertools.count()

    def next(self) -> tuple[str, bytes, dict[str, str]]:
        n = next(self._counter)
        comment_id = f"c_{self.run_id}_{n}"
        user = f"{24_260_000_000_000_000 + n % self.contacts}"
        body = self._comment(PAGE_ID, POST_ID, comment_id, user, text_for(n), int(time.time()), name=f"Khách {n}")
        raw, headers = self._signed(body, APP_SECRET)
        return comment_id, raw, headers


class ZaloFactory:
    """Signed Zalo `user_send_text` webhooks (string ids beyond 2^53, millisecond string timestamps)."""

    def __init__(self, contacts: int = 500, run_id: str | None = None) -> None:
        from channels.fakes_zalo import signed, user_text

        self._text, self._signed = user_text, signed
        self.contacts = contacts
        self.run_id = run_id or f"{int(time.time() * 1000):x}"
        self._counter = itertools.count()

    def next(self) -> tuple[str, bytes, dict[str, str]]:
        n = next(self._counter)
        msg_id = f"z_{self.run_id}_{n}"
        user = f"{3_000_000_000_000_000_000 + n % self.contacts}"
        body = self._text(ZALO_APP_ID, OA_ID, user, msg_id, text_for(n), int(time.time() * 1000))
        raw, headers = self._signed(body, OA_SECRET)
        return msg_id, raw, headers


CHANNELS = {  # name → (factory, hopthu path, prefix of the stored external ids)
    "comments": (CommentFactory, "/webhooks/facebook", "c_"),
    "zalo": (ZaloFactory, "/webhooks/zalo", "z_"),
}


async def warm(url: str, db_path: Path, factory: Any, prefix: str) -> None:
    """Every customer writes once, untimed: identities, conversations and profiles exist before the clock."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        for start in range(0, factory.contacts, 50):
            bodies = [factory.next() for _ in range(start, min(start + 50, factory.contacts))]
            posts = (session.post(url, data=raw, headers=headers) for _, raw, headers in bodies)
            for response in await asyncio.gather(*posts, return_exceptions=True):
                if isinstance(response, BaseException):  # reported, not fatal: the timed phase still runs
                    print(f"    (warm-up: {type(response).__name__} {response})")
                else:
                    response.release()
    await drain(db_path, prefix)
    missing = await wait_profiles(db_path)  # new customers cost a profile call each: not inside the timed window
    if missing:
        print(f"    (warm-up: {missing} customer profiles still not fetched)")
    await asyncio.sleep(1.0)  # post lookups of the new threads settle


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


async def closed_loop(
    server: Server, factory: Any, duration: float, concurrency: int, path: str = "/webhooks/facebook"
) -> LoadResult:
    """`concurrency` workers, each sending its next webhook as soon as the previous one is answered.

    The bare baseline answers any body on /webhooks/facebook: the same framework work for every channel."""
    url = server.url + path
    result = LoadResult(settled=await settle(server))
    async with _session(concurrency) as session:
        # Warm the connections up (keep-alive) before the clock starts.
        await asyncio.gather(*(_post(session, url, factory, LoadResult(), time.perf_counter()) for _ in range(32)))
        with collector_paused():
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
    result = LoadResult(settled=await settle(server))
    tasks: set[asyncio.Task[None]] = set()
    async with _session(max_in_flight) as session:
        await asyncio.gather(*(_post(session, url, factory, LoadResult(), time.perf_counter()) for _ in range(32)))
        with collector_paused():
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
    summary = Summary("bench/ingest.py — Messenger, Page comment and Zalo webhook ingest")
    work = Workdir(keep=args.keep)
    graph = FakeGraphProcess(work.path)
    channels = [c for c in args.channels.split(",") if c in CHANNELS]
    extra: dict[str, dict[str, Any]] = {c: {} for c in channels}
    from channels.fakes_zalo import FakeZaloAPI

    zalo_fake = FakeZaloAPI()  # profile lookups of the Zalo customers (warm-up only) and token refreshes
    try:
        await graph.wait()
        zalo_url = await zalo_fake.start()
        db_path = work.path / "ingest.db"
        env = hopthu_env(db_path, work.path, graph.url)
        env.update(HOPTHU_ZALO_OPENAPI_URL=zalo_url, HOPTHU_ZALO_OAUTH_URL=zalo_url)
        add_facebook_inbox(env, work.path)
        if "zalo" in channels:
            cli(env, work.path, "inbox", "add", "--channel", "zalo", "--name", "Zalo OA", "--oa-id", OA_ID,
                "--app-id", ZALO_APP_ID, "--oa-secret", OA_SECRET, "--access-token", zalo_fake.access_token,
                "--refresh-token", zalo_fake.refresh_token, "--app-secret", "bench-zalo-app-secret")  # fmt: skip
        print(f"workdir {work.path}; duration {args.duration:g} s, concurrency {args.concurrency}, "
              f"rate {args.rate:g}/s, {args.contacts} customers")  # fmt: skip

        bare = await start_bare(work.path)
        try:
            factory = WebhookFactory(args.contacts, run_id="bare")
            bare_full = await closed_loop(bare, factory, args.duration, args.concurrency)
            print(bare_full.describe("bare aiohttp, full speed"))
            bare_rate = await open_loop(bare, factory, args.duration, args.rate)
            print(bare_rate.describe(f"bare aiohttp, {args.rate:g}/s open loop"))
            for name in channels:
                extra[name]["bare"] = await closed_loop(bare, CHANNELS[name][0](args.contacts, "bare"), args.duration,
                                                        args.concurrency)  # fmt: skip
                print(extra[name]["bare"].describe(f"bare aiohttp, full speed, {name} bodies"))
        finally:
            bare.stop()

        hopthu = await start_hopthu(env, work.path)
        try:
            await warm_contacts(hopthu.url, db_path, args.contacts)
            factory = WebhookFactory(args.contacts)
            full = await closed_loop(hopthu, factory, args.duration, args.concurrency)
            print(full.describe("hopthu serve, full speed"))
            backlog = _unapplied(db_path)  # acknowledged, not yet applied: what the processor does next, alone
            t0 = time.perf_counter()
            stored_full, pending = await drain(db_path, f"m_{factory.run_id}_")
            drained_in = time.perf_counter() - t0
            applier_rate = backlog / drained_in if drained_in else 0.0
            print(
                f"    stored after drain: {stored_full:,} messages for {full.ok + 32:,} acknowledged webhooks "
                f"(incl. 32 warm-up), {pending} still pending; drained in {drained_in:.1f} s "
                f"({backlog:,} left when the load stopped: {applier_rate:,.0f} msg/s applied with no webhooks)"
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
            for name in channels:
                make, path, prefix = CHANNELS[name]
                await warm(hopthu.url + path, db_path, make(args.contacts, "warm"), f"{prefix}warm_")
                factory_c = make(args.contacts)
                result = extra[name]["hopthu"] = await closed_loop(hopthu, factory_c, args.duration, args.concurrency,
                                                                   path)  # fmt: skip
                print(result.describe(f"hopthu serve, full speed, {name}"))
                stored_c, pending_c = await drain(db_path, f"{prefix}{factory_c.run_id}_")
                extra[name]["stored"] = stored_c
                print(f"    stored after drain: {stored_c:,} {name} messages for {result.ok + 32:,} acknowledged "
                      f"webhooks (incl. 32 warm-up), {pending_c} still pending")  # fmt: skip
        finally:
            hopthu.stop()

        # The baseline again, so background load drifting during the run biases neither side.
        bare = await start_bare(work.path)
        try:
            bare_full2 = await closed_loop(bare, WebhookFactory(args.contacts, run_id="bare2"), args.duration,
                                           args.concurrency)  # fmt: skip
            print(bare_full2.describe("bare aiohttp, full speed (again)"))
            for name in channels:
                extra[name]["bare2"] = await closed_loop(bare, CHANNELS[name][0](args.contacts, "bare2"),
                                                         args.duration, args.concurrency)  # fmt: skip
                print(extra[name]["bare2"].describe(f"bare aiohttp, full speed, {name} bodies (again)"))
        finally:
            bare.stop()
    finally:
        graph.stop()
        await zalo_fake.stop()
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
    summary.add("hopthu applier alone (backlog after full speed)", applier_rate, "msg/s")
    summary.add("bare server CPU per webhook (full speed)", bare_full.server_cpu / max(bare_full.ok, 1) * 1e6, "µs")
    summary.add("messages stored / acked (both phases)",
                (stored_full + stored_rate) / max(full.ok + rate.ok + 64, 1), "", 1.0, higher=True)  # fmt: skip
    for name in channels:
        base = (extra[name]["bare"].rps + extra[name]["bare2"].rps) / 2
        mine = extra[name]["hopthu"]
        summary.add(f"{name}: hopthu serve full speed", mine.rps, "req/s")
        summary.add(f"{name}: ratio hopthu / bare", mine.rps / base if base else 0.0, "", TARGET_RATIO, higher=True)
        summary.add(f"{name}: messages stored / acked", extra[name]["stored"] / max(mine.ok + 32, 1), "", 1.0,
                    higher=True)  # fmt: skip
    summary.note("load generator and servers share the same cores; CPU seconds show who was busy")
    busy = max(bare_full.client_cpu / bare_full.elapsed, bare_full2.client_cpu / bare_full2.elapsed)
    if busy > 0.85:
        summary.note(
            f"the load generator used {busy:.0%} of a core against the baseline: the bare figure is a floor "
            "(the ratio is optimistic by that much)"
        )
    return summary


def _unapplied(db_path: Path) -> int:
    with sqlite_connect(db_path) as conn:
        return conn.execute("SELECT COUNT(*) FROM inbound_events WHERE processed = 0").fetchone()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase (default 10)")
    parser.add_argument("--concurrency", type=int, default=32, help="closed-loop workers (default 32)")
    parser.add_argument("--rate", type=float, default=1000.0, help="open-loop webhooks per second (default 1000)")
    parser.add_argument("--contacts", type=int, default=500, help="distinct customers (default 500)")
    parser.add_argument("--quick", action="store_true", help="2 s phases: a smoke run")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (database, server log)")
    parser.add_argument("--channels", default="comments,zalo", help="besides Messenger: comments,zalo (default both)")
    args = parser.parse_args()
    if args.quick:
        args.duration = min(args.duration, 2.0)
    summary = asyncio.run(run(args))
    summary.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
