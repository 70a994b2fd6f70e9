#!/usr/bin/env python3
"""What reading and cleaning the waiting jobs costs when they wait in many groups.

    .venv/bin/python benchmarks/group_listing.py [--groups 100000] [--plain 1000]

Starts its own redis-server (no persistence) on a free loopback port, adds ``--groups`` groups
of one waiting job each and ``--plain`` jobs without a group, then reports Redis's own time
(``INFO commandstats``) for a page of 20 of the waiting listing (``list_waiting.lua``) at its
start, middle and end; the wall time, API calls and slowest Redis command (SLOWLOG, 1 ms
threshold) of a text search through every waiting job (``Admin.search_jobs``, cursor to the
end); and the wall time and Redis time per call of ``clean("waiting")`` of them all, with the
same clean of as many jobs without a group beside it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent / "src")]

import asyncio  # noqa: E402

import redis  # noqa: E402
from harness.redis_server import RedisServer  # noqa: E402

from conveyor import SyncQueue  # noqa: E402
from conveyor.admin import Admin  # noqa: E402

PREFIX = "bench-groups"
CHUNK = 5000


def evalsha(client: redis.Redis) -> dict[str, float]:
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    return {"calls": int(stats.get("calls", 0)), "usec": float(stats.get("usec", 0))}


def fill(queue: SyncQueue, groups: int, plain: int) -> None:
    for start in range(0, groups, CHUNK):
        stop = min(start + CHUNK, groups)
        queue.add_bulk([{"name": "t", "group": f"g{i}"} for i in range(start, stop)])
    for start in range(0, plain, CHUNK):
        queue.add_bulk([{"name": "t"} for _ in range(min(CHUNK, plain - start))])


async def search_all(url: str, queue: str) -> tuple[int, float]:
    async with Admin(url, prefix=PREFIX) as admin:
        cursor, calls = None, 0
        started = time.perf_counter()
        while True:
            page = await admin.search_jobs(queue, "waiting", text="no such text", cursor=cursor)
            calls += 1
            cursor = page.next_cursor
            if cursor is None:
                return calls, time.perf_counter() - started


def clean(client: redis.Redis, queue: SyncQueue) -> str:
    client.config_resetstat()
    started = time.perf_counter()
    deleted = queue.clean("waiting")
    took = time.perf_counter() - started
    stats = evalsha(client)
    per_call = stats["usec"] / max(stats["calls"], 1) / 1000
    return f"{deleted} jobs in {took:.2f} s, {stats['calls']} calls, {per_call:.1f} ms each"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--groups", type=int, default=100_000)
    ap.add_argument("--plain", type=int, default=1000)
    args = ap.parse_args()
    server = RedisServer()
    try:
        client = redis.Redis.from_url(server.url)
        client.config_set("slowlog-log-slower-than", 1000)
        queue = SyncQueue("grouped", url=server.url, prefix=PREFIX)
        fill(queue, args.groups, args.plain)
        total = queue.counts()["waiting"]
        print(f"{args.groups} groups of one job and {args.plain} jobs without a group: {total}")
        queue.get_jobs("waiting", 0, 0)  # (the script loaded)
        for start in (0, total // 2, max(total - 20, 0)):
            client.config_resetstat()
            page = queue.get_jobs("waiting", start, start + 19)
            usec = evalsha(client)["usec"]
            print(f"  page of {len(page)} at {start}: {usec:.0f} µs of Redis time")
        client.slowlog_reset()
        calls, took = asyncio.run(search_all(server.url, "grouped"))
        slowest = max((entry["duration"] for entry in client.slowlog_get(128)), default=0)
        print(f"  search through all: {calls} API calls, {took:.2f} s, slowest command "
              f"{slowest / 1000:.1f} ms (0: none over 1 ms)")  # fmt: skip
        print(f"  clean('waiting'): {clean(client, queue)}")
        plain = SyncQueue("plain", url=server.url, prefix=PREFIX)
        fill(plain, 0, total)
        print(f"  the same clean of {total} jobs without a group: {clean(client, plain)}")
        plain.close()
        queue.close()
        client.close()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
