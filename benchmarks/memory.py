#!/usr/bin/env python3
"""Redis memory per waiting job and per retained finished job: Conveyor beside BullMQ (Node)
and the other peers that run in their own runtimes.

    python benchmarks/memory.py                         # conveyor,bullmq_node; 100,000 jobs
    python benchmarks/memory.py --only conveyor,bullmq_node,bull,beequeue,kue,sidekiq --jobs 20000

For each library, on one private redis-server (FLUSHALL between libraries; the script cache
kept, and each library's scripts loaded by a warm-up before its baseline): INFO memory
``used_memory`` before and after adding N no-op jobs (``{"i": n, "t": time}``, its bulk API where
it has one), no worker connected: ``(after - before) / N`` per waiting job. Then the same N
drained by 2 of its worker processes at its default retention (Conveyor with
``CONVEYOR_KEEP_COMPLETED`` = 2N, as its default keeps the newest 1,000): workers stopped, the
benchmark's probe keys deleted, ``(after - before) / N`` per finished job it keeps. Both include
each library's share of its fixed structures (event streams, counters, worker records).
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from harness import runtimes  # noqa: E402
from harness.foreign import Foreign  # noqa: E402
from harness.redis_server import RedisServer  # noqa: E402
from harness.scenario import ScenarioError, Workers  # noqa: E402
from scaling import Env, clear_probe, fill, flush_keys, used_memory, wait_counts  # noqa: E402

LIBS = ["conveyor", "bullmq_node", "bull", "beequeue", "kue", "sidekiq"]
WARMUP = 100


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", default="conveyor,bullmq_node", help="of: " + ",".join(LIBS))
    ap.add_argument("--jobs", type=int, default=100_000, help="N jobs (default 100000)")
    ap.add_argument("--timeout", type=float, default=300.0, help="per drain (s)")
    ap.add_argument("--out", type=Path, default=BENCH_DIR / "results", help="memory.md/.json")
    args = ap.parse_args()
    args.only = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = [x for x in args.only if x not in LIBS]
    if unknown:
        ap.error(f"unknown libraries {unknown}; choose from {','.join(LIBS)}")
    return args


class Subject:
    """One library: how to fill its queue and start its workers."""

    def __init__(self, lib: str) -> None:
        self.lib = lib
        self.foreign = (
            Foreign(_script_name(lib), runtimes.RUNTIMES[lib]) if lib != "conveyor" else None
        )

    def fill(self, url: str, n: int, timeout: float) -> None:
        if self.foreign is None:
            asyncio.run(fill(url, n))
            return
        result = self.foreign.run("fill", url, "noop", n, timeout=timeout)
        if result.get("status") != "ok":
            raise ScenarioError("error", f"fill: {result.get('detail', result)}")

    def workers(self, url: str, n: int) -> Workers:
        if self.foreign is None:
            with Env(CONVEYOR_KEEP_COMPLETED=str(2 * n)):
                return Workers("conveyor", "noop", url, 2)
        return Workers(self.lib, "noop", url, 2, self.foreign.worker_command("noop", url))

    def settle(self, url: str, n: int, timeout: float) -> None:
        """Until the library has recorded every completion (the probe counts before that)."""
        if self.foreign is None:
            asyncio.run(wait_counts(url, n, timeout))  # acknowledgements are batched
        else:
            time.sleep(1.0)


def _script_name(lib: str) -> str:
    return "bullmq" if lib == "bullmq_node" else lib


def measure(server: RedisServer, subject: Subject, n: int, timeout: float) -> dict[str, Any]:
    flush_keys(server)
    subject.fill(server.url, WARMUP, timeout)  # its scripts into the cache, before the baseline
    flush_keys(server)
    before = used_memory(server)
    subject.fill(server.url, n, timeout)
    waiting = used_memory(server)
    workers = subject.workers(server.url, n)
    try:
        workers.wait_done(n, timeout)
        subject.settle(server.url, n, timeout)
    finally:
        workers.stop()
    clear_probe(server)
    time.sleep(0.5)  # let Redis release the workers' client buffers
    finished = used_memory(server)
    flush_keys(server)
    return {
        "status": "ok",
        "jobs": n,
        "bytes_per_waiting_job": (waiting - before) / n,
        "bytes_per_finished_job": (finished - before) / n,
        "used_memory": {"before": before, "waiting": waiting, "finished": finished},
    }


def markdown(results: dict[str, dict[str, Any]], n: int, redis_version: str) -> str:
    lines = [
        f"Redis {redis_version}, INFO memory used_memory, {n:,} no-op jobs per library:",
        "",
        "| Library | bytes per waiting job | bytes per finished job kept | ÷ BullMQ (Node): "
        "waiting / finished |",
        "|---|---|---|---|",
    ]
    ref = results.get("bullmq_node", {})
    for lib, res in results.items():
        if res.get("status") != "ok":
            lines.append(f"| {lib} | {res.get('status')}: {res.get('detail', '')} | | |")
            continue
        wait, kept = res["bytes_per_waiting_job"], res["bytes_per_finished_job"]
        ratio = ""
        if ref.get("status") == "ok":
            ratio = (
                f"{wait / ref['bytes_per_waiting_job']:.2f}x / "
                f"{kept / ref['bytes_per_finished_job']:.2f}x"
            )
        lines.append(f"| {lib} | {wait:,.0f} | {kept:,.0f} | {ratio} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    args = parse_args()
    skips = runtimes.prepare(args.only)
    server = RedisServer()
    results: dict[str, dict[str, Any]] = {}
    try:
        version = server.version()
        for lib in args.only:
            if lib in skips:
                results[lib] = {"status": "skipped", "detail": skips[lib]}
                continue
            print(f"[{lib}] {args.jobs:,} jobs ...", file=sys.stderr, flush=True)
            try:
                results[lib] = measure(server, Subject(lib), args.jobs, args.timeout)
            except ScenarioError as exc:
                results[lib] = {"status": exc.status, "detail": exc.detail}
            print(f"[{lib}] {results[lib]}", file=sys.stderr, flush=True)
    finally:
        server.stop()
    md = markdown(results, args.jobs, version)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "memory.md").write_text(md)
    (args.out / "memory.json").write_text(json.dumps(results, indent=2) + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
