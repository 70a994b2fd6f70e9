#!/usr/bin/env python3
"""How Conveyor's cost grows with the backlog.

    .venv/bin/python benchmarks/scaling.py            # backlogs 10k, 100k, 1M; ~6-9 min
    .venv/bin/python benchmarks/scaling.py --quick    # backlogs 10k, 60k; 5 s latency run
    .venv/bin/python benchmarks/scaling.py --backlogs 10000,100000,500000 --repeat 3

Starts its own redis-server (no persistence) on a free loopback port and measures, for
Conveyor only (the same worker as run.py: 2 processes, Worker(concurrency=200) on uvloop):

1. Drain throughput of no-op jobs with B jobs waiting (B = 10k, 100k, 1M): FLUSHALL, bulk-add
   B jobs with Queue.add_bulk, start 2 worker processes, and time a fixed range of completions:
   jobs 1,001-9,000 (every backlog) and jobs 1,001-51,000 (backlogs of at least 52k). The
   workers are stopped once the range is done, so with 1M waiting the figure is taken with
   ~1M waiting. The fill rate (add_bulk jobs/s at that backlog) comes with it.
2. Redis memory (INFO memory used_memory, workers stopped, after FLUSHALL) per waiting job
   ((after fill - before) / B) and per retained completed job (drain K jobs with
   CONVEYOR_KEEP_COMPLETED above K, then (after drain - before) / K).
3. Latency under a sustained load of half the highest median drain rate in 1: a producer
   adds jobs every 10 ms with add_bulk (rate x 10 ms jobs per call; one process cannot reach
   that rate with one awaited add at a time) for --latency-seconds, 2 worker processes.
   Reported: enqueue call -> handler runs (producer clock, the probe run.py uses) and
   Redis "created" -> completion recorded in Redis (both Redis clock, ms resolution; includes
   the batched acknowledgement).

Jobs carry {"i": n, "t": producer wall time} (about 35 bytes of JSON), like run.py's.
Prints markdown tables and writes benchmarks/results/scaling.json (and scaling.md).
Whole-run budget: --budget seconds (default 600); a backlog whose estimated time would not fit
is shrunk (to the largest multiple of 100k that fits) and the note says so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import redis  # noqa: E402
from harness import report  # noqa: E402
from harness.probe import DONE_KEY, LAT_KEY, READY_KEY  # noqa: E402
from harness.redis_server import RedisServer  # noqa: E402
from harness.scenario import ScenarioError, Workers, percentile  # noqa: E402

from conveyor import Queue  # noqa: E402
from conveyor.storage.keys import QueueKeys  # noqa: E402

QUEUE = "bench"  # the queue peers/conveyor.py's workers serve
PREFIX = "conveyor"  # Settings' default prefix
SKIP = 1_000  # completions ignored before timing starts (worker start-up, first fetches)
FILL_CALL = 10_000  # jobs per add_bulk call while filling (add_bulk sends 1000 per round trip)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--backlogs", help="comma-separated backlog sizes (default 10000,100000,1000000)"
    )
    ap.add_argument("--repeat", type=int, help="repeats per backlog (default 3; quick 1)")
    ap.add_argument("--short-window", type=int, default=8_000, help="jobs timed at every backlog")
    ap.add_argument("--window", type=int, default=50_000, help="jobs timed at large backlogs")
    ap.add_argument(
        "--retained", type=int, help="completed jobs retained for memory (default 100000)"
    )
    ap.add_argument("--latency-seconds", type=float, help="sustained-load duration (default 20)")
    ap.add_argument("--latency-rate", type=float, help="jobs/s (default: half the max drain rate)")
    ap.add_argument("--timeout", type=float, default=180.0, help="per-phase wait timeout (s)")
    ap.add_argument("--budget", type=float, default=600.0, help="whole-run budget (s)")
    ap.add_argument("--quick", action="store_true", help="small backlogs, 1 repeat, 5 s latency")
    args = ap.parse_args()
    default_backlogs = "10000,60000" if args.quick else "10000,100000,1000000"
    args.backlogs = [int(x) for x in (args.backlogs or default_backlogs).split(",") if x.strip()]
    smallest = SKIP + args.short_window
    for backlog in args.backlogs:
        if backlog < smallest:
            ap.error(
                f"backlog {backlog:,} is too small: the drain is timed over jobs {SKIP + 1:,}-"
                f"{smallest:,} (a smaller --short-window times a smaller backlog)"
            )
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.retained = args.retained or (20_000 if args.quick else 100_000)
    args.latency_seconds = args.latency_seconds or (5.0 if args.quick else 20.0)
    return args


def log(msg: str) -> None:
    print(f"[scaling {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def used_memory(server: RedisServer) -> int:
    for line in server.command("INFO", "memory").splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":", 1)[1])
    raise RuntimeError("no used_memory in INFO memory")


def cpu_seconds(server: RedisServer, pids: list[int]) -> tuple[float, float | None]:
    """CPU time used so far (user + system, s): Redis's (INFO cpu) and the worker processes'
    (/proc, Linux only: None elsewhere)."""
    info = dict(
        line.split(":", 1) for line in server.command("INFO", "cpu").splitlines() if ":" in line
    )
    redis_cpu = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        workers = 0.0
        for pid in pids:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            workers += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    except (OSError, ValueError):
        return redis_cpu, None
    return redis_cpu, workers


def flush_keys(server: RedisServer) -> None:
    """FLUSHALL but keep the script cache, so memory baselines already include the scripts."""
    server.command("FLUSHALL")


def summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"status": "n/a"}
    return {
        "status": "ok",
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "values": values,
    }


def cell(s: dict[str, Any] | None, digits: int = 0) -> str:
    if not s or s.get("status") != "ok":
        return (s or {}).get("detail") or (s or {}).get("status") or "n/a"
    fmt = f"{{:,.{digits}f}}"
    med = fmt.format(s["median"])
    if len(s["values"]) == 1 or s["min"] == s["max"]:
        return med
    return f"{med} ({fmt.format(s['min'])}-{fmt.format(s['max'])})"


async def fill(url: str, n: int, offset: int = 0) -> tuple[float, list[str]]:
    """Bulk-add n no-op jobs; return (seconds, ids)."""
    ids: list[str] = []
    q = Queue(QUEUE, url=url)
    try:
        t0 = time.perf_counter()
        for start in range(0, n, FILL_CALL):
            now = time.time()
            batch = [
                {"name": "noop", "data": {"i": offset + i, "t": now}}
                for i in range(start, min(n, start + FILL_CALL))
            ]
            ids.extend(job.id for job in await q.add_bulk(batch))
        return time.perf_counter() - t0, ids
    finally:
        await q.close()


async def wait_counts(url: str, want_completed: int, timeout: float) -> dict[str, int]:
    """Wait until every job is acknowledged (acks are batched, the probe counts earlier)."""
    q = Queue(QUEUE, url=url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            counts = await q.counts()
            if counts["completed"] >= want_completed and counts["active"] == 0:
                return counts
            if time.monotonic() > deadline:
                raise ScenarioError("timeout", f"acknowledgements pending: {counts}")
            await asyncio.sleep(0.05)
    finally:
        await q.close()


def clear_probe(server: RedisServer) -> None:
    server.command("DEL", DONE_KEY, READY_KEY, LAT_KEY)


class Env:
    """Temporarily set CONVEYOR_* variables for the worker processes started meanwhile."""

    def __init__(self, **values: str) -> None:
        self.values = values
        self.old: dict[str, str | None] = {}

    def __enter__(self) -> Env:
        for k, v in self.values.items():
            self.old[k] = os.environ.get(k)
            os.environ[k] = v
        return self

    def __exit__(self, *exc: object) -> None:
        for k, v in self.old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# -- 1. drain throughput vs backlog ---------------------------------------------------------------


def windows_for(backlog: int, args: argparse.Namespace) -> dict[str, tuple[int, int]]:
    out = {}
    if backlog >= SKIP + args.short_window:
        out["short"] = (SKIP, SKIP + args.short_window)
    if backlog >= SKIP + args.window + 1_000:
        out["long"] = (SKIP, SKIP + args.window)
    return out


def drain_once(server: RedisServer, backlog: int, args: argparse.Namespace) -> dict[str, Any]:
    flush_keys(server)
    mem0 = used_memory(server)
    fill_s, _ = asyncio.run(fill(server.url, backlog))
    mem1 = used_memory(server)
    result: dict[str, Any] = {
        "backlog": backlog,
        "fill_seconds": fill_s,
        "fill_rate": backlog / fill_s,
        "bytes_per_waiting_job": (mem1 - mem0) / backlog,
        "used_memory_before": mem0,
        "used_memory_filled": mem1,
    }
    wins = windows_for(backlog, args)
    marks: dict[int, tuple[int, float]] = {}
    # CPU used by Redis and by the workers when each mark was seen, with the count seen then.
    cpu_marks: dict[int, tuple[int, float, float | None, float]] = {}
    want = sorted({t for w in wins.values() for t in w})
    workers = Workers("conveyor", "noop", server.url, 2)
    pids = [proc.pid for proc, _ in workers.procs]
    try:
        deadline = time.monotonic() + args.timeout
        while len(marks) < len(want):
            done, last, _ = workers.progress()
            for th in want:
                if th not in marks and done >= th:
                    marks[th] = (done, last)
                    cpu_marks[th] = (done, *cpu_seconds(server, pids), time.monotonic())
            if len(marks) == len(want):
                break
            workers.check_alive()
            if time.monotonic() > deadline:
                raise ScenarioError("timeout", f"timeout ({done}/{want[-1]} done)")
            time.sleep(0.002)
        result["to_first_job_s"] = workers.progress()[2] - workers.started_at()
    finally:
        workers.stop()
    for name, (a, b) in wins.items():
        (ca, ta), (cb, tb) = marks[a], marks[b]
        result[f"drain_{name}"] = (cb - ca) / (tb - ta)
        result[f"window_{name}"] = [a, b]
    # Where the time goes, over the longest window: Redis's CPU per job and how busy it was
    # (near 100 % = Redis is the limit), and the workers' CPU per job.
    first, last_mark = wins["long"] if "long" in wins else wins["short"]  # (see parse_args)
    (n0, redis0, workers0, t0), (n1, redis1, workers1, t1) = (
        cpu_marks[first],
        cpu_marks[last_mark],
    )
    result["redis_cpu_us_per_job"] = (redis1 - redis0) / (n1 - n0) * 1e6
    result["redis_busy_pct"] = (redis1 - redis0) / (t1 - t0) * 100
    if workers0 is not None and workers1 is not None:
        result["workers_cpu_us_per_job"] = (workers1 - workers0) / (n1 - n0) * 1e6
    result["status"] = "ok"
    return result


def drain_phase(
    server: RedisServer, args: argparse.Namespace, budget_end: float, notes: list[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    reserve = 90 + args.latency_seconds + args.retained / 10_000  # phases 2 and 3
    fill_rate = 25_000.0  # first guess, replaced by the measured rate
    for backlog in args.backlogs:
        runs: list[dict[str, Any]] = []
        for r in range(args.repeat):
            per_run = backlog / fill_rate + 15 + 2 * backlog / 1e6  # fill + drain + FLUSHALL
            left = budget_end - reserve - time.monotonic()
            if per_run > left:
                if runs:
                    notes.append(
                        f"backlog {backlog:,}: {len(runs)} run(s) instead of {args.repeat} "
                        f"(estimated {per_run:.0f} s per run, {max(left, 0):.0f} s left in budget)"
                    )
                    break
                fits = int(max(left - 15, 0) * fill_rate * 0.9) // 100_000 * 100_000
                if fits < 100_000:
                    notes.append(f"backlog {backlog:,}: skipped, no time left in the budget")
                    break
                notes.append(
                    f"backlog {backlog:,} would take ~{per_run:.0f} s per run at the measured "
                    f"fill rate ({fill_rate:,.0f} jobs/s); measured {fits:,} instead"
                )
                backlog = fits
            log(f"backlog {backlog:,} run {r + 1}/{args.repeat}: filling")
            try:
                res = drain_once(server, backlog, args)
            except (ScenarioError, Exception) as exc:  # keep going; the row says what happened
                detail = exc.detail if isinstance(exc, ScenarioError) else repr(exc)
                res = {"status": "error", "backlog": backlog, "detail": detail[:200]}
            finally:
                flush_keys(server)
            if res.get("status") == "ok":
                fill_rate = res["fill_rate"]
            shown = {k: round(v, 1) if isinstance(v, float) else v for k, v in res.items()}
            log(f"  {shown}")
            runs.append(res)
        ok = [x for x in runs if x.get("status") == "ok"]
        key = f"{runs[0]['backlog']}" if runs else str(backlog)
        out[key] = {
            "backlog": runs[0]["backlog"] if runs else backlog,
            "runs": runs,
            "fill_rate": summary([x["fill_rate"] for x in ok]),
            "bytes_per_waiting_job": summary([x["bytes_per_waiting_job"] for x in ok]),
            "drain_short": summary([x["drain_short"] for x in ok if "drain_short" in x]),
            "drain_long": summary([x["drain_long"] for x in ok if "drain_long" in x]),
            **{
                key: summary([x[key] for x in ok if key in x])
                for key in ("redis_cpu_us_per_job", "redis_busy_pct", "workers_cpu_us_per_job")
            },
            "error": next((x["detail"] for x in runs if x.get("status") != "ok"), None),
        }
    return out


# -- 2. memory per retained completed job ---------------------------------------------------------


def retained_phase(server: RedisServer, args: argparse.Namespace) -> dict[str, Any]:
    k = args.retained
    flush_keys(server)
    mem0 = used_memory(server)
    fill_s, _ = asyncio.run(fill(server.url, k))
    mem_waiting = used_memory(server)
    with Env(CONVEYOR_KEEP_COMPLETED=str(k * 2)):
        workers = Workers("conveyor", "noop", server.url, 2)
    try:
        workers.wait_done(k, args.timeout)
        counts = asyncio.run(wait_counts(server.url, k, args.timeout))
    finally:
        workers.stop()
    clear_probe(server)
    time.sleep(0.5)  # let Redis release the workers' client buffers
    mem_done = used_memory(server)
    flush_keys(server)
    return {
        "status": "ok",
        "jobs": k,
        "counts_after": counts,
        "bytes_per_waiting_job": (mem_waiting - mem0) / k,
        "bytes_per_completed_job": (mem_done - mem0) / k,
        "used_memory_before": mem0,
        "used_memory_waiting": mem_waiting,
        "used_memory_completed": mem_done,
        "fill_seconds": fill_s,
    }


# -- 3. latency under sustained load --------------------------------------------------------------


async def produce(url: str, rate: float, seconds: float) -> tuple[list[str], float, list[float]]:
    """Add jobs at `rate` for `seconds`: every 10 ms, the jobs due so far in one add_bulk.
    Also returns the producer's lag (ms) at each add_bulk: how long after it was due the
    oldest job of the batch was stamped and sent (up to one 10 ms tick by design, more when
    the producer falls behind). The latency figures start at that stamp, so this lag shows
    here and not there."""
    q = Queue(QUEUE, url=url)
    ids: list[str] = []
    lag_ms: list[float] = []
    tick = 0.01
    try:
        start = time.perf_counter()
        sent = 0
        total = int(rate * seconds)
        n_tick = 0
        while sent < total:
            n_tick += 1
            delay = start + n_tick * tick - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            due = min(total, int(rate * (time.perf_counter() - start)))
            if due <= sent:
                continue
            lag_ms.append((time.perf_counter() - start - sent / rate) * 1000)
            now = time.time()
            batch = [{"name": "noop", "data": {"i": i, "t": now}} for i in range(sent, due)]
            ids.extend(job.id for job in await q.add_bulk(batch))
            sent = due
        achieved = sent / (time.perf_counter() - start)
        return ids, achieved, lag_ms
    finally:
        await q.close()


async def warm(url: str, n: int) -> None:
    async with Queue(QUEUE, url=url) as q:
        await q.add_bulk(
            [{"name": "noop", "data": {"i": -1 - i, "t": time.time()}} for i in range(n)]
        )


def redis_latencies(url: str, ids: list[str]) -> list[float]:
    """created -> finished (Redis clock, ms) of each job, read from the retained job hashes."""
    keys = QueueKeys(PREFIX, QUEUE)
    client = redis.Redis.from_url(url)
    out: list[float] = []
    try:
        for start in range(0, len(ids), 1000):
            pipe = client.pipeline(transaction=False)
            for job_id in ids[start : start + 1000]:
                pipe.hmget(keys.job(job_id), "created", "finished")
            for created, finished in pipe.execute():
                if created is not None and finished is not None:
                    out.append(float(int(finished) - int(created)))
    finally:
        client.close()
    return out


def latency_phase(server: RedisServer, args: argparse.Namespace, rate: float) -> dict[str, Any]:
    flush_keys(server)
    warmup = 200
    with Env(CONVEYOR_KEEP_COMPLETED=str(int(rate * args.latency_seconds * 2) + 10_000)):
        workers = Workers("conveyor", "noop", server.url, 2)
    try:
        workers.wait_ready(args.timeout)
        asyncio.run(warm(server.url, warmup))
        workers.wait_done(warmup, args.timeout)
        time.sleep(1.0)
        server.command("DEL", LAT_KEY)
        ids, achieved, lag_ms = asyncio.run(produce(server.url, rate, args.latency_seconds))
        workers.wait_done(warmup + len(ids), args.timeout)
        asyncio.run(wait_counts(server.url, warmup + len(ids), args.timeout))
        client = redis.Redis.from_url(server.url)
        try:
            probe = sorted(float(x) * 1000 for x in client.lrange(LAT_KEY, 0, -1))
        finally:
            client.close()
    finally:
        workers.stop()
    in_redis = sorted(redis_latencies(server.url, ids))
    flush_keys(server)

    def stats(lat: list[float]) -> dict[str, Any]:
        if not lat:
            return {"status": "error", "detail": "no samples"}
        return {
            "status": "ok",
            "p50": percentile(lat, 0.50),
            "p99": percentile(lat, 0.99),
            "max": lat[-1],
            "samples": len(lat),
        }

    return {
        "status": "ok",
        "target_rate": rate,
        "achieved_rate": achieved,
        "jobs": len(ids),
        "seconds": args.latency_seconds,
        "enqueue_to_handler_ms": stats(probe),
        "redis_created_to_completed_ms": stats(in_redis),
        "producer_lag_ms": stats(sorted(lag_ms)),
    }


# -- report ---------------------------------------------------------------------------------------


def markdown(
    meta: dict[str, Any],
    drain: dict[str, Any],
    mem: dict[str, Any],
    lat: dict[str, Any],
    args: argparse.Namespace,
    notes: list[str],
) -> str:
    m = meta["machine"]
    lines = [
        "# Conveyor: how cost grows with the backlog",
        "",
        f"- Date: {m['date']}; machine: {m['cpu']}, {m['cores']} cores, {m['os']}",
        f"- Python {m['python']}, Redis {m['redis']} (private, no persistence), "
        f"conveyor {meta['conveyor']}, redis-py {meta['redis_py']}",
        f"- 2 worker processes, Worker(concurrency=200) on uvloop; no-op jobs with "
        f'{{"i": n, "t": time}} payloads; repeat = {args.repeat}; cells: median (min-max)',
        "",
        f"| Jobs waiting at start | add_bulk fill jobs/s | drain jobs/s, jobs "
        f"{SKIP + 1:,}-{SKIP + args.short_window:,} | drain jobs/s, jobs "
        f"{SKIP + 1:,}-{SKIP + args.window:,} | Redis bytes per waiting job | Redis CPU "
        "busy % | Redis CPU µs per job | workers' CPU µs per job |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in drain.values():
        label = f"{row['backlog']:,}"
        if row.get("error"):
            label += f" ({row['error'][:60]})"
        lines.append(
            f"| {label} | {cell(row['fill_rate'])} | {cell(row['drain_short'])} | "
            f"{cell(row['drain_long'])} | {cell(row['bytes_per_waiting_job'])} | "
            f"{cell(row.get('redis_busy_pct'))} | {cell(row.get('redis_cpu_us_per_job'), 1)} | "
            f"{cell(row.get('workers_cpu_us_per_job'), 1)} |"
        )
    lines += [
        "",
        "CPU columns: over the longest window, from Redis's INFO cpu and the worker processes' "
        "/proc stat (both user + system; the workers' include the benchmark's probe thread).",
    ]
    lines += ["", "| Redis memory (INFO used_memory delta ÷ jobs) | bytes per job |", "|---|---|"]
    if mem.get("status") == "ok":
        lines.append(
            f"| waiting job ({mem['jobs']:,} waiting) | {mem['bytes_per_waiting_job']:,.0f} |"
        )
        lines.append(
            f"| retained completed job ({mem['jobs']:,} retained, CONVEYOR_KEEP_COMPLETED="
            f"{mem['jobs'] * 2:,}) | {mem['bytes_per_completed_job']:,.0f} |"
        )
    else:
        lines.append(f"| retained completed job | {mem.get('detail', 'error')} |")
    lines += [""]
    if lat.get("status") == "ok":
        lines += [
            f"Sustained load: target {lat['target_rate']:,.0f} jobs/s (half the highest median "
            f"drain rate above), achieved {lat['achieved_rate']:,.0f} jobs/s for "
            f"{lat['seconds']:.0f} s ({lat['jobs']:,} jobs), add_bulk every 10 ms, "
            "2 worker processes.",
            "",
            "| Latency under sustained load | p50 ms | p99 ms | max ms | samples |",
            "|---|---|---|---|---|",
        ]
        for key, label in (
            ("enqueue_to_handler_ms", "enqueue call → handler runs (producer clock)"),
            ("redis_created_to_completed_ms", "created → completion recorded (Redis clock, ms)"),
            ("producer_lag_ms", "producer behind schedule at each add_bulk (not in the above)"),
        ):
            s = lat[key]
            if s.get("status") == "ok":
                lines.append(
                    f"| {label} | {s['p50']:.2f} | {s['p99']:.2f} | {s['max']:.2f} | "
                    f"{s['samples']:,} |"
                )
            else:
                lines.append(f"| {label} | {s.get('detail')} | | | |")
    else:
        lines.append(f"Latency under sustained load: {lat.get('detail', 'error')}")
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def main() -> int:
    args = parse_args()
    t_start = time.monotonic()
    budget_end = t_start + args.budget
    notes: list[str] = []
    server = RedisServer()
    log(f"redis-server {server.version()} on {server.url}")
    drain: dict[str, Any] = {}
    mem: dict[str, Any] = {"status": "error", "detail": "not run"}
    lat: dict[str, Any] = {"status": "error", "detail": "not run"}
    try:
        asyncio.run(warm(server.url, 1))  # load the scripts once; baselines include them
        flush_keys(server)
        drain = drain_phase(server, args, budget_end, notes)
        log(f"retained completed jobs: {args.retained:,}")
        try:
            mem = retained_phase(server, args)
        except (ScenarioError, Exception) as exc:
            mem = {"status": "error", "detail": getattr(exc, "detail", repr(exc))[:200]}
            with contextlib.suppress(Exception):
                flush_keys(server)
        log(f"  {mem}")
        rates = [
            v
            for row in drain.values()
            for key in ("drain_long", "drain_short")
            if row[key].get("status") == "ok"
            for v in [row[key]["median"]]
        ]
        rate = args.latency_rate or (max(rates) / 2 if rates else 0.0)
        if rate > 0:
            log(f"latency under {rate:,.0f} jobs/s for {args.latency_seconds:.0f} s")
            try:
                lat = latency_phase(server, args, rate)
            except (ScenarioError, Exception) as exc:
                lat = {"status": "error", "detail": getattr(exc, "detail", repr(exc))[:200]}
            log(f"  {lat}")
        else:
            lat = {"status": "error", "detail": "no drain rate measured"}
    finally:
        redis_version = server.version()
        server.stop()

    import importlib.metadata as md

    meta = {
        "machine": report.machine_info(redis_version),
        "conveyor": md.version("conveyor-queue"),
        "redis_py": redis.__version__,
        "args": {k: v for k, v in vars(args).items()},
        "elapsed_s": round(time.monotonic() - t_start, 1),
    }
    text = markdown(meta, drain, mem, lat, args, notes)
    print(text)
    out_dir = BENCH_DIR / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "scaling.md").write_text(text)
    payload = {"meta": meta, "notes": notes, "drain": drain, "memory": mem, "latency": lat}
    (out_dir / "scaling.json").write_text(json.dumps(payload, indent=2) + "\n")
    log(f"wrote {out_dir / 'scaling.json'} in {meta['elapsed_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
