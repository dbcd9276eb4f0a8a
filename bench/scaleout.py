"""Scale-out: one and two `hopthu serve` processes on PostgreSQL with Redis between them, in one run.

Phases, each on a fresh scratch database (and an emptied Redis), with the same load generator:
  0. the baseline: a bare aiohttp handler (reads the body, answers 200) at full speed;
  1. ONE process: full-speed ingest (closed loop), then end-to-end throughput (webhooks acknowledged *and*
     turned into messages: until the inbound log is drained), then webhook → agent WebSocket latency at --rate
     msg/s (open loop; agents connected to the same process);
  2. TWO processes: the same, webhooks spread over both for throughput; for latency the webhooks go to process A
     and the agents are connected to process B, so every frame crossed Redis.
Printed: req/s and messages/s for 1 and 2 processes and their ratios (2 / 1), ingest ratio hopthu / bare
(target ≥ 0.60), webhook → agent p99 across processes at --rate (target ≤ 100 ms at 1,000 msg/s).

Load generators and WebSocket receivers are separate processes (`--clients`), so the benchmark process is not
what saturates first; latency is measured on CLOCK_MONOTONIC, shared by every process of the machine.

    python bench/scaleout.py [--duration 10] [--rate 1000] [--agents 4] [--clients 2] [--quick]
        [--database-url postgres://postgres@127.0.0.1:5432/test] [--redis-server /usr/bin/redis-server]

Needs PostgreSQL (a scratch database is created beside --database-url's and dropped afterwards) and either a
`redis-server` binary (started on a free port, without persistence) or --redis-url (a Redis whose keys under
`hopthu:` it may delete).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from bench.common import (
    PASSWORD,
    PYTHON,
    FakeGraphProcess,
    Server,
    Summary,
    WebhookFactory,
    Workdir,
    add_facebook_inbox,
    cli,
    collector_paused,
    fmt,
    free_port,
    hopthu_env,
    latency_line,
    percentile,
    settle,
    start_bare,
    start_hopthu,
)
from bench.wire import OpenLoop, http_post, open_receiver

TARGET_RATIO = 0.60
TARGET_P99_MS = 100.0
SCRIPT = str(Path(__file__).resolve())


# ---------------------------------------------------------------------------------------------- services


class Postgres:
    """Scratch databases beside the given URL's, dropped at the end."""

    def __init__(self, url: str) -> None:
        self.base = urlsplit(url)
        self.admin = urlunsplit(self.base._replace(scheme="postgresql"))
        self.made: list[str] = []

    async def fresh(self, label: str) -> str:
        import asyncpg

        name = f"hopthu_bench_{os.getpid()}_{label}"
        conn = await asyncpg.connect(self.admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self.made.append(name)
        return urlunsplit(self.base._replace(path=f"/{name}"))

    async def drop_all(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.admin)
        try:
            for name in self.made:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def counts(database_url: str, mid_prefix: str) -> tuple[int, int]:
    """(messages stored whose mid starts with the prefix, inbound events still unprocessed)."""
    import asyncpg

    conn = await asyncpg.connect(urlunsplit(urlsplit(database_url)._replace(scheme="postgresql")))
    try:
        # Pending first: a batch committed between the two reads then shows in `stored` (read the other way round,
        # the last batch could be counted as processed but not as stored: 4 messages short in one run).
        pending = await conn.fetchval("SELECT COUNT(*) FROM inbound_events WHERE processed = false")
        stored = await conn.fetchval("SELECT COUNT(*) FROM messages WHERE external_id LIKE $1", mid_prefix + "%")
    finally:
        await conn.close()
    return stored, pending


async def drain(database_url: str, mid_prefix: str, timeout: float = 120.0) -> tuple[int, int, float]:
    """Wait until the inbound log is drained; return (stored, pending, when it was drained: monotonic)."""
    deadline = time.monotonic() + timeout
    while True:
        stored, pending = await counts(database_url, mid_prefix)
        if pending == 0 or time.monotonic() > deadline:
            return stored, pending, time.monotonic()
        await asyncio.sleep(0.05)


class RedisProcess:
    def __init__(self, binary: str, cwd: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


async def empty_redis(url: str) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(url)
    for _ in range(100):
        try:
            keys = [k async for k in redis.scan_iter(match="hopthu:*")]
            if keys:
                await redis.delete(*keys)
            break
        except OSError:
            await asyncio.sleep(0.05)
    await redis.aclose()


# ---------------------------------------------------------------------------------------------- child processes


async def load_main(args: argparse.Namespace) -> None:
    """Closed loop against several servers (worker i → server i mod n); prints one JSON line."""
    urls = [u + "/webhooks/facebook" for u in args.urls.split(",")]
    factory = WebhookFactory(args.contacts, run_id=args.run_id)
    ok = sent = errors = 0
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=args.concurrency, keepalive_timeout=60)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        start_at = args.start_at
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        deadline = start_at + args.duration

        async def worker(i: int) -> None:
            nonlocal ok, sent, errors
            url = urls[i % len(urls)]
            while time.monotonic() < deadline:
                _, body, headers = factory.next()
                sent += 1
                t0 = time.monotonic()
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        if response.status == 200:
                            ok += 1
                            latencies.append((time.monotonic() - t0) * 1000)
                        else:
                            errors += 1
                except (aiohttp.ClientError, TimeoutError):
                    errors += 1

        with collector_paused():
            await asyncio.gather(*(worker(i) for i in range(args.concurrency)))
    print(json.dumps({"ok": ok, "sent": sent, "errors": errors, "elapsed": args.duration,
                      "p99": percentile(latencies, 99), "cpu": time.process_time()}))  # fmt: skip


async def receive_main(args: argparse.Namespace) -> None:
    """Agents' sockets (`bench.wire.FrameReceiver`): write `mid arrival` (monotonic) for every message.created
    frame once --expected frames have come or at --until, whichever is first."""
    tokens = json.loads(Path(args.tokens).read_text())
    records: list[tuple[int, bytes, float]] = []
    sockets = [await open_receiver(f"{args.url}/ws?token={t}", i, records, lambda: None) for i, t in enumerate(tokens)]
    for socket in sockets:
        socket.recording = True
    Path(args.ready).write_text("ready")
    with collector_paused():
        while len(records) < args.expected and time.monotonic() < args.until:
            await asyncio.sleep(0.1)
    Path(args.out).write_text("".join(f"{mid.decode()} {arrived}\n" for _, mid, arrived in records))
    for socket in sockets:
        socket.close()


# ---------------------------------------------------------------------------------------------- phases


@dataclass
class PhaseResult:
    processes: int
    ingest_rps: float = 0.0
    ingest_p99_ms: float = 0.0
    errors: int = 0
    messages_per_s: float = 0.0
    stored: int = 0
    acked: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    expected_frames: int = 0
    server_cpu: float = 0.0


async def full_speed(servers: list[Server], args: argparse.Namespace, run_id: str, database_url: str,
                     result: PhaseResult) -> None:  # fmt: skip
    start_at = time.monotonic() + 1.5  # every load generator has started by then
    cpu0 = sum(s.cpu_seconds() for s in servers)
    procs = [
        subprocess.Popen(
            [
                PYTHON,
                SCRIPT,
                "load",
                "--urls",
                ",".join(s.url for s in servers),
                "--duration",
                str(args.duration),
                "--concurrency",
                str(args.concurrency),
                "--contacts",
                str(args.contacts),
                "--run-id",
                f"{run_id}{c}",
                "--start-at",
                str(start_at),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for c in range(args.clients)
    ]
    outputs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    result.server_cpu = sum(s.cpu_seconds() for s in servers) - cpu0
    result.acked = sum(o["ok"] for o in outputs)
    result.errors = sum(o["errors"] for o in outputs)
    result.ingest_rps = result.acked / args.duration
    result.ingest_p99_ms = max(o["p99"] for o in outputs)
    stored, pending, drained_at = await drain(database_url, f"m_{run_id}")
    result.stored = stored
    result.messages_per_s = stored / max(drained_at - start_at, 1e-9)
    print(f"  full speed, {len(servers)} process(es): {result.acked:,} webhooks acked in {args.duration:g} s = "
          f"{fmt(result.ingest_rps)} req/s (ack p99 {fmt(result.ingest_p99_ms, 1)} ms, errors {result.errors}); "
          f"{stored:,} messages stored, {pending} pending, end to end {fmt(result.messages_per_s)} msg/s; "
          f"server CPU {result.server_cpu:.1f} s")  # fmt: skip


async def latency(senders: Server, receivers: Server, tokens: list[str], args: argparse.Namespace, work: Path,
                  result: PhaseResult) -> None:  # fmt: skip
    token_file, out_file, ready_file = work / "tokens.json", work / f"frames-{time.time_ns()}.txt", work / "ready"
    token_file.write_text(json.dumps(tokens))
    ready_file.unlink(missing_ok=True)
    until = time.monotonic() + args.duration + 30
    factory = WebhookFactory(args.contacts)
    url = senders.url + "/webhooks/facebook"
    total = int(args.duration * args.rate)
    requests = []
    for _ in range(total):  # built and signed before the clock (`bench.wire.OpenLoop` writes them as they are)
        mid, body, headers = factory.next()
        requests.append((mid, http_post(url, body, headers)))
    expected = total * len(tokens)
    receiver = subprocess.Popen(
        [PYTHON, SCRIPT, "receive", "--url", receivers.url, "--tokens", str(token_file), "--out", str(out_file),
         "--ready", str(ready_file), "--until", str(until), "--expected", str(expected)],
    )  # fmt: skip
    while not ready_file.exists():
        if receiver.poll() is not None:
            raise RuntimeError("the WebSocket receiver failed to start")
        await asyncio.sleep(0.05)
    sender = OpenLoop(url)
    await sender.warm(64)
    with collector_paused():
        await sender.run(requests, args.rate)
    sender.close()
    result.errors += total - len(sender.acked)  # refused, lost or unanswered
    # From the scheduled time, acknowledged or not: a stalled sender never hides latency.
    sent_at = {mid: sender.started + i / args.rate for i, (mid, _) in enumerate(requests)}
    # The receiver ends once every agent has every frame, or at its deadline.
    while receiver.poll() is None:
        await asyncio.sleep(0.2)
    for line in out_file.read_text().splitlines():
        mid, arrived = line.split()
        if mid in sent_at:
            result.latencies_ms.append((float(arrived) - sent_at[mid]) * 1000)
    result.expected_frames = expected
    received = {line.split()[0] for line in out_file.read_text().splitlines()}
    missing = [mid for mid in sent_at if mid not in received]
    if missing or result.errors:
        print(f"  {len(missing)} messages reached no agent (e.g. {missing[:3]}); {result.errors} webhooks not acked")
    line = latency_line("webhook → agent", result.latencies_ms)
    print(f"  webhooks to :{senders.port} at {args.rate:g}/s, {len(tokens)} agents on :{receivers.port}: "
          f"{len(result.latencies_ms):,} of {expected:,} frames; {line}")  # fmt: skip


async def bus_only(redis_url: str, rate: float, duration: float) -> list[float]:
    """The cross-process hop alone: two RedisBus (as two processes) on one Redis; each message's three events
    (conversation.updated, message.created, a routing event) published on one, timed until delivered on the other."""
    from inbox.bus import Event
    from inbox.bus_redis import RedisBus

    await empty_redis(redis_url)
    a, b = RedisBus(redis_url, prefix="hopthu-bench"), RedisBus(redis_url, prefix="hopthu-bench")
    await a.start()
    await b.start()
    while not (a.connected and b.connected):
        await asyncio.sleep(0.01)
    on_b = b.subscribe(None, lambda event: True)
    latencies: list[float] = []
    total = int(rate * duration)

    async def receive() -> None:
        while len(latencies) < total and not on_b.overflowed:
            for event in await on_b.next_batch():
                if event.type == "message.created":
                    latencies.append((time.monotonic() - event.data["sent"]) * 1000)

    receiver = asyncio.create_task(receive())
    t0 = time.monotonic()
    for i in range(total):
        delay = t0 + i / rate - time.monotonic()
        await asyncio.sleep(max(delay, 0.0))  # always yield: the flusher and the reader share this loop
        body = {"id": i, "text": "Shop ơi, áo sơ mi trắng này còn size M không ạ?", "sent": time.monotonic()}
        await a.publish(Event("conversation.updated", {"id": i, "preview": body["text"]}, inbox_id=1))
        await a.publish(Event("message.created", body, inbox_id=1))
        await a.publish(Event("conversation.assigned", {"id": i, "assignee_id": 7}, inbox_id=1))
    try:
        await asyncio.wait_for(receiver, 30)
    except TimeoutError:
        receiver.cancel()
    await a.close()
    await b.close()
    if on_b.overflowed:
        print("  bus only: the subscriber fell more than Subscription.MAX_PENDING behind (resync)")
    print(f"  bus only, {rate:g} msg/s × 3 events, A → Redis → B: {latency_line('publish → delivered', latencies)}")
    return latencies


async def make_staff(env: dict[str, str], cwd: Path, server: Server, count: int) -> list[str]:
    emails = [f"giamsat{i}@hoamai.vn" for i in range(count)]
    for email in emails:  # supervisors read every inbox
        cli(env, cwd, "user", "add", "--email", email, "--password", PASSWORD, "--role", "supervisor")
    tokens = []
    async with aiohttp.ClientSession() as session:
        for email in emails:
            async with session.post(server.url + "/api/auth/login", json={"email": email, "password": PASSWORD}) as r:
                tokens.append((await r.json())["token"])
    return tokens


async def warm(servers: list[Server], database_url: str, contacts: int) -> None:
    factory = WebhookFactory(contacts, run_id="warm")
    async with aiohttp.ClientSession() as session:
        for start in range(0, contacts, 50):
            batch = [factory.next() for _ in range(start, min(start + 50, contacts))]
            responses = await asyncio.gather(*(
                session.post(servers[i % len(servers)].url + "/webhooks/facebook", data=body, headers=headers)
                for i, (_, body, headers) in enumerate(batch)
            ))  # fmt: skip
            for response in responses:
                response.release()
    await drain(database_url, "m_warm_")


async def phase(
    n: int, args: argparse.Namespace, pg: Postgres, redis_url: str, graph_url: str, work: Path
) -> PhaseResult:
    print(f"\n== {n} process(es)")
    database_url = await pg.fresh(f"p{n}")
    await empty_redis(redis_url)
    env = hopthu_env(work / "unused.db", work, graph_url)
    env.update(HOPTHU_DATABASE_URL=database_url, HOPTHU_REDIS_URL=redis_url)
    add_facebook_inbox(env, work)
    servers: list[Server] = []
    result = PhaseResult(n)
    try:
        for _ in range(n):  # one after the other: the first applies the migrations
            servers.append(await start_hopthu(env, work, nofile=65536))
        tokens = await make_staff(env, work, servers[-1], args.agents)
        await warm(servers, database_url, args.contacts)
        # What the warm-up left (NLP, profile lookups) is over before the clock starts: every server quiet in the
        # same window, not one after the other.
        await asyncio.gather(*(settle(server) for server in servers))
        await full_speed(servers, args, f"full{n}_", database_url, result)
        await asyncio.gather(*(settle(server) for server in servers))
        await latency(servers[0], servers[-1], tokens, args, work, result)
        await drain(database_url, "m_")
    finally:
        for server in servers:
            server.stop()
    return result


async def bare_phase(args: argparse.Namespace, work: Path) -> float:
    bare = await start_bare(work)
    try:
        result = PhaseResult(0)
        start_at = time.monotonic() + 1.5
        procs = [
            subprocess.Popen(
                [
                    PYTHON,
                    SCRIPT,
                    "load",
                    "--urls",
                    bare.url,
                    "--duration",
                    str(args.duration),
                    "--concurrency",
                    str(args.concurrency),
                    "--contacts",
                    str(args.contacts),
                    "--run-id",
                    f"bare{c}_",
                    "--start-at",
                    str(start_at),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for c in range(args.clients)
        ]
        outputs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
        result.ingest_rps = sum(o["ok"] for o in outputs) / args.duration
    finally:
        bare.stop()
    print(f"  bare aiohttp, full speed: {fmt(result.ingest_rps)} req/s")
    return result.ingest_rps


async def run(args: argparse.Namespace) -> Summary:
    summary = Summary("bench/scaleout.py — one vs two processes on PostgreSQL + Redis")
    work = Workdir(keep=args.keep, prefix="hopthu-scaleout-")
    graph = FakeGraphProcess(work.path)
    pg = Postgres(args.database_url)
    redis_proc = RedisProcess(args.redis_server, work.path) if not args.redis_url else None
    redis_url = args.redis_url or redis_proc.url  # type: ignore[union-attr]
    print(f"workdir {work.path}; {args.duration:g} s phases, {args.clients} load generator(s) × {args.concurrency} "
          f"workers, latency at {args.rate:g} msg/s with {args.agents} agents; {os.cpu_count()} cores")  # fmt: skip
    try:
        await graph.wait()
        print("\n== the Redis bus alone")
        bus_latencies = await bus_only(redis_url, 1000.0, args.duration)
        print("\n== baseline")
        bare_before = await bare_phase(args, work.path)
        one = await phase(1, args, pg, redis_url, graph.url, work.path)
        two = await phase(2, args, pg, redis_url, graph.url, work.path)
        print("\n== baseline again")
        bare_after = await bare_phase(args, work.path)
    finally:
        graph.stop()
        if redis_proc is not None:
            redis_proc.stop()
        await pg.drop_all()
        work.cleanup()

    bare = (bare_before + bare_after) / 2
    summary.add("bare aiohttp full speed (mean before/after)", bare, "req/s")
    summary.add("1 process: ingest full speed", one.ingest_rps, "req/s")
    summary.add("2 processes: ingest full speed", two.ingest_rps, "req/s")
    summary.add("ingest ratio 2 / 1 processes", two.ingest_rps / max(one.ingest_rps, 1e-9), "")
    summary.add("ingest ratio hopthu (1 process, Postgres) / bare", one.ingest_rps / max(bare, 1e-9), "",
                TARGET_RATIO, higher=True)  # fmt: skip
    summary.add("ingest ratio hopthu (2 processes) / bare", two.ingest_rps / max(bare, 1e-9), "", TARGET_RATIO,
                higher=True)  # fmt: skip
    summary.add("1 process: end-to-end messages/s", one.messages_per_s, "msg/s")
    summary.add("2 processes: end-to-end messages/s", two.messages_per_s, "msg/s")
    summary.add("end-to-end ratio 2 / 1 processes", two.messages_per_s / max(one.messages_per_s, 1e-9), "")
    summary.add(f"1 process: webhook → agent p50 at {args.rate:g}/s", percentile(one.latencies_ms, 50), "ms")
    summary.add(f"1 process: webhook → agent p99 at {args.rate:g}/s", percentile(one.latencies_ms, 99), "ms")
    summary.add(f"2 processes (A → Redis → B): p50 at {args.rate:g}/s", percentile(two.latencies_ms, 50), "ms")
    summary.add(f"2 processes (A → Redis → B): p99 at {args.rate:g}/s", percentile(two.latencies_ms, 99), "ms",
                TARGET_P99_MS)  # fmt: skip
    p99_one, p99_two = percentile(one.latencies_ms, 99), percentile(two.latencies_ms, 99)
    summary.add("p99 ratio 2 / 1 processes", p99_two / max(p99_one, 1e-9), "")
    summary.add("bus alone: publish → delivered p99 at 1,000 msg/s (3 events each)", percentile(bus_latencies, 99),
                "ms", TARGET_P99_MS)  # fmt: skip
    for r in (one, two):
        summary.add(f"{r.processes} process(es): frames received / expected",
                    len(r.latencies_ms) / max(r.expected_frames, 1), "", 1.0, higher=True)  # fmt: skip
        summary.add(f"{r.processes} process(es): messages stored / acked", r.stored / max(r.acked, 1), "", 1.0,
                    higher=True)  # fmt: skip
    if args.rate < 1000:
        summary.note(f"latency measured at {args.rate:g} msg/s, not the 1,000 msg/s of the target")
    summary.note("bare = aiohttp handler that reads the body and answers 200 (as bench/ingest.py)")
    return summary


async def missing_services(args: argparse.Namespace) -> str:
    """Why the benchmark cannot run here ("" when it can): it needs PostgreSQL and a Redis."""
    import asyncpg

    try:
        conn = await asyncpg.connect(Postgres(args.database_url).admin, timeout=5)
        await conn.close()
    except (OSError, asyncpg.PostgresError) as exc:
        return f"PostgreSQL at {args.database_url} is not reachable ({exc})"
    if not args.redis_url and not os.access(args.redis_server, os.X_OK):
        return f"no redis-server at {args.redis_server} (or pass --redis-url)"
    return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    load = sub.add_parser("load")
    load.add_argument("--urls", required=True)
    load.add_argument("--duration", type=float, required=True)
    load.add_argument("--concurrency", type=int, required=True)
    load.add_argument("--contacts", type=int, required=True)
    load.add_argument("--run-id", required=True)
    load.add_argument("--start-at", type=float, required=True)
    receive = sub.add_parser("receive")
    for name in ("--url", "--tokens", "--out", "--ready"):
        receive.add_argument(name, required=True)
    receive.add_argument("--until", type=float, required=True)
    receive.add_argument("--expected", type=int, required=True)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per timed phase (default 10)")
    parser.add_argument("--concurrency", type=int, default=32, help="closed-loop workers per load generator")
    parser.add_argument("--clients", type=int, default=max(1, min(4, (os.cpu_count() or 2) // 4)),
                        help="load generator processes (default: cores / 4, 1..4)")  # fmt: skip
    parser.add_argument("--rate", type=float, default=1000.0, help="webhooks per second for latency (default 1000)")
    parser.add_argument("--agents", type=int, default=4, help="agents' WebSockets receiving every message")
    parser.add_argument("--contacts", type=int, default=500, help="distinct customers (default 500)")
    parser.add_argument("--database-url", default=os.environ.get("HOPTHU_TEST_DATABASE_URL")
                        or "postgres://postgres@127.0.0.1:5432/test")  # fmt: skip
    parser.add_argument("--redis-url", default="", help="use this Redis instead of starting redis-server")
    parser.add_argument("--redis-server", default=shutil.which("redis-server") or "/usr/bin/redis-server")
    parser.add_argument("--quick", action="store_true", help="3 s phases, 300 msg/s, 2 agents: a smoke run")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (server logs)")
    args = parser.parse_args()
    if args.command == "load":
        asyncio.run(load_main(args))
        return 0
    if args.command == "receive":
        asyncio.run(receive_main(args))
        return 0
    missing = asyncio.run(missing_services(args))
    if missing:
        print(f"bench/scaleout.py skipped: {missing}")
        return 0
    if args.quick:
        args.duration, args.rate, args.agents, args.contacts = min(args.duration, 3.0), min(args.rate, 300.0), 2, 100
    # SIGTERM as Ctrl-C: the clean-up (servers, Redis, scratch databases) still runs.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    summary = asyncio.run(run(args))
    summary.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
