"""The scenarios of a peer written in another language (``harness.runtimes.RUNTIMES``).

Its producer and workers are processes of its own runtime (``node/bench.js``,
``ruby/bench.rb``), driven from here: each producer scenario runs whole in one such process,
which prints the same JSON result a Python adapter's run gives; its workers write the same
``benchprobe:*`` keys ``harness.probe`` does, so the waits and the figures are this harness's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from types import ModuleType
from typing import IO, Any

from harness import runtimes
from harness.probe import LAT_KEY
from harness.scenario import (
    CONCURRENT_TASKS,
    CONCURRENT_THREADS,
    LatencySamples,
    Result,
    ScenarioError,
    Workers,
    percentile,
)


class Foreign:
    """How to run one foreign library: ``RUNTIME SCRIPT LIB COMMAND URL ...``."""

    def __init__(self, lib: str, runtime: str, *, blocking: bool = False) -> None:
        self.lib = lib
        self.runtime = runtime
        #: a blocking client (Ruby): concurrent producers are threads, as for the Python ones
        self.blocking = blocking

    def command(self, *args: object) -> list[str]:
        return [self.runtime, str(runtimes.script(self.runtime)), self.lib, *map(str, args)]

    def worker_command(self, mode: str, url: str) -> list[str]:
        return self.command("worker", url, mode)

    def run(self, *args: object, timeout: float) -> Result:
        cmd = self.command(*args)
        try:
            proc = subprocess.run(
                cmd, cwd=runtimes.BENCH_DIR, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as exc:
            detail = f"timeout ({self.runtime} {args[0]} >{timeout:.0f}s)"
            raise ScenarioError("timeout", detail) from exc
        return parse(proc.stdout, proc.stderr, proc.returncode)


def parse(out: str, err: str, code: int | None) -> Result:
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if lines:
        result: Result = json.loads(lines[-1])
        return result
    tail = [ln for ln in err.splitlines() if ln.strip()]
    return {"status": "error", "detail": (tail[-1] if tail else f"exit {code}")[:300]}


def _line(stream: IO[str] | None, what: str) -> Result:
    line = stream.readline() if stream else ""
    if not line.startswith("{"):
        raise ScenarioError("error", f"{what}: no result line ({line[:100]!r})")
    result: Result = json.loads(line)
    return result


def check(adapter: ModuleType) -> Result:
    foreign: Foreign = adapter.FOREIGN
    result = foreign.run("check", timeout=60)
    if result.get("status") == "ok":
        result["settings"] = adapter.SETTINGS  # the adapter's, which says what runs where
        result["retention"] = adapter.RETENTION
        result["scenarios"] = list(adapter.SCENARIOS)
    return result


async def run(adapter: ModuleType, args: argparse.Namespace) -> Result:
    foreign: Foreign = adapter.FOREIGN
    scenario, url, n = args.scenario, args.url, args.n
    if scenario == "enqueue":
        return foreign.run("enqueue", url, n, timeout=args.timeout)
    if scenario == "enqueue_concurrent":
        count = CONCURRENT_THREADS if foreign.blocking else CONCURRENT_TASKS
        return foreign.run("concurrent", url, n, count, timeout=args.timeout)
    if scenario == "bulk":
        return foreign.run("bulk", url, n, timeout=args.timeout)
    if scenario in ("drain_noop", "drain_sleep", "drain_mix"):
        return drain(foreign, args, scenario.removeprefix("drain_"))
    if scenario == "latency":
        return latency(foreign, args)
    raise SystemExit(f"unknown scenario {scenario}")


def drain(foreign: Foreign, args: argparse.Namespace, mode: str) -> Result:
    filled = foreign.run("fill", args.url, mode, args.n, timeout=args.timeout)
    if filled.get("status") != "ok":
        return filled
    command = foreign.worker_command(mode, args.url)
    workers = Workers(args.lib, mode, args.url, args.workers, command)
    try:
        last = workers.wait_done(args.n, args.timeout)
        started = workers.started_at()
        first = workers.progress()[2]
    finally:
        workers.stop()
    elapsed = last - started
    return {
        "status": "ok",
        "value": args.n / elapsed,
        "seconds": elapsed,
        "to_first_job_s": first - started,
    }


def latency(foreign: Foreign, args: argparse.Namespace) -> Result:
    """As harness.scenario.run_latency, with the producer in the library's runtime: it adds
    5 warm-up jobs, says so, and starts its paced adds when told to."""
    workers = Workers(args.lib, "noop", args.url, 1, foreign.worker_command("noop", args.url))
    total = int(args.rate * args.duration)
    producer: subprocess.Popen[str] | None = None
    try:
        workers.wait_ready(args.timeout)
        producer = subprocess.Popen(
            foreign.command("latency", args.url, args.rate, total),
            cwd=runtimes.BENCH_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        _line(producer.stdout, "warm-up")
        workers.wait_done(5, args.timeout)
        time.sleep(1.0)  # let the worker go idle (blocking read / poll backoff)
        workers.client.delete(LAT_KEY)
        samples = LatencySamples(workers.client, total)
        assert producer.stdin is not None
        producer.stdin.write("go\n")
        producer.stdin.flush()
        paced = _line(producer.stdout, "paced adds")
        if paced.get("status") != "ok":
            return paced
        samples.wait(workers, args.timeout)
        lat = samples.sorted_ms()
    finally:
        if producer is not None:
            producer.kill()
            producer.wait()
        workers.stop()
    out: dict[str, Any] = {
        "status": "ok",
        "p50": percentile(lat, 0.50),
        "p99": percentile(lat, 0.99),
        "max": lat[-1],
        "samples": total,
        "achieved_rate": paced["achieved_rate"],
    }
    return {**out, **samples.notes()}
