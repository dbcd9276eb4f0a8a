"""NLP throughput, latency and memory of the classic backend, on one core.

    .venv/bin/python bench/nlp.py [--quick] [--n N]

Messages: unique chat lines from the corpus generator with another seed (so not the training lines), caches
cleared before each phase. Pinned to one CPU core (sched_setaffinity) with BLAS threads at 1.
- baseline: underthesea's rule tokenizer alone on the same messages (the floor any analysis pays to read text);
- `analyze_batch` in batches of 256: messages/s (wall and CPU), and the ratio to the baseline;
- `analyze` one message at a time: p50/p99 latency per message;
- memory: bytes held by the loaded models (arrays + vocabulary) and the process RSS growth when loading them.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import sys
import time

from common import Summary, fmt, latency_line, percentile


def rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def messages(n: int) -> list[str]:
    from nlp.corpus import generate

    out: list[str] = []
    seen: set[str] = set()
    seed = 1
    while len(out) < n:
        for row in generate.generate(seed=seed):
            if row["text"] not in seen:
                seen.add(row["text"])
                out.append(row["text"])
        seed += 1
    return out[:n]


def clear_caches() -> None:
    from nlp.features import _features_cached
    from nlp.normalize import normalize, place_tone_marks

    _features_cached.cache_clear()
    normalize.cache_clear()
    place_tone_marks.cache_clear()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3,000 messages instead of 20,000")
    ap.add_argument("--n", type=int)
    args = ap.parse_args(argv)
    n = args.n or (3000 if args.quick else 20000)
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
        pinned = "pinned to one core"
    except (AttributeError, OSError):
        pinned = "not pinned (no sched_setaffinity)"

    rss0 = rss_bytes()
    t0 = time.perf_counter()
    import nlp

    backend = nlp.get_backend()
    load_s = time.perf_counter() - t0
    rss_model = rss_bytes() - rss0
    texts = messages(n)
    avg_len = sum(map(len, texts)) / len(texts)
    print(f"{len(texts):,} unique messages, {avg_len:.0f} characters on average; backend={backend.name}; {pinned}")

    from nlp.features import _tokenize
    from nlp.normalize import normalize

    clear_caches()
    c0, w0 = time.process_time(), time.perf_counter()
    for t in texts:
        _tokenize(normalize(t))
    base_wall = time.perf_counter() - w0
    base_cpu = time.process_time() - c0
    print(f"baseline (normalize + underthesea tokenizer): {len(texts) / base_wall:,.0f} msg/s")

    clear_caches()
    c0, w0 = time.process_time(), time.perf_counter()
    for i in range(0, len(texts), 256):
        nlp.analyze_batch(texts[i : i + 256])
    batch_wall = time.perf_counter() - w0
    batch_cpu = time.process_time() - c0
    rate_wall, rate_cpu = len(texts) / batch_wall, len(texts) / batch_cpu
    print(f"analyze_batch: {rate_wall:,.0f} msg/s wall, {rate_cpu:,.0f} msg/s of CPU time")

    clear_caches()
    singles = texts[: min(len(texts), 5000)]
    lat_ms, cpu_ms = [], []
    for t in singles:
        s, c = time.perf_counter(), time.thread_time()
        nlp.analyze(t)
        cpu_ms.append((time.thread_time() - c) * 1000)
        lat_ms.append((time.perf_counter() - s) * 1000)
    print(latency_line("analyze (one message per call), wall", lat_ms))
    print(latency_line("analyze (one message per call), CPU time", cpu_ms))

    summary = Summary("bench/nlp.py — classic backend, one core")
    summary.add("analyze_batch throughput (wall)", rate_wall, "msg/s", 3000, higher=True)
    summary.add("analyze_batch throughput (CPU time)", rate_cpu, "msg/s", 3000, higher=True)
    summary.add("analyze_batch / baseline tokenizer speed", rate_wall / (len(texts) / base_wall), "×")
    summary.add("analyze p50 per message", percentile(lat_ms, 50), "ms")
    summary.add("analyze p99 per message (wall)", percentile(lat_ms, 99), "ms", 2.0)
    summary.add("analyze p99 per message (CPU time)", percentile(cpu_ms, 99), "ms", 2.0)
    summary.add("loaded models (arrays + vocabulary)", backend.memory_bytes() / 1e6, "MB")
    summary.add("process RSS growth when loading", rss_model / 1e6, "MB")
    summary.add("model load time", load_s * 1000, "ms")
    summary.note(f"baseline CPU {base_cpu:.2f}s, analyze_batch CPU {batch_cpu:.2f}s for {fmt(len(texts))} messages")
    summary.note("wall-clock figures include other processes' load on shared machines; CPU time does not")
    summary.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
