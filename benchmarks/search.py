#!/usr/bin/env python3
"""How the dashboard's search scales: every retained job of a state, searched by text.

    .venv/bin/python benchmarks/search.py [--jobs 1000000] [--json out.json]

Starts its own redis-server (no persistence) on a free loopback port, adds ``--jobs`` waiting
jobs (``{"to": "user-<i>@example.com", "n": i}``) and then, through ``Admin.search_jobs`` as the
JSON API calls it:

1. a rare needle (one match) followed by cursor to the end: every job is read once, a bounded
   slice per call; the calls' time (p50, max) and the whole search's; then the Python heap's
   peak over three calls, traced apart (tracemalloc slows the code it traces);
2. a common needle (one job in ten): the time to the first page of 20 matches;
3. Redis's view: the slowest single command during the searches (SLOWLOG with a 1 ms
   threshold, so a search that blocked Redis for long shows there), and the server's RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent / "src")]

from harness.redis_server import RedisServer  # noqa: E402

from conveyor import Queue  # noqa: E402
from conveyor.admin import Admin  # noqa: E402

QUEUE = "search"
PREFIX = "bench-search"
ADD_CHUNK = 1000


async def fill(url: str, jobs: int) -> float:
    started = time.perf_counter()
    async with Queue(QUEUE, url=url, prefix=PREFIX) as queue:
        for start in range(0, jobs, ADD_CHUNK):
            await queue.add_bulk(
                [
                    {"name": "send", "data": {"to": f"user-{i}@example.com", "n": i}}
                    for i in range(start, min(start + ADD_CHUNK, jobs))
                ]
            )
    return time.perf_counter() - started


async def full_search(admin: Admin, needle: str) -> dict[str, Any]:
    calls: list[float] = []
    found: list[str] = []
    scanned = 0
    cursor = None
    started = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        page = await admin.search_jobs(QUEUE, "waiting", text=needle, cursor=cursor, size=20)
        calls.append(time.perf_counter() - t0)
        found += [j["id"] for j in page.jobs]
        scanned += page.scanned
        cursor = page.next_cursor
        if cursor is None:
            break
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    for _ in range(3):
        page = await admin.search_jobs(QUEUE, "waiting", text=needle, cursor=cursor, size=20)
        cursor = page.next_cursor
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "needle": needle,
        "matches": len(found),
        "scanned": scanned,
        "calls": len(calls),
        "call_p50_ms": round(statistics.median(calls) * 1000, 1),
        "call_max_ms": round(max(calls) * 1000, 1),
        "total_s": round(elapsed, 2),
        "jobs_per_s": round(scanned / elapsed),
        "python_heap_peak_mib": round(peak / 2**20, 1),
    }


async def first_page(admin: Admin, needle: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    page = await admin.search_jobs(QUEUE, "waiting", text=needle, size=20)
    return {
        "needle": needle,
        "matches": len(page.jobs),
        "scanned": page.scanned,
        "ms": round((time.perf_counter() - t0) * 1000, 1),
    }


def _slowest(server: RedisServer) -> dict[str, Any] | None:
    """The slowest command SLOWLOG kept (its microseconds and name), read with redis-py."""
    import redis

    client = redis.Redis(port=server.port, decode_responses=True)
    try:
        entries = client.slowlog_get(10_000)
    finally:
        client.close()
    if not entries:
        return None
    worst = max(entries, key=lambda e: e["duration"])
    return {"us": worst["duration"], "command": str(worst["command"])[:60]}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    server = RedisServer()
    try:
        fill_s = await fill(server.url, args.jobs)
        server.command("CONFIG", "SET", "slowlog-log-slower-than", "1000")
        server.command("CONFIG", "SET", "slowlog-max-len", "10000")
        server.command("SLOWLOG", "RESET")
        async with Admin(server.url, prefix=PREFIX) as admin:
            rare = await full_search(admin, f"user-{args.jobs - 7}@")
            common = await first_page(admin, "7@example")
        slow = server.command("SLOWLOG", "LEN")
        slowest = _slowest(server)
        info = server.command("INFO", "memory")
        rss = next(
            int(line.split(":", 1)[1])
            for line in info.splitlines()
            if line.startswith("used_memory_rss:")
        )
        return {
            "jobs": args.jobs,
            "fill_s": round(fill_s, 1),
            "rare_needle_whole_search": rare,
            "common_needle_first_page": common,
            "redis_commands_over_1ms": int(slow),
            "redis_slowest_command": slowest,
            "redis_rss_mib": round(rss / 2**20),
        }
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000, help="waiting jobs to search")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parsed = parser.parse_args()
    result = asyncio.run(main(parsed))
    print(json.dumps(result, indent=2))
    if parsed.json:
        parsed.json.write_text(json.dumps(result, indent=2))
