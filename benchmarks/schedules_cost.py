#!/usr/bin/env python3
"""What 1,000 defined schedules cost the no-op drain: an A/B on the same code, in one run.

    .venv/bin/python benchmarks/schedules_cost.py                  # 10 pairs, N=10000 (~2 min)
    .venv/bin/python benchmarks/schedules_cost.py --pairs 20 --schedules 10000

A is run.py's ``drain_noop`` (``peers/conveyor.py``: 2 worker processes, concurrency 200) on a
flushed private redis-server; B is the same with ``--schedules`` schedules defined before the
fill (``CONVEYOR_BENCH_SCHEDULES``: daily at 03:00 UTC, so none fires during a run), the
workers' schedule duty reading them as it always does. The runs alternate A B, B A, ... so a
drift of this shared machine's speed falls on both: each pair's B/A ratio, and their median,
is the verdict (above 0.95 = within 5 %). Two figures per run: the drain as run.py reports it
(worker start-up included) and the steady rate after the first job.

Then the Redis side of it, on the same server with B's schedules defined: Redis's own time per
``due_schedules`` call (``INFO commandstats``, calls in blocks alternating with none and with
the schedules defined), and how many calls a second the workers make, counted with ``MONITOR``
while the workers of one more, longer B drain run (not timed: MONITOR slows Redis), by SHA.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
SRC = BENCH_DIR.parent / "src"
sys.path.insert(0, str(BENCH_DIR))

import redis  # noqa: E402
from harness import scenario as scenario_run  # noqa: E402
from harness.redis_server import RedisServer  # noqa: E402
from peers import conveyor as conveyor_peer  # noqa: E402
from run import run_scenario  # noqa: E402
from scaling import cpu_seconds  # noqa: E402

from conveyor import SyncQueue  # noqa: E402
from conveyor.storage.scripts import script  # noqa: E402

ENV = "CONVEYOR_BENCH_SCHEDULES"
#: The queue peers/conveyor.py uses.
QUEUE = "bench"
CALLS_PER_BLOCK = 2000
#: What the counting pass sends last, so its MONITOR reader knows it has read everything.
END = "schedules-cost-end"


def scenario(server: RedisServer, schedules: int, args: argparse.Namespace) -> dict[str, Any]:
    """One run of run.py's drain_noop (this tree's src/ first), with ``schedules`` defined."""
    os.environ[ENV] = str(schedules)
    extra = ["--url", server.url, "--n", str(args.jobs), "--workers", "2", "--timeout", "120"]
    return run_scenario(sys.executable, "conveyor", "drain_noop", extra, 400, SRC)


def drain(server: RedisServer, schedules: int, args: argparse.Namespace) -> dict[str, float]:
    """One timed drain on a flushed server, as harness.scenario's drain_noop runs it (the same
    producer, fill and worker processes), in this process so that the CPU time it took can be
    read too: run.py's figure, the rate after the first job, and CPU µs per job of Redis and
    of the 2 worker processes (their start-up included)."""
    server.flush()
    os.environ[ENV] = str(schedules)  # peers/conveyor.py defines them in open_producer

    async def produce() -> None:
        producer = await conveyor_peer.open_producer(server.url)
        try:
            await scenario_run.fill(producer, "noop", args.jobs)
        finally:
            await producer.close()

    asyncio.run(produce())
    redis0, _ = cpu_seconds(server, [])
    workers = scenario_run.Workers("conveyor", "noop", server.url, 2)
    try:
        last = workers.wait_done(args.jobs, 120)
        redis1, workers_cpu = cpu_seconds(server, [proc.pid for proc, _ in workers.procs])
        started, first = workers.started_at(), workers.progress()[2]
        wrong = [o for o in workers.origins() if not o.startswith(str(SRC))]
    finally:
        workers.stop()
    if wrong:
        raise SystemExit(f"a worker imported conveyor from {wrong[0]}, not {SRC}")
    return {
        "drain": args.jobs / (last - started),
        "steady": args.jobs / (last - first),
        "redis_cpu_us": (redis1 - redis0) * 1e6 / args.jobs,
        "workers_cpu_us": (workers_cpu or 0.0) * 1e6 / args.jobs,
    }


def define(url: str, count: int) -> SyncQueue:
    """``count`` schedules as peers/conveyor.py defines them."""
    queue = SyncQueue(QUEUE, url=url)
    for i in range(count):
        queue.schedule(f"bench-{i}", "noop", cron="0 3 * * *")
    return queue


def due_call_usec(server: RedisServer, count: int, blocks: int) -> dict[str, float]:
    """Redis µs per due_schedules call, with none and with ``count`` schedules defined."""
    server.flush()
    client = redis.Redis.from_url(server.url)
    empty = SyncQueue("bench-empty", url=server.url)
    full = define(server.url, count)
    loaded = empty.commands.script("due_schedules")  # the same source for both queues
    sha = client.script_load(loaded.source)
    figures: dict[str, list[float]] = {"none": [], "defined": []}
    for block in range(blocks):
        for label in ("none", "defined") if block % 2 == 0 else ("defined", "none"):
            keys = list((empty if label == "none" else full).commands.keys.script_keys)
            client.config_resetstat()
            for _ in range(CALLS_PER_BLOCK):
                client.evalsha(sha, len(keys), *keys, 100)
            stats = client.info("commandstats")["cmdstat_evalsha"]
            figures[label].append(float(stats["usec"]) / int(stats["calls"]))
    for queue in (empty, full):
        queue.close()
    client.close()
    return {label: statistics.median(values) for label, values in figures.items()}


def count_due_calls(server: RedisServer, schedules: int, args: argparse.Namespace) -> Any:
    """due_schedules (and fire_schedule) calls a second while the workers of one B drain of
    10 x ``--jobs`` run (from their first due_schedules call to their last script call), read
    with MONITOR. The drain is not timed: MONITOR slows Redis."""
    settings = SyncQueue(QUEUE, url=server.url).commands.script_settings
    shas = {script(name, settings).sha: name for name in ("due_schedules", "fire_schedule")}
    seen: dict[str, list[float]] = {name: [] for name in shas.values()}
    last_script = [0.0]
    ready = threading.Event()

    def listen() -> None:
        with redis.Redis.from_url(server.url).monitor() as monitor:
            ready.set()
            for cmd in monitor.listen():
                words = cmd["command"].split(" ", 2)
                if words[0].upper() == "ECHO" and words[1:] == [END]:
                    return  # every command before it has been read
                if words[0].upper() in ("EVALSHA", "EVALSHA_RO") and len(words) > 1:
                    last_script[0] = float(cmd["time"])
                    name = shas.get(words[1].strip('"'))
                    if name:
                        seen[name].append(float(cmd["time"]))

    thread = threading.Thread(target=listen, daemon=True)
    server.flush()
    thread.start()
    ready.wait(10)
    res = scenario(server, schedules, argparse.Namespace(jobs=args.jobs * 10))
    redis.Redis.from_url(server.url).echo(END)
    thread.join(60)
    if res.get("status") != "ok" or not seen["due_schedules"]:
        raise SystemExit(f"the counted drain failed: {res}")
    window = last_script[0] - seen["due_schedules"][0]
    return {
        "window_s": window,
        **{f"{name}_calls": len(times) for name, times in seen.items()},
        "due_schedules_per_s": len(seen["due_schedules"]) / window,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pairs", type=int, default=10, help="A/B pairs of drains (default 10)")
    ap.add_argument("--jobs", type=int, default=10_000, help="jobs per drain (default 10000)")
    ap.add_argument("--schedules", type=int, default=1000, help="B's schedules (default 1000)")
    ap.add_argument(
        "--control",
        action="store_true",
        help="B without schedules too (A against A): how far the ratio moves on its own",
    )
    ap.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = ap.parse_args()
    if args.pairs < 2:
        ap.error("--pairs must be at least 2")

    b_schedules = 0 if args.control else args.schedules
    server = RedisServer()
    runs: list[dict[str, Any]] = []
    try:
        for pair in range(args.pairs):
            order = ("A", "B") if pair % 2 == 0 else ("B", "A")
            got = {}
            for label in order:
                got[label] = drain(server, b_schedules if label == "B" else 0, args)
            runs.append(got)
            ratio = got["B"]["drain"] / got["A"]["drain"]
            cpu = {k: got["B"][k] / got["A"][k] for k in ("redis_cpu_us", "workers_cpu_us")}
            print(
                f"pair {pair + 1} ({''.join(order)}): A {got['A']['drain']:.0f} jobs/s, "
                f"B {got['B']['drain']:.0f} jobs/s, B/A {ratio:.3f} "
                f"(steady {got['B']['steady'] / got['A']['steady']:.3f}; CPU per job: Redis "
                f"{cpu['redis_cpu_us']:.3f}, workers {cpu['workers_cpu_us']:.3f})",
                file=sys.stderr,
                flush=True,
            )
        usec = due_call_usec(server, args.schedules, 11)
        calls = count_due_calls(server, args.schedules, args)
    finally:
        os.environ.pop(ENV, None)
        server.stop()

    summary: dict[str, Any] = {"pairs": args.pairs, "jobs": args.jobs, "schedules": b_schedules}
    print(f"no-op drain, {args.jobs} jobs, 2 workers; B = {b_schedules} schedules defined")
    figures = (
        ("drain", "jobs/s as run.py (start-up included)"),
        ("steady", "jobs/s after the first job"),
        ("redis_cpu_us", "Redis CPU µs per job"),
        ("workers_cpu_us", "workers' CPU µs per job"),
    )
    for figure, what in figures:
        ratios = sorted(r["B"][figure] / r["A"][figure] for r in runs)
        a = statistics.median(r["A"][figure] for r in runs)
        b = statistics.median(r["B"][figure] for r in runs)
        summary[figure] = {"A": a, "B": b, "ratios": ratios, "median": statistics.median(ratios)}
        print(
            f"  {what}: A {a:.1f}, B {b:.1f} (medians); B/A per pair median "
            f"{statistics.median(ratios):.3f} (min {ratios[0]:.3f}, max {ratios[-1]:.3f})"
        )
    per_s = calls["due_schedules_per_s"]
    share = usec["defined"] * per_s / 1e6
    summary.update(due_usec=usec, calls=calls, redis_share=share)
    print(
        f"  due_schedules: {usec['none']:.1f} µs of Redis time per call with none defined, "
        f"{usec['defined']:.1f} µs with {args.schedules}; {per_s:.1f} calls/s during a drain "
        f"({calls['due_schedules_calls']} in {calls['window_s']:.1f} s of {args.jobs * 10} jobs; "
        f"fire_schedule {calls['fire_schedule_calls']}): {share * 100:.4f} % of Redis's time"
    )
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
