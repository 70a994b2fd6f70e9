#!/usr/bin/env python3
"""How long big workflows take, end to end: a 1,000-child flow and a 10,000-job batch.

    .venv/bin/python benchmarks/workflows.py [--children 1000] [--batch 10000] [--repeat 3]

Starts its own redis-server (no persistence) on a free loopback port, and for each figure
times, in one process with one in-process worker (concurrency 50, no-op handlers):

* ``flow``: ``add_flow`` of a parent with N children on the same queue, until the parent
  has completed (it reads all N results);
* ``flow_cross``: the same with the children on another queue (one more script call per
  child outcome: the parent lives on another queue, as on another Cluster node);
* ``batch``: ``add_batch`` of N jobs with ``on_complete`` and ``on_success``, until both
  callbacks have run;
* ``plain``: ``add_bulk`` of N plain jobs until they are all done, for reference.

Prints the median seconds per figure and jobs per second, as a JSON line too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from harness.redis_server import RedisServer  # noqa: E402

from conveyor import Callback, FlowJob, Job, Queue, Worker  # noqa: E402


async def _run(url: str, kind: str, n: int, round_no: int) -> float:
    prefix = f"wfbench{round_no}{kind}"
    main = Queue("main", url=url, prefix=prefix)
    side = Queue("side", url=url, prefix=prefix)
    done = asyncio.Event()
    callbacks = 0

    ran = 0

    async def leaf(job: Job) -> int:
        nonlocal ran
        ran += 1
        if kind == "plain" and ran == n:
            done.set()
        return 1

    async def gather(job: Job) -> int:
        total = sum((await job.children_results()).values())
        done.set()
        return total

    async def callback(job: Job) -> None:
        nonlocal callbacks
        callbacks += 1
        if callbacks == 2:
            done.set()

    handlers = {"leaf": leaf, "gather": gather, "callback": callback}
    worker = Worker([main, side], handlers, concurrency=50)
    task = asyncio.create_task(worker.run(install_signal_handlers=False))
    await asyncio.sleep(0.5)  # the worker is up
    started = time.perf_counter()
    if kind in ("flow", "flow_cross"):
        queue = "side" if kind == "flow_cross" else None
        children = [FlowJob("leaf", {"i": i}, queue=queue) for i in range(n)]
        await main.add_flow(FlowJob("gather", children=children))
    elif kind == "batch":
        await main.add_batch(
            [{"name": "leaf", "data": {"i": i}} for i in range(n)],
            on_complete=Callback("callback"),
            on_success=Callback("callback"),
        )
    else:
        await main.add_bulk([{"name": "leaf", "data": {"i": i}} for i in range(n)])
    await asyncio.wait_for(done.wait(), 300)
    elapsed = time.perf_counter() - started
    await worker.close()
    await task
    await main.obliterate(force=True)
    await side.obliterate(force=True)
    await main.close()
    await side.close()
    return elapsed


async def main_async(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    server = RedisServer()
    try:
        sizes = {"flow": args.children, "flow_cross": args.children, "batch": args.batch,
                 "plain": args.batch}  # fmt: skip
        times: dict[str, list[float]] = {kind: [] for kind in sizes}
        for round_no in range(args.repeat):
            for kind, n in sizes.items():  # interleaved: the VM's speed drifts
                times[kind].append(await _run(server.url, kind, n, round_no))
        out = {}
        for kind, values in times.items():
            median = statistics.median(values)
            out[kind] = {"jobs": sizes[kind], "seconds": round(median, 3),
                         "jobs_per_s": round(sizes[kind] / median)}  # fmt: skip
        return out
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--children", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    out = asyncio.run(main_async(args))
    for kind, row in out.items():
        print(f"{kind:>11}: {row['jobs']:>6} jobs in {row['seconds']:.3f} s "
              f"({row['jobs_per_s']} jobs/s)")  # fmt: skip
    print(json.dumps(out))


if __name__ == "__main__":
    main()
