"""Run ONE scenario for ONE library and print a JSON result on the last line.

Executed by run.py with the library's interpreter (project env for Conveyor,
benchmarks/.venv-peers for peers):

    python -m harness.scenario LIB check
    python -m harness.scenario LIB SCENARIO --url URL --n N [--timeout S] ...

SCENARIO is one of enqueue, enqueue_concurrent, bulk, drain_noop, drain_sleep, latency, and
drain_mix for the adapters that opt in (and Conveyor's flow-control rows drain_limited,
drain_groups); an adapter may support fewer (its ``SCENARIOS``), the others answer ``n/a``.
A peer in another language runs through ``harness.foreign``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from types import ModuleType
from typing import Any

import redis

from harness import mix
from harness.probe import DONE_KEY, LAT_KEY, ORIGIN_KEY, READY_KEY, parse_sample

BENCH_DIR = Path(__file__).resolve().parent.parent
#: jobs per call of an adapter's ``enqueue_mix`` (scenario f)
MIX_CHUNK = 1000
Result = dict[str, Any]


class ScenarioError(Exception):
    def __init__(self, status: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Workers:
    """Up to two worker processes of one library, plus their probe readings."""

    def __init__(
        self, lib: str, mode: str, url: str, count: int, command: list[str] | None = None
    ) -> None:
        self.client = redis.Redis.from_url(url)
        self.client.delete(DONE_KEY, READY_KEY, LAT_KEY, ORIGIN_KEY)
        # The driver's PYTHONPATH kept: for a base row it puts the earlier commit's src/ first.
        pythonpath = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(BENCH_DIR)]))
        env = dict(os.environ, PYTHONPATH=pythonpath, PYTHONUNBUFFERED="1")
        self.procs: list[tuple[subprocess.Popen[bytes], Any]] = []
        for _ in range(count):
            log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
            # `command`: a foreign library's own worker process (harness/foreign.py)
            cmd = command or [sys.executable, "-m", "harness.worker_main", lib, mode, url]
            proc = subprocess.Popen(cmd, cwd=BENCH_DIR, env=env, stdout=log, stderr=log)
            self.procs.append((proc, log))

    def check_alive(self) -> None:
        for proc, log in self.procs:
            if proc.poll() is not None:
                log.seek(0)
                lines = [ln for ln in log.read().decode(errors="replace").splitlines() if ln]
                tail = lines[-1] if lines else ""
                raise ScenarioError("error", f"worker exited {proc.returncode}: {tail[:200]}")

    def progress(self) -> tuple[int, float, float]:
        """(jobs done, last completion, first completion) summed over workers."""
        total, last, first = 0, 0.0, float("inf")
        for raw in self.client.hvals(DONE_KEY):
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
            count, ts, first_ts = text.split()
            total += int(count)
            last = max(last, float(ts))
            if int(count):
                first = min(first, float(first_ts))
        return total, last, first

    def origins(self) -> list[str]:
        """Where each worker process imported the library from (adapters with ``ORIGIN``)."""
        return sorted(v.decode() for v in self.client.hvals(ORIGIN_KEY))

    def started_at(self) -> float:
        return min(float(v) for v in self.client.hvals(READY_KEY))

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.client.hlen(READY_KEY) < len(self.procs):
            self.check_alive()
            if time.monotonic() > deadline:
                raise ScenarioError("timeout", "workers never became ready")
            time.sleep(0.01)

    def wait_done(self, n: int, timeout: float) -> float:
        """Block until `n` jobs completed; return wall time of the last completion."""
        deadline = time.monotonic() + timeout
        while True:
            done, last, _ = self.progress()
            if done >= n:
                return last
            self.check_alive()
            if time.monotonic() > deadline:
                raise ScenarioError("timeout", f"timeout ({done}/{n} done)")
            time.sleep(0.01)

    def stop(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc, log in self.procs:
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
        self.client.close()


def payload(i: int) -> dict[str, Any]:
    return {"i": i, "t": time.time()}


async def fill(producer: Any, task: str, n: int) -> None:
    if task == "mix":  # scenario (f): each job with its options (harness/mix.py)
        for start in range(0, n, MIX_CHUNK):
            chunk = range(start, min(n, start + MIX_CHUNK))
            await producer.enqueue_mix([mix.payload(i) for i in chunk])
        return
    if producer.has_bulk:
        for start in range(0, n, producer.bulk_chunk):
            stop = min(n, start + producer.bulk_chunk)
            await producer.enqueue_bulk(task, [payload(i) for i in range(start, stop)])
    else:
        for i in range(n):
            await producer.enqueue(task, payload(i))


async def run_enqueue(adapter: ModuleType, args: argparse.Namespace) -> Result:
    producer = await adapter.open_producer(args.url)
    try:
        for i in range(20):  # warm up connections / script cache
            await producer.enqueue("noop", payload(-i))
        t0 = time.perf_counter()
        for i in range(args.n):
            await producer.enqueue("noop", payload(i))
        elapsed = time.perf_counter() - t0
    finally:
        await producer.close()
    return {"status": "ok", "value": args.n / elapsed}


#: Producers adding at once in scenario enqueue_concurrent, as a web app under load does:
#: asyncio tasks for an asyncio client, threads for a blocking one (``BLOCKING_PRODUCER``).
CONCURRENT_TASKS = 100
CONCURRENT_THREADS = 16


async def run_enqueue_concurrent(adapter: ModuleType, args: argparse.Namespace) -> Result:
    """Single adds from many producers at once; each producer adds its share in a loop."""
    producer = await adapter.open_producer(args.url)
    blocking = getattr(adapter, "BLOCKING_PRODUCER", False)
    count = CONCURRENT_THREADS if blocking else CONCURRENT_TASKS
    shares = [range(k, args.n, count) for k in range(count)]

    async def produce(share: range) -> None:
        for i in share:
            await producer.enqueue("noop", payload(i))

    try:
        for i in range(20):  # warm up connections / script cache
            await producer.enqueue("noop", payload(-i))
        t0 = time.perf_counter()
        if blocking:  # the adapter's enqueue never yields: each thread drives its own loop
            threads = [
                threading.Thread(target=asyncio.run, args=(produce(share),)) for share in shares
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        else:
            await asyncio.gather(*(produce(share) for share in shares))
        elapsed = time.perf_counter() - t0
    finally:
        await producer.close()
    return {"status": "ok", "value": args.n / elapsed, "producers": count, "threads": blocking}


async def run_bulk(adapter: ModuleType, args: argparse.Namespace) -> Result:
    producer = await adapter.open_producer(args.url)
    try:
        if not producer.has_bulk:
            return {"status": "n/a", "detail": "no bulk API"}
        await producer.enqueue_bulk("noop", [payload(-i) for i in range(1, 20)])
        batches = [
            [payload(i) for i in range(s, min(args.n, s + producer.bulk_chunk))]
            for s in range(0, args.n, producer.bulk_chunk)
        ]
        t0 = time.perf_counter()
        for batch in batches:
            await producer.enqueue_bulk("noop", batch)
        elapsed = time.perf_counter() - t0
    finally:
        await producer.close()
    return {"status": "ok", "value": args.n / elapsed, "chunk": producer.bulk_chunk}


async def run_drain(
    adapter: ModuleType, args: argparse.Namespace, mode: str, filled: bool = False
) -> Result:
    if not filled:
        producer = await adapter.open_producer(args.url)
        try:
            await fill(producer, mode, args.n)
        finally:
            await producer.close()
    workers = Workers(args.lib, mode, args.url, args.workers)
    try:
        last = workers.wait_done(args.n, args.timeout)
        started = workers.started_at()
        first = workers.progress()[2]
        origins = workers.origins()
    finally:
        workers.stop()
    elapsed = last - started
    return {
        "status": "ok",
        "value": args.n / elapsed,
        "seconds": elapsed,
        "to_first_job_s": first - started,  # library start-up share of `seconds`
        "worker_origins": origins,
    }


def percentile(sorted_values: list[float], q: float) -> float:
    idx = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[idx]


class LatencySamples:
    """Reads ``benchprobe:lat`` as it grows; each measured job (index 0..total-1) counts once.

    A library may run a job more than once (SAQ's start-up sweep can abort a job a worker has
    just dequeued and retry it about 5 s later, after it has already run). With the payload
    index in the sample, the first start of each job is its sample, later starts are counted
    as ``duplicate_starts``, and warm-up jobs (``i < 0``) that start again inside the measured
    window are counted as ``warmup_reruns`` instead of being taken for measured jobs.
    Adapters that do not pass the index give plain samples, which can only be counted.
    """

    def __init__(self, client: redis.Redis, total: int) -> None:
        self.client = client
        self.total = total
        self.first: dict[int, float] = {}
        self.plain: list[float] = []
        self.duplicate_starts = 0
        self.warmup_reruns = 0
        self._read = 0

    def poll(self) -> int:
        """Read new samples; return how many measured jobs have a sample."""
        new = self.client.lrange(LAT_KEY, self._read, -1)
        self._read += len(new)
        for raw in new:
            i, seconds = parse_sample(raw)
            if i is None:
                self.plain.append(seconds)
            elif i < 0:
                self.warmup_reruns += 1
            elif i >= self.total:
                raise ScenarioError("error", f"latency sample for unknown job i={i}")
            elif i in self.first:
                self.duplicate_starts += 1
            else:
                self.first[i] = seconds
        return len(self.first) + len(self.plain)

    def wait(self, workers: Workers, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (got := self.poll()) < self.total:
            workers.check_alive()
            if time.monotonic() > deadline:
                raise ScenarioError("timeout", f"timeout ({got}/{self.total} latency samples)")
            time.sleep(0.01)

    def sorted_ms(self) -> list[float]:
        if self.first and self.plain:
            raise ScenarioError("error", "mixed indexed and plain latency samples")
        if len(self.plain) > self.total:  # no index: a second run cannot be told apart
            raise ScenarioError(
                "error", f"got {len(self.plain)} latency samples, expected {self.total}"
            )
        return sorted(x * 1000 for x in (self.plain or self.first.values()))

    def notes(self) -> Result:
        if not (self.duplicate_starts or self.warmup_reruns):
            return {}
        return {
            "duplicate_starts": self.duplicate_starts,
            "warmup_reruns": self.warmup_reruns,
            "detail": (
                f"the library started {self.duplicate_starts} measured job(s) and "
                f"{self.warmup_reruns} warm-up job(s) again during the run; "
                "each measured job counted once, at its first start"
            ),
        }


async def run_latency(adapter: ModuleType, args: argparse.Namespace) -> Result:
    workers = Workers(args.lib, "noop", args.url, 1)
    producer = await adapter.open_producer(args.url)
    try:
        workers.wait_ready(args.timeout)
        warm = 5
        for i in range(1, warm + 1):  # indices -1..-5: never mistaken for a measured job
            await producer.enqueue("noop", payload(-i))
        workers.wait_done(warm, args.timeout)
        await asyncio.sleep(1.0)  # let the worker go idle (blocking read / poll backoff)
        workers.client.delete(LAT_KEY)
        total = int(args.rate * args.duration)
        samples = LatencySamples(workers.client, total)
        start = time.perf_counter()
        for i in range(total):
            delay = start + i / args.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await producer.enqueue("noop", payload(i))
        achieved = total / (time.perf_counter() - start)
        samples.wait(workers, args.timeout)
        lat = samples.sorted_ms()
        origins = workers.origins()
    finally:
        await producer.close()
        workers.stop()
    return {
        "status": "ok",
        "p50": percentile(lat, 0.50),
        "p99": percentile(lat, 0.99),
        "max": lat[-1],
        "samples": total,
        "achieved_rate": achieved,
        "worker_origins": origins,
        **samples.notes(),
    }


#: The common scenarios; drain_mix and FLOW_SCENARIOS are opt-in: only adapters that list them
#: in their ``SCENARIOS`` run them.
SCENARIOS = ("enqueue", "enqueue_concurrent", "bulk", "drain_noop", "drain_sleep", "latency")
#: Conveyor's own rows (flow control): the no-op drain under a rate limit far above what the
#: workers can do, and with its jobs spread over 1,000 groups.
FLOW_SCENARIOS = ("drain_limited", "drain_groups")


def supported(adapter: ModuleType) -> tuple[str, ...]:
    """Scenarios the adapter supports: its ``SCENARIOS``, or all but the opt-in ones."""
    return tuple(getattr(adapter, "SCENARIOS", SCENARIOS))


async def run_flow_drain(adapter: ModuleType, args: argparse.Namespace) -> Result:
    """The no-op drain with flow control on (the adapter's ``use_flow_control`` sets it up)."""
    producer = await adapter.open_producer(args.url)
    try:
        if not await producer.use_flow_control(args.scenario):
            raise ScenarioError("n/a", "this version has no flow control")
        await fill(producer, "noop", args.n)
    finally:
        await producer.close()
    return await run_drain(adapter, args, "noop", filled=True)


def foreign_check(adapter: ModuleType) -> Result:
    from harness import foreign as runner

    return runner.check(adapter)


def check(adapter: ModuleType) -> Result:
    # An adapter's own VERSION is the imported code's (an earlier commit's, for a base row);
    # the installed distribution's is this tree's.
    return {
        "status": "ok",
        "version": getattr(adapter, "VERSION", None) or importlib.metadata.version(adapter.DIST),
        "settings": adapter.SETTINGS,
        **({"retention": adapter.RETENTION} if hasattr(adapter, "RETENTION") else {}),
        "python": sys.version.split()[0],
        "scenarios": list(supported(adapter)),
    }


async def dispatch(args: argparse.Namespace) -> Result:
    adapter = importlib.import_module(f"peers.{args.lib}")  # peers/<lib>.py
    result = await run_one(adapter, args)
    if getattr(adapter, "ORIGIN", None):  # the producer's (this process's) import
        result["origin"] = adapter.ORIGIN
    return result


async def run_one(adapter: ModuleType, args: argparse.Namespace) -> Result:
    foreign = getattr(adapter, "FOREIGN", None)  # a peer in another language
    if args.scenario == "check":
        return check(adapter) if foreign is None else foreign_check(adapter)
    if args.scenario not in supported(adapter):
        return {"status": "n/a", "detail": f"{args.lib} runs only {', '.join(supported(adapter))}"}
    if foreign is not None:
        from harness import foreign as runner

        return await runner.run(adapter, args)
    if args.scenario == "enqueue":
        return await run_enqueue(adapter, args)
    if args.scenario == "enqueue_concurrent":
        return await run_enqueue_concurrent(adapter, args)
    if args.scenario == "bulk":
        return await run_bulk(adapter, args)
    if args.scenario in ("drain_noop", "drain_sleep", "drain_mix"):
        return await run_drain(adapter, args, args.scenario.removeprefix("drain_"))
    if args.scenario == "latency":
        return await run_latency(adapter, args)
    if args.scenario in FLOW_SCENARIOS:
        return await run_flow_drain(adapter, args)
    raise SystemExit(f"unknown scenario {args.scenario}")


#: The event loops a Python producer may run on (run.py's --producer-loop).
PRODUCER_LOOPS = ("uvloop", "asyncio")


def run_on(loop: str, main: Coroutine[Any, Any, Result]) -> Result:
    """The producer's side of a scenario on ``loop``: uvloop by default, as the asyncio
    libraries' workers run (``peers.base.run_on_uvloop``) and as an ASGI app served by uvicorn
    does (it picks uvloop when installed): the event loop is not what this benchmark
    compares. A blocking producer's calls never yield, so the loop only carries its awaits."""
    if loop == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("lib")
    ap.add_argument("scenario")
    ap.add_argument("--url", default="")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--loop", choices=PRODUCER_LOOPS, default="uvloop")
    args = ap.parse_args()
    try:
        result = run_on(args.loop, dispatch(args))
    except ScenarioError as exc:
        result = {"status": exc.status, "detail": exc.detail}
    except Exception as exc:  # report, don't crash: the driver prints the row
        result = {"status": "error", "detail": f"{type(exc).__name__}: {exc}"[:300]}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
