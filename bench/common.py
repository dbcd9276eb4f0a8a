"""Shared helpers for the benchmarks: servers as subprocesses, free ports, percentiles and the summary table.

The benchmarks are run by hand (`make bench`, or `python bench/<name>.py [--quick]` from the repository root);
they print numbers, never assert. Every script ends with a summary block: metric, value, target, PASS/MISS.

`python bench/common.py bare-server --port N` runs the baseline: a bare aiohttp app whose webhook handler reads
the body and answers 200, nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import math
import os
import platform
import random
import resource
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PYTHON = sys.executable
PAGE_ID = "106001234567890"
APP_SECRET = "bench_app_secret"
PAGE_TOKEN = "bench-page-token"
VERIFY_TOKEN = "bench-verify"
SECRET_KEY = "bench-secret-key-not-for-production"
PASSWORD = "mật-khẩu-bench-đủ-dài-123"

# What customers of a Vietnamese shop write, with every kind of diacritic (and đ).
TEXTS = (
    "Shop ơi, áo sơ mi trắng này còn size M không ạ?",
    "Cho mình hỏi phí ship về Đà Nẵng bao nhiêu vậy shop?",
    "Mình đặt hàng hôm qua mà chưa thấy ai gọi xác nhận.",
    "Giày thể thao màu đen còn hàng không? Mình mang size 42.",
    "Bao giờ thì đơn hàng của mình được giao tới Hà Nội ạ?",
    "Sản phẩm bị lỗi đường may, mình muốn đổi trả được không?",
    "Chị ơi cho em xin bảng giá sỉ với, em lấy số lượng nhiều.",
    "Cảm ơn shop nhé, hàng đẹp lắm, lần sau mình lại ủng hộ!",
    "Tôi muốn hủy đơn hàng số 12345 vì đặt nhầm màu.",
    "Khuyến mãi giảm 50% còn áp dụng cho váy đầm dự tiệc không?",
    "Nồi chiên không dầu loại 5 lít giá bao nhiêu tiền vậy ạ?",
    "Thanh toán khi nhận hàng được không hay phải chuyển khoản trước?",
    "Em ở Thành phố Hồ Chí Minh, quận Bình Thạnh, giao trong ngày được không?",
    "Mỹ phẩm này có phù hợp với da nhạy cảm không shop?",
    "Đơn của mình giao thiếu một đôi tất, shop kiểm tra giúp mình với.",
    "Điện thoại còn bảo hành chính hãng 12 tháng đúng không?",
    "Mình cần tư vấn chọn quà sinh nhật cho mẹ, khoảng 500 nghìn.",
    "Ưu đãi thành viên tích điểm đổi quà như thế nào vậy ạ?",
    "Hàng về Cần Thơ mất mấy ngày? Mình cần gấp trước thứ Bảy.",
    "Bánh trung thu hộp quà còn không ạ, mình lấy 10 hộp.",
)
FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Vũ", "Đặng", "Bùi", "Đỗ", "Ngô", "Dương", "Lý")
MIDDLE = ("Văn", "Thị", "Minh", "Ngọc", "Thu", "Đức", "Thanh", "Hữu", "Quốc", "Thùy", "Anh", "Bảo")
GIVEN = ("An", "Bình", "Chi", "Dũng", "Hà", "Hương", "Lan", "Minh", "Nam", "Trang", "Tuấn", "Yến", "Phúc", "Khoa")


def text_for(n: int) -> str:
    return TEXTS[n % len(TEXTS)]


def name_for(n: int) -> str:
    return f"{FAMILY[n % len(FAMILY)]} {MIDDLE[(n // 13) % len(MIDDLE)]} {GIVEN[(n // 157) % len(GIVEN)]}"


# ---------------------------------------------------------------------------------------------- numbers


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def fmt(value: float, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 100):
        return f"{int(value):,}"
    return f"{value:,.{digits}f}"


@dataclass
class Metric:
    name: str
    value: float
    unit: str
    target: float | None = None
    higher_is_better: bool = False

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        if self.value is None or math.isnan(self.value):
            return "MISS"
        ok = self.value >= self.target if self.higher_is_better else self.value <= self.target
        return "PASS" if ok else "MISS"

    def target_text(self) -> str:
        if self.target is None:
            return "-"
        return f"{'≥' if self.higher_is_better else '≤'} {self.target:g} {self.unit}".rstrip()


@dataclass
class Summary:
    title: str
    metrics: list[Metric] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(
        self, name: str, value: float, unit: str = "", target: float | None = None, *, higher: bool = False
    ) -> Metric:
        metric = Metric(name, value, unit, target, higher)
        self.metrics.append(metric)
        return metric

    def note(self, text: str) -> None:
        self.notes.append(text)

    def print(self) -> None:
        width = max([len(m.name) for m in self.metrics] + [24])
        line = "=" * (width + 48)
        print()
        print(line)
        print(f"SUMMARY  {self.title}   ({machine()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
        print(line)
        print(f"{'metric':<{width}}  {'value':>14}  {'target':>18}  verdict")
        print("-" * (width + 48))
        for m in self.metrics:
            value = f"{fmt(m.value, 2)} {m.unit}".rstrip()
            print(f"{m.name:<{width}}  {value:>14}  {m.target_text():>18}  {m.verdict}")
        for text in self.notes:
            print(f"  note: {text}")
        print(line)
        sys.stdout.flush()


def machine() -> str:
    return f"{os.cpu_count()} cores, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"


def latency_line(label: str, values_ms: Sequence[float]) -> str:
    return (
        f"{label}: n={len(values_ms)} p50={fmt(percentile(values_ms, 50), 2)} ms "
        f"p90={fmt(percentile(values_ms, 90), 2)} ms p99={fmt(percentile(values_ms, 99), 2)} ms "
        f"max={fmt(max(values_ms) if values_ms else math.nan, 2)} ms"
    )


# ---------------------------------------------------------------------------------------------- processes


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection in this process (a load generator, a receiver) while it measures, one after. Its own
    full collections took 14–23 ms at 1,000 webhooks/s, and every request or frame in flight meanwhile was counted
    as the server's latency: one of them made the largest cluster of an ack p99 (`bench/README.md`, "The load
    generator's own pauses"). Reference counting still frees what is not in a cycle."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raise_nofile(wanted: int) -> int:
    """Raise this process's open-file limit towards `wanted` (capped by the hard limit); return the new soft one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Workdir:
    """A temporary folder holding the SQLite database and the server logs; removed unless --keep."""

    def __init__(self, keep: bool = False, prefix: str = "hopthu-bench-") -> None:
        self.path = Path(tempfile.mkdtemp(prefix=prefix))
        self.keep = keep

    def cleanup(self) -> None:
        if self.keep:
            print(f"(kept {self.path})")
            return
        import shutil

        shutil.rmtree(self.path, ignore_errors=True)


