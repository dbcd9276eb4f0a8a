"""Real-time delivery: webhook → agent WebSocket frame latency, and memory per idle WebSocket.

1. Latency: `hopthu serve` (SQLite) in its own process, 50 agents (inbox members) logged in through
   /api/auth/login and connected to /ws?token=…; signed Messenger webhooks at a fixed --rate msg/s (open loop)
   for --duration s. Each webhook's scheduled send time is stamped per mid; every agent's `message.created` frame
   is matched by `data.external_id`. Target p50 ≤ 15 ms, p99 ≤ 60 ms (over every agent's frame).
   The WebSocket clients live in a receiver subprocess (CLOCK_MONOTONIC is shared between processes), so
   parsing 50 agents' frames does not slow the load generator's event loop.
2. Memory: a fresh server; VmRSS from /proc/<pid>/status before and after --idle-sockets (5,000) idle agent
   sockets are connected and settled. Target ≤ 16 KiB per socket. Both the receiver and the server get a raised
   RLIMIT_NOFILE.

    python bench/realtime.py [--rate 1000] [--duration 10] [--agents 50] [--idle-sockets 5000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import orjson

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
    drain,
    fmt,
    hopthu_env,
    latency_line,
    name_for,
    percentile,
    raise_nofile,
    settle,
    start_hopthu,
    warm_contacts,
)
from bench.wire import FrameReceiver, OpenLoop, http_post, open_receiver

TARGET_P50_MS = 15.0
TARGET_P99_MS = 60.0
TARGET_KIB_PER_SOCKET = 16.0
NOFILE = 20_000


# --------------------------------------------------------------------------------------------- set-up


def make_agents(env: dict[str, str], cwd: Path, db_path: Path, count: int) -> list[str]:
    """One agent through the CLI (migrates, hashes the password), the rest copied in SQL; all inbox members."""
    first = cli(env, cwd, "user", "add", "--email", "agent1@hoamai.vn", "--password", PASSWORD, "--role", "agent",
                "--name", name_for(1))  # fmt: skip
    emails = ["agent1@hoamai.vn"] + [f"agent{i}@hoamai.vn" for i in range(2, count + 1)]
    conn = sqlite3.connect(db_path)
    with conn:
        password_hash, created = conn.execute(
            "SELECT password_hash, created_at FROM users WHERE id = ?", (first["id"],)
        ).fetchone()
        conn.executemany(
            "INSERT INTO users (email, name, role, password_hash, is_active, created_at, permissions) "
            "VALUES (?,?,?,?,?,?,?)",
            [(email, name_for(i + 2), "agent", password_hash, 1, created, "[]") for i, email in enumerate(emails[1:])],
        )
        inbox_ids = [r[0] for r in conn.execute("SELECT id FROM inboxes")]
        user_ids = [r[0] for r in conn.execute("SELECT id FROM users WHERE role = 'agent'")]
        conn.executemany(
            "INSERT INTO inbox_members (inbox_id, user_id) VALUES (?, ?)",
            [(i, u) for i in inbox_ids for u in user_ids],
        )
    conn.close()
    return emails


async def login_all(base: str, emails: list[str]) -> list[str]:
    async with aiohttp.ClientSession() as session:

        async def one(email: str) -> str:
            async with session.post(base + "/api/auth/login", json={"email": email, "password": PASSWORD}) as r:
                body = await r.json()
                if r.status != 200:
                    raise RuntimeError(f"login {email}: {r.status} {body}")
                return body["token"]

        tokens = []
        for i in range(0, len(emails), 8):  # a few at a time: password hashing is deliberately slow
            tokens += await asyncio.gather(*(one(e) for e in emails[i : i + 8]))
        return tokens


# --------------------------------------------------------------------------------------------- receiver process


async def receiver_main(args: argparse.Namespace) -> None:
    """Connect sockets; record (socket, external_id, monotonic time) of message.created frames until told to stop.
    The sockets are `bench.wire.FrameReceiver`s: an aiohttp client spent half a core here at 1,000 msg/s."""
    raise_nofile(NOFILE)
    tokens = json.loads(Path(args.tokens).read_text())
    records: list[tuple[int, bytes, float]] = []
    record = args.mode == "record"
    ready = [0]
    failed = [0]
    target = [args.count]  # lowered to the sockets actually opened when --deadline cuts the connecting short
    all_ready = asyncio.Event()
    sockets: list[FrameReceiver] = []

    def settled() -> None:
        if ready[0] + failed[0] >= target[0]:
            all_ready.set()

    def got_ready() -> None:
        ready[0] += 1
        settled()

    async def client(index: int, token: str) -> None:
        try:
            socket = await open_receiver(f"{args.url}/ws?token={token}", index, records, got_ready)
        except (OSError, TimeoutError):
            failed[0] += 1
            settled()
            return
        socket.recording = record
        sockets.append(socket)
        await socket.closed
        if not socket.ready:
            failed[0] += 1
            settled()

    def frames() -> int:
        return sum(socket.frames for socket in sockets)

    def still_open() -> int:
        return sum(1 for socket in sockets if not socket.closed.done())

    tasks = []
    deadline = time.monotonic() + args.deadline
    for i in range(args.count):
        tasks.append(asyncio.create_task(client(i, tokens[i % len(tokens)])))
        if i % 50 == 49:
            await asyncio.sleep(0)  # let connections complete instead of opening thousands at once
            while len(tasks) - ready[0] - failed[0] > 200:
                await asyncio.sleep(0.01)
            if time.monotonic() > deadline:
                break
    target[0] = len(tasks)
    settled()
    await all_ready.wait()
    status = {"ready": ready[0], "failed": failed[0], "frames": frames(), "asked": args.count}
    print(json.dumps(status), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    with collector_paused() if record else contextlib.nullcontext():  # recording frames: no pauses of ours
        while True:
            line = (await reader.readline()).decode().strip()
            if line == "frames":
                print(json.dumps({"frames": frames(), "open": still_open(), "cpu": time.process_time()}), flush=True)
            elif line in ("stop", ""):
                break
    Path(args.out).write_bytes(orjson.dumps([(index, mid.decode(), at) for index, mid, at in records]))
    status = {"frames": frames(), "records": len(records), "open": still_open(), "cpu": time.process_time()}
    print(json.dumps(status), flush=True)
    for socket in sockets:
        socket.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class Receiver:
    def __init__(
        self, work: Path, url: str, tokens: list[str], count: int, mode: str, deadline: float = 3600.0
    ) -> None:
        self.tokens_file = work / f"tokens-{mode}.json"
        self.tokens_file.write_text(json.dumps(tokens))
        self.out = work / f"frames-{mode}.json"
        ws_url = url.replace("http://", "ws://")
        self.proc = subprocess.Popen(
            [PYTHON, str(Path(__file__).resolve()), "receiver", "--url", ws_url, "--tokens", str(self.tokens_file),
             "--count", str(count), "--mode", mode, "--out", str(self.out), "--deadline", str(deadline)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    async def line(self, timeout: float = 300.0) -> dict:
        text = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), timeout)  # type: ignore[union-attr]
        if not text:
            raise RuntimeError(f"receiver exited ({self.proc.poll()})")
        return json.loads(text)

    async def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return await self.line()

    async def stop(self) -> tuple[dict, list]:
        status = await self.ask("stop")
        self.proc.wait(timeout=60)
        return status, orjson.loads(self.out.read_bytes())

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# --------------------------------------------------------------------------------------------- phases


async def send_at_rate(
    url: str, factory: WebhookFactory, duration: float, rate: float
) -> tuple[dict[str, float], int, int, list[float]]:
    """Open loop; returns {mid: scheduled monotonic send time} of acknowledged webhooks, sent, errors, ack ms.
    Every request is built and signed before the clock starts (`bench.wire.OpenLoop` writes it as it is)."""
    total = int(duration * rate)
    requests = []
    for _ in range(total):
        mid, body, headers = factory.next()
        requests.append((mid, http_post(url, body, headers)))
    sender = OpenLoop(url)
    await sender.warm(64)
    with collector_paused():
        await sender.run(requests, rate)
    sender.close()
    return sender.acked, total, sender.errors, sender.ack_ms  # type: ignore[return-value]


async def latency_phase(args: argparse.Namespace, work: Path, env: dict[str, str], db_path: Path) -> dict:
    emails = make_agents(env, work, db_path, args.agents)
    server = await start_hopthu(env, work, nofile=NOFILE)
    receiver: Receiver | None = None
    try:
        tokens = await login_all(server.url, emails)
        receiver = Receiver(work, server.url, tokens, args.agents, "record")
        status = await receiver.line()
        print(f"{status['ready']} agents connected ({status['failed']} failed)")
        # Warm-up outside the timed window: every customer's conversation exists and their profile is fetched.
        await warm_contacts(server.url, db_path, args.contacts)
        await settle(server)  # the warm-up's NLP and profile lookups are over before the clock starts
        factory = WebhookFactory(args.contacts)
        receiver_cpu0 = (await receiver.ask("frames"))["cpu"]
        split0, client_cpu0, t0 = server.cpu_split(), time.process_time(), time.monotonic()
        sent_at, sent, errors, acks = await send_at_rate(
            server.url + "/webhooks/facebook", factory, args.duration, args.rate
        )
        split1 = server.cpu_split()
        user, system = split1[0] - split0[0], split1[1] - split0[1]
        server_cpu = user + system
        client_cpu = time.process_time() - client_cpu0
        stored, pending = await drain(db_path, f"m_{factory.run_id}_", timeout=120)
        # Wait for the frames to stop growing (the fan-out may trail the processing).
        previous, last_growth = -1, time.monotonic()
        for _ in range(240):
            now = await receiver.ask("frames")
            if now["frames"] == previous:
                break
            previous, last_growth, receiver_cpu1 = now["frames"], time.monotonic(), now["cpu"]
            await asyncio.sleep(0.25)
        window = last_growth - t0  # from the first webhook to the last frame (±0.25 s)
        total_cpu = server.cpu_seconds() - sum(split0)
        rss = server.rss_kib()
        status, records = await receiver.stop()
        receiver = None
    finally:
        if receiver is not None:
            receiver.kill()
        server.stop()
    latencies = [(at - sent_at[mid]) * 1000 for _, mid, at in records if mid in sent_at]
    expected = len(sent_at) * args.agents
    per_agent_first = {}
    for index, mid, at in records:
        if mid in sent_at and index == 0:
            per_agent_first[mid] = (at - sent_at[mid]) * 1000
    print(
        f"sent {sent:,} webhooks at {args.rate:g}/s for {args.duration:g} s: {len(sent_at):,} acknowledged, "
        f"{errors} errors; stored {stored:,} ({pending} pending); server CPU {server_cpu:.1f} s "
        f"(user {user:.1f}, system {system:.1f}), "
        f"load generator CPU {client_cpu:.1f} s; server RSS after {rss / 1024:.0f} MiB"
    )
    print(
        f"    from the first webhook to the last frame: {window:.1f} s; server CPU in that window {total_cpu:.1f} s, "
        f"receiver (WebSocket clients) CPU {receiver_cpu1 - receiver_cpu0:.1f} s"
    )
    print(f"    {latency_line('webhook ack', acks)}")
    print(f"    {latency_line('webhook → frame, all agents', latencies)}")
    print(f"    {latency_line('webhook → frame, agent #1 only', list(per_agent_first.values()))}")
    print(f"    frames matched {len(latencies):,} of {expected:,} expected; receiver saw {status['frames']:,} frames")
    return {
        "receiver_busy": (receiver_cpu1 - receiver_cpu0) / max(window, 1e-9),
        "latencies": latencies,
        "expected": expected,
        "acks": acks,
        "sent": sent,
        "acked": len(sent_at),
        "server_cpu": server_cpu,
        "server_cpu_window": total_cpu,
    }


async def memory_phase(args: argparse.Namespace, work: Path, env: dict[str, str], db_path: Path) -> dict:
    """A fresh server process; RSS before and after `--idle-sockets` idle agent sockets."""
    emails = [f"agent{i}@hoamai.vn" for i in range(1, args.agents + 1)]
    server = await start_hopthu(env, work, nofile=NOFILE)
    receiver: Receiver | None = None
    try:
        tokens = await login_all(server.url, emails)
        # Exercise the WebSocket code path once so its imports and caches are in the baseline.
        warm = Receiver(work, server.url, tokens, 10, "warm")
        await warm.line()
        await warm.stop()
        await asyncio.sleep(1.5)
        before = server.rss_kib()
        t0 = time.monotonic()
        receiver = Receiver(work, server.url, tokens, args.idle_sockets, "idle", deadline=args.connect_deadline)
        status = await receiver.line(timeout=args.connect_deadline + 300)
        connected_in = time.monotonic() - t0
        previous = -1
        for _ in range(240):  # until the presence frames stop
            now = await receiver.ask("frames")
            if now["frames"] == previous:
                break
            previous = now["frames"]
            await asyncio.sleep(1.0)
        await asyncio.sleep(2.0)
        after = server.rss_kib()
        final = await receiver.ask("frames")
        peak = _peak_kib(server)
        await receiver.stop()
        receiver = None
    finally:
        if receiver is not None:
            receiver.kill()
        server.stop()
    open_sockets = final["open"]
    per_socket = (after - before) / max(open_sockets, 1)
    print(
        f"{status['ready']:,} idle sockets connected in {connected_in:.1f} s ({status['failed']} failed; "
        f"{open_sockets:,} still open at the end); server VmRSS {before / 1024:.1f} → {after / 1024:.1f} MiB "
        f"(VmHWM {peak / 1024:.1f} MiB) = {per_socket:.1f} KiB per socket; the sockets received "
        f"{final['frames']:,} frames (presence events) while connecting"
    )
    return {
        "per_socket": per_socket,
        "open": open_sockets,
        "ready": status["ready"],
        "frames": final["frames"],
        "connect_s": connected_in,
    }


def _peak_kib(server: Server) -> int:
    from bench.common import proc_status_kib

    return proc_status_kib(server.pid, "VmHWM")


async def run(args: argparse.Namespace) -> Summary:
    summary = Summary("bench/realtime.py — webhook → WebSocket latency and idle-socket memory")
    raise_nofile(NOFILE)
    work = Workdir(keep=args.keep)
    graph = FakeGraphProcess(work.path)
    try:
        await graph.wait()
        db_path = work.path / "realtime.db"
        env = hopthu_env(db_path, work.path, graph.url)
        add_facebook_inbox(env, work.path)
        print(f"workdir {work.path}; {args.agents} agents, {args.rate:g} msg/s for {args.duration:g} s, "
              f"{args.contacts} customers, {args.idle_sockets:,} idle sockets")  # fmt: skip
        if args.only == "memory":
            make_agents(env, work.path, db_path, args.agents)
            lat = None
        else:
            lat = await latency_phase(args, work.path, env, db_path)
        mem = (
            await memory_phase(args, work.path, env, db_path) if args.idle_sockets and args.only != "latency" else None
        )
    finally:
        graph.stop()
        work.cleanup()

    if lat is not None:
        values = lat["latencies"]
        summary.add(f"webhook → frame p50 ({args.agents} agents, {args.rate:g}/s)", percentile(values, 50), "ms",
                    TARGET_P50_MS)  # fmt: skip
        summary.add(f"webhook → frame p99 ({args.agents} agents, {args.rate:g}/s)", percentile(values, 99), "ms",
                    TARGET_P99_MS)  # fmt: skip
        summary.add("frames delivered / expected", len(values) / max(lat["expected"], 1), "", 1.0, higher=True)
        summary.add("webhook ack p99 during the run", percentile(lat["acks"], 99), "ms")
        summary.add(
            "server CPU per webhook (until the last frame)", lat["server_cpu_window"] / max(lat["acked"], 1) * 1e6, "µs"
        )
        if lat["receiver_busy"] > 0.85:
            summary.note(
                f"the WebSocket clients used {lat['receiver_busy']:.0%} of a core: the latency includes their own lag"
            )
    if mem is not None:
        summary.add(f"memory per idle WebSocket ({mem['open']:,} open)", mem["per_socket"], "KiB",
                    TARGET_KIB_PER_SOCKET)  # fmt: skip
        summary.add("idle sockets open / asked", mem["open"] / args.idle_sockets, "", 1.0, higher=True)
        summary.add(f"time to connect {mem['ready']:,} idle sockets", mem["connect_s"], "s")
        summary.note(f"the idle sockets received {fmt(mem['frames'])} presence frames while connecting")
    summary.note("latency is counted from each webhook's scheduled send time to each agent's frame")
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    receiver = sub.add_parser("receiver", help="(internal) the WebSocket clients")
    receiver.add_argument("--url", required=True)
    receiver.add_argument("--tokens", required=True)
    receiver.add_argument("--count", type=int, required=True)
    receiver.add_argument("--mode", choices=["record", "idle", "warm"], required=True)
    receiver.add_argument("--out", required=True)
    receiver.add_argument("--deadline", type=float, default=3600.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="webhooks per second (default 1000)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load (default 10)")
    parser.add_argument("--agents", type=int, default=50, help="connected agents (default 50)")
    parser.add_argument("--contacts", type=int, default=500, help="distinct customers (default 500)")
    parser.add_argument("--idle-sockets", type=int, default=5_000, help="idle sockets for the memory figure")
    parser.add_argument("--quick", action="store_true", help="3 s of load, 500 idle sockets")
    parser.add_argument(
        "--connect-deadline",
        type=float,
        default=120.0,
        help="stop opening idle sockets after this many seconds and measure those open (default 120)",
    )
    parser.add_argument("--only", choices=["latency", "memory"], help="run one of the two phases")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    if args.command == "receiver":
        asyncio.run(receiver_main(args))
        return 0
    if args.quick:
        args.duration, args.idle_sockets = min(args.duration, 3.0), min(args.idle_sockets, 500)
    summary = asyncio.run(run(args))
    summary.print()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
