"""Website live chat: the widget's size, and visitor send → agent WebSocket frame latency.

1. Size: `GET /widget/<token>.js` as a site's visitors download it; raw bytes and gzip -9 bytes (target ≤ 30 KB).
2. Latency: `hopthu serve` (SQLite) in its own process, one agent on /ws. Rounds alternate two paths into the
   same agent socket: a visitor's `message` frame on the widget socket (webchat), and the baseline measured in the
   same run, a signed Messenger webhook POST (facebook). Each is timed from just before the send to the agent's
   `message.created` frame for it; the ratio webchat/facebook says what the widget path adds. Visitors are a pool
   of sockets used in turn, so no visitor hits the per-visitor rate limit.

    python bench/webchat.py [--rounds 200] [--visitors 50] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import orjson

from bench.common import (
    PASSWORD,
    FakeGraphProcess,
    Summary,
    WebhookFactory,
    Workdir,
    add_facebook_inbox,
    cli,
    hopthu_env,
    latency_line,
    percentile,
    run_in_loop,
    start_hopthu,
)

ORIGIN = "http://bench-shop.example"
SIZE_TARGET_KB = 30.0


async def agent_frames(ws: aiohttp.ClientWebSocketResponse, waiting: dict[str, asyncio.Future[float]]) -> None:
    """Resolve each waiting send when the agent's `message.created` for it arrives (keyed by external id)."""
    async for message in ws:
        if message.type != aiohttp.WSMsgType.TEXT:
            continue
        frame = orjson.loads(message.data)
        if frame["type"] != "message.created":
            continue
        key = frame["data"].get("external_id") or ""
        if key.startswith("wc:"):
            key = key.split(":", 2)[1]  # the visitor's echo id
            waiting.setdefault("conversation:" + key, asyncio.get_running_loop().create_future())
            waiting["conversation:" + key].set_result(frame["data"]["conversation_id"])
        future = waiting.pop(key, None)
        if future is not None and not future.done():
            future.set_result(time.monotonic())


async def visitor(session: aiohttp.ClientSession, url: str, token: str) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(f"{url.replace('http', 'ws', 1)}/widget/{token}/ws", headers={"Origin": ORIGIN})
    await ws.send_str(orjson.dumps({"type": "hello", "data": {}}).decode())
    while True:
        frame = orjson.loads((await ws.receive(timeout=30)).data)
        if frame["type"] == "ready":
            return ws


async def drain(ws: aiohttp.ClientWebSocketResponse, waiting: dict[str, asyncio.Future[float]]) -> None:
    """Read a visitor's frames (so its socket never backs up); resolve waiting agent replies by their text."""
    async for message in ws:
        frame = orjson.loads(message.data)
        if frame["type"] == "message.created" and frame["data"].get("direction") == "out":
            future = waiting.pop(frame["data"].get("text") or "", None)
            if future is not None and not future.done():
                future.set_result(time.monotonic())