def hopthu_env(db_path: Path, workdir: Path, graph_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOPTHU_")}
    env.update(
        HOPTHU_DATABASE_URL=f"sqlite://{db_path}",
        HOPTHU_SECRET_KEY=SECRET_KEY,
        HOPTHU_FACEBOOK_GRAPH_URL=graph_url,
        HOPTHU_CONFIG=str(workdir / "absent.toml"),
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    return env


def cli(env: dict[str, str], cwd: Path, *args: str) -> dict:
    """`hopthu <args>` with `env`; returns the JSON it prints."""
    done = subprocess.run(
        [PYTHON, "-m", "inbox.cli", *args], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"hopthu {' '.join(args)} failed: {done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def add_facebook_inbox(env: dict[str, str], cwd: Path, name: str = "Shop Hoa Mai", page_id: str = PAGE_ID) -> dict:
    return cli(
        env, cwd, "inbox", "add", "--channel", "facebook", "--name", name, "--page-id", page_id,
        "--page-token", PAGE_TOKEN, "--app-secret", APP_SECRET, "--verify-token", VERIFY_TOKEN,
    )  # fmt: skip


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_kib(self) -> int:
        return proc_status_kib(self.pid, "VmRSS")

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.pid)

    def cpu_split(self) -> tuple[float, float]:
        """(user, system) CPU seconds so far."""
        return proc_cpu_split(self.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def proc_status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def proc_cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process, all its threads (from /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (from /proc/<pid>/stat)."""
    return sum(proc_cpu_split(pid))


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (the NLP worker, a multiprocessing helper), from /proc."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(child) for child in (task / "children").read_text().split()]
            except OSError:  # the thread or the process ended meanwhile
                continue
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its living descendants."""
    total = 0.0
    for member in process_tree(pid):
        try:
            total += proc_cpu_seconds(member)
        except OSError:
            continue
    return total


SETTLE_WINDOW = 6.0  # seconds: spans a supervision tick (5 s)


async def settle(
    server: Server, *, below: float = 0.05, window: float = SETTLE_WINDOW, timeout: float = 90.0
) -> tuple[float, float]:
    """Wait until the server and its child processes use less than `below` of a core over `window` seconds: what
    the previous phase left behind (NLP, profile and post lookups, the reports' projection) must not be counted
    against the next one. The window spans a supervision tick (5 s), which catches the projection up a step at a
    time. Returns (seconds waited, share of a core busy in the first window)."""
    started = time.monotonic()
    first = -1.0
    while True:
        before = tree_cpu_seconds(server.pid)
        await asyncio.sleep(window)
        busy = (tree_cpu_seconds(server.pid) - before) / window
        first = busy if first < 0 else first
        if busy < below or time.monotonic() - started > timeout:
            return time.monotonic() - started, first


def _serve_code(argv: list[str], nofile: int | None) -> str:
    limit = ""
    if nofile:
        limit = (
            "import resource; s, h = resource.getrlimit(resource.RLIMIT_NOFILE); "
            f"resource.setrlimit(resource.RLIMIT_NOFILE, ({nofile} if h == resource.RLIM_INFINITY "
            f"else min({nofile}, h), h)); "
        )
    return f"import sys; {limit}from inbox.cli import main; sys.exit(main({argv!r}))"


async def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    import aiohttp

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with code {proc.returncode} before becoming ready")
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"server at {url} did not become ready in {timeout:.0f} s")


async def start_hopthu(env: dict[str, str], cwd: Path, *, nofile: int | None = None) -> Server:
    """`hopthu serve` on a free port, in its own process (with a raised open-file limit when asked)."""
    port = free_port()
    log_path = cwd / f"hopthu-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [PYTHON, "-c", _serve_code(["serve", "--host", "127.0.0.1", "--port", str(port)], nofile)],
            env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = Server(proc, port, log_path)
    try:
        await wait_ready(server.url + "/healthz", proc)
    except RuntimeError:
        tail = log_path.read_text(errors="replace")[-2000:]
        server.stop()
        raise RuntimeError(f"hopthu serve did not start:\n{tail}") from None
    return server


async def start_bare(cwd: Path) -> Server:
    port = free_port()
    proc = subprocess.Popen(
        [PYTHON, str(Path(__file__).resolve()), "bare-server", "--port", str(port)],
        cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = Server(proc, port)
    await wait_ready(server.url + "/healthz", proc)
    return server


def run_bare_server(port: int) -> None:
    """The baseline: same framework, same event loop as `hopthu serve`, same route, no work (reads the body,
    answers 200)."""
    from aiohttp import web

    from inbox.event_loop import loop_factory

    async def webhook(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"text": "EVENT_RECEIVED"})

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/webhooks/facebook", webhook)
    app.router.add_get("/healthz", healthz)
    loop = loop_factory("auto")()
    web.run_app(app, host="127.0.0.1", port=port, print=lambda *_: None, access_log=None, loop=loop)


class FakeGraphProcess:
    """channels.fakes.FakeGraphAPI in its own process, so profile fetches cost the load generator nothing."""

    def __init__(self, cwd: Path) -> None:
        self.port = free_port()
        code = (
            "import asyncio\n"
            "from channels.fakes import FakeGraphAPI\n"
            "async def main():\n"
            "    fake = FakeGraphAPI()\n"
            f"    await fake.start(port={self.port})\n"
            "    while True:\n"
            "        await asyncio.sleep(3600)\n"
            "        fake.requests.clear()\n"
            "asyncio.run(main())\n"
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.proc = subprocess.Popen(
            [PYTHON, "-c", code], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.url = f"http://127.0.0.1:{self.port}"

    async def wait(self) -> None:
        import aiohttp

        for _ in range(200):
            try:
                async with aiohttp.ClientSession() as session, session.get(self.url + "/v25.0/x") as response:
                    if response.status in (200, 400):
                        return
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
        raise RuntimeError("fake Graph API did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


# ---------------------------------------------------------------------------------------------- webhooks


class WebhookFactory:
    """Signed Messenger text webhooks with unique mids, spread over `contacts` customers."""

    def __init__(self, contacts: int = 500, run_id: str | None = None, page_id: str = PAGE_ID) -> None:
        from channels.fakes import messenger_text, signed

        self._text, self._signed = messenger_text, signed
        self.contacts = contacts
        self.page_id = page_id
        self.run_id = run_id or f"{int(time.time() * 1000):x}{random.randrange(1 << 16):04x}"
        self._counter = itertools.count()

    def next(self) -> tuple[str, bytes, dict[str, str]]:
        n = next(self._counter)
        mid = f"m_{self.run_id}_{n}"
        psid = f"{7_000_000_000_000_000 + n % self.contacts}"
        body = self._text(self.page_id, psid, mid, text_for(n), int(time.time() * 1000))
        raw, headers = self._signed(body, APP_SECRET)
        return mid, raw, headers


# ---------------------------------------------------------------------------------------------- database


def sqlite_connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


async def drain(db_path: Path, run_mid_prefix: str, *, timeout: float = 60.0) -> tuple[int, int]:
    """Wait until the server processed every stored webhook; return (stored messages of this run, pending)."""
    deadline = time.monotonic() + timeout
    pending = -1
    while True:
        with sqlite_connect(db_path) as conn:
            pending = conn.execute("SELECT COUNT(*) FROM inbound_events WHERE processed = 0").fetchone()[0]
            stored = conn.execute(
                "SELECT COUNT(*) FROM messages WHERE external_id LIKE ?", (run_mid_prefix + "%",)
            ).fetchone()[0]
        if pending == 0 or time.monotonic() > deadline:
            return stored, pending
        await asyncio.sleep(0.25)


async def wait_profiles(db_path: Path, *, timeout: float = 60.0) -> int:
    """Wait until the server fetched the profile of every customer (new customers cost a Graph call each);
    return how many are still missing."""
    deadline = time.monotonic() + timeout
    while True:
        with sqlite_connect(db_path) as conn:
            missing = conn.execute(
                "SELECT COUNT(*) FROM contact_identities WHERE profile_fetched_at IS NULL"
            ).fetchone()[0]
        if missing == 0 or time.monotonic() > deadline:
            return missing
        await asyncio.sleep(0.25)


async def warm_contacts(url: str, db_path: Path, contacts: int) -> None:
    """One webhook per customer, outside any timed window: conversations exist, profiles are fetched."""
    import aiohttp

    factory = WebhookFactory(contacts, run_id="warm")
    async with aiohttp.ClientSession() as session:
        for start in range(0, contacts, 50):
            bodies = [factory.next() for _ in range(start, min(start + 50, contacts))]
            results = await asyncio.gather(
                *(session.post(url + "/webhooks/facebook", data=body, headers=headers) for _, body, headers in bodies)
            )
            for response in results:
                response.release()
    await drain(db_path, "m_warm_")
    missing = await wait_profiles(db_path)
    if missing:
        print(f"    (warm-up: {missing} customer profiles still not fetched)")


def timestamp(dt: datetime) -> str:
    """A datetime exactly as tortoise writes it to SQLite (`isoformat(" ")`, UTC)."""
    return dt.astimezone(UTC).isoformat(" ")


def run_in_loop(main: Callable[[], object]) -> None:
    try:
        asyncio.run(main())  # type: ignore[arg-type]
    except KeyboardInterrupt:
        print("interrupted")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    bare = sub.add_parser("bare-server", help="the baseline webhook server")
    bare.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    if args.command == "bare-server":
        run_bare_server(args.port)
        return 0
    print("bench/common.py holds shared helpers; run bench/ingest.py, bench/inbox_list.py or bench/realtime.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