async def run(args: argparse.Namespace) -> None:
    work = Workdir(keep=args.keep)
    graph = FakeGraphProcess(work.path)
    server = None
    summary = Summary("webchat: widget size and visitor → agent latency")
    try:
        await graph.wait()
        env = hopthu_env(work.path / "bench.db", work.path, graph.url)
        add_facebook_inbox(env, work.path)
        site = cli(env, work.path, "inbox", "add", "--channel", "webchat", "--name", "Website Hoa Mai",
                   "--allowed-origin", ORIGIN)  # fmt: skip
        cli(env, work.path, "user", "add", "--email", "bench@shop.vn", "--password", PASSWORD, "--role", "supervisor")
        server = await start_hopthu(env, work.path)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{server.url}/widget/{site['widget_token']}.js") as response:
                script = await response.read()
            gz = len(gzip.compress(script, 9))
            print(f"widget: {len(script):,} bytes raw, {gz:,} bytes gzip -9")
            summary.add("widget size (gzip -9)", gz / 1024, "KB", SIZE_TARGET_KB)
            summary.add("widget size (raw)", len(script) / 1024, "KB")

            login = await session.post(
                f"{server.url}/api/auth/login", json={"email": "bench@shop.vn", "password": PASSWORD}
            )
            token = (await login.json())["token"]
            agent = await session.ws_connect(f"{server.url.replace('http', 'ws', 1)}/ws?token={token}")
            waiting: dict[str, asyncio.Future[float]] = {}
            reader = asyncio.create_task(agent_frames(agent, waiting))
            visitors = [await visitor(session, server.url, site["widget_token"]) for _ in range(args.visitors)]
            replies: dict[str, asyncio.Future[float]] = {}
            drains = [asyncio.create_task(drain(v, replies)) for v in visitors]
            webhooks = WebhookFactory(contacts=args.visitors)
            timings: dict[str, list[float]] = {"webchat": [], "facebook": []}
            loop = asyncio.get_running_loop()
            for n in range(args.rounds + args.warmup):
                for path in ("webchat", "facebook"):
                    if path == "webchat":
                        key = uuid.uuid4().hex
                        pending = waiting[key] = loop.create_future()
                        frame = {"type": "message", "data": {"echo_id": key, "text": f"Shop ơi còn hàng không ạ? {n}"}}
                        started = time.monotonic()
                        await visitors[n % len(visitors)].send_str(orjson.dumps(frame).decode())
                    else:
                        key, raw, headers = webhooks.next()
                        pending = waiting[key] = loop.create_future()
                        started = time.monotonic()
                        async with session.post(f"{server.url}/webhooks/facebook", data=raw, headers=headers) as r:
                            assert r.status == 200, await r.text()
                    arrived = await asyncio.wait_for(pending, timeout=30)
                    if n >= args.warmup:
                        timings[path].append((arrived - started) * 1000)
                    if path == "webchat" and n == 0:  # visitor 0's conversation, for the agent's replies below
                        conv_id = await asyncio.wait_for(waiting.pop("conversation:" + key), timeout=30)
            auth = {"Authorization": f"Bearer {token}"}
            timings["agent reply → widget"] = []
            for n in range(args.rounds // 2 + args.warmup):
                text = f"Dạ shop trả lời lần {n} ạ"
                future = replies[text] = loop.create_future()
                started = time.monotonic()
                async with session.post(
                    f"{server.url}/api/conversations/{conv_id}/messages", json={"text": text}, headers=auth
                ) as r:
                    assert r.status == 201, await r.text()
                arrived = await asyncio.wait_for(future, timeout=30)
                if n >= args.warmup:
                    timings["agent reply → widget"].append((arrived - started) * 1000)
            for task in (reader, *drains):
                task.cancel()
            for ws in (agent, *visitors):
                await ws.close()
        for path, values in timings.items():
            print(latency_line(path if "→" in path else f"{path} → agent frame", values))
        web_p50, fb_p50 = percentile(timings["webchat"], 50), percentile(timings["facebook"], 50)
        summary.add("webchat → agent p50", web_p50, "ms")
        summary.add("webchat → agent p99", percentile(timings["webchat"], 99), "ms", 1000.0)
        summary.add("facebook webhook → agent p50 (baseline)", fb_p50, "ms")
        summary.add("ratio p50 webchat / facebook", web_p50 / fb_p50 if fb_p50 else float("nan"), "x")
        summary.add("agent reply → widget frame p99", percentile(timings["agent reply → widget"], 99), "ms", 1000.0)
        summary.note(f"{args.rounds} rounds per path after {args.warmup} warm-up, {args.visitors} visitor sockets")
        summary.note("target: the agent sees a visitor's message within 1 s (p99)")
        summary.print()
    finally:
        if server is not None:
            server.stop()
        graph.stop()
        work.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--visitors", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--quick", action="store_true", help="30 rounds, 10 visitors")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.visitors, args.warmup = 30, 10, 3
    run_in_loop(lambda: run(args))


if __name__ == "__main__":
    main()
