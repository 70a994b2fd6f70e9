"""Conveyor (this project), run from the project's own environment."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Coroutine
from typing import Any

from harness import mix
from harness.probe import done

import conveyor
from conveyor import Backoff, Queue, Worker
from peers.base import SLEEP_S, Payload, run_on_uvloop

DIST = "conveyor-queue"
#: the code this process runs: this tree's src/, or an earlier commit's for a base row
ORIGIN = conveyor.__file__
VERSION = getattr(conveyor, "__version__", "?")
SETTINGS = (
    "1 Worker per process, concurrency=200, uvloop, start-up heap frozen as `conveyor worker` "
    "does; "
    "add_bulk with 1000 jobs per call (sent as 10 pipelined script calls of 100)"
)
QUEUE = "bench"
#: shown under the table: what it keeps in Redis after a job, and whether it acknowledges
RETENTION = (
    "keeps the newest 1,000 completed jobs (24 h) and 10,000 failed (7 days); acknowledges: "
    "a fetched job is leased, and goes back to wait when the lease runs out"
)
SCENARIOS = (
    "enqueue",
    "enqueue_concurrent",
    "bulk",
    "drain_noop",
    "drain_sleep",
    "latency",
    "drain_limited",
    "drain_groups",
    "drain_mix",
)
#: drain_groups spreads its jobs over this many groups; CONVEYOR_BENCH_GROUPS sets another
#: number (10000 with --jobs 10000: ten thousand groups of one job each, docs/flow-control.md).
GROUPS = int(os.environ.get("CONVEYOR_BENCH_GROUPS", "1000"))
#: (f): every job may run twice, the retry at once (as the peers' attempts=2, no backoff)
MIX_RETRY = {"attempts": 2, "backoff": Backoff.fixed(0)}


class Producer:
    has_bulk = True
    bulk_chunk = 1000

    def __init__(self, url: str) -> None:
        self.q = Queue(QUEUE, url=url)
        self.groups = 0
        self.added = 0

    async def use_flow_control(self, scenario: str) -> bool:
        """drain_limited: a queue rate limit 1000 times what the workers can do;
        drain_groups: the jobs spread round robin over GROUPS groups. False where this
        version of Conveyor (a base row's) has no flow control."""
        if not hasattr(self.q, "set_rate_limit"):
            return False
        if scenario == "drain_limited":
            from conveyor import RateLimit

            await self.q.set_rate_limit(RateLimit(100_000_000, per=1))
        else:
            self.groups = GROUPS
        return True

    async def enqueue(self, task: str, data: Payload) -> None:
        await self.q.add(task, data)

    async def enqueue_bulk(self, task: str, datas: list[Payload]) -> None:
        if self.groups:
            start, self.added = self.added, self.added + len(datas)
            await self.q.add_bulk(
                [
                    {"name": task, "data": d, "group": f"g{(start + i) % self.groups}"}
                    for i, d in enumerate(datas)
                ]
            )
            return
        await self.q.add_bulk([{"name": task, "data": d} for d in datas])

    async def enqueue_mix(self, datas: list[Payload]) -> None:
        """Scenario (f): each job with its options (harness/mix.py); higher priority first."""
        items = []
        for data in datas:
            spec = mix.spec(data["i"])
            item = {"name": "mix", "data": data, "priority": spec.priority, **MIX_RETRY}
            if spec.delay_s:
                item["delay"] = spec.delay_s
            items.append(item)
        await self.q.add_bulk(items)

    async def close(self) -> None:
        await self.q.close()


async def open_producer(url: str) -> Producer:
    producer = Producer(url)
    # Job schedulers: CONVEYOR_BENCH_SCHEDULES=1000 defines that many (daily at 03:00, so none
    # fires during a run) before the scenario, to show what defined schedules cost a drain.
    # A tree without schedules (a --base row) runs without them.
    count = int(os.environ.get("CONVEYOR_BENCH_SCHEDULES", "0"))
    if count and hasattr(producer.q, "schedule"):
        await asyncio.gather(
            *(producer.q.schedule(f"bench-{i}", "noop", cron="0 3 * * *") for i in range(count))
        )
    return producer


async def noop(job: Any) -> None:
    done(job.data["t"])


async def sleep(job: Any) -> None:
    await asyncio.sleep(SLEEP_S)
    done(job.data["t"])


async def mix_job(job: Any) -> dict[str, int]:
    """Scenario (f): fails on its first attempt when marked; its result is stored."""
    if job.data.get("fail") and job.attempt == 1:
        raise mix.FailOnce("fails once")
    done(job.data["t"], job.data["i"])
    return {"i": job.data["i"]}


async def _work(url: str, mode: str) -> None:
    q = Queue(QUEUE, url=url)
    worker = Worker(q, {"noop": noop, "sleep": sleep, "mix": mix_job}, concurrency=200)
    await worker.run()


def run_worker(url: str, mode: str) -> None:
    # As `conveyor worker` runs: on uvloop when installed (a dependency on Linux), with the
    # start-up heap out of the garbage collector's sight.
    run_frozen(_work(url, mode))


def run_frozen(main: Coroutine[Any, Any, None]) -> None:
    """conveyor.eventloop.run(main, freeze_heap=True), or the same steps where a tree has no
    such module (the adapter runs against earlier and later commits alike)."""
    try:
        from conveyor.eventloop import run
    except ImportError:
        gc.freeze()
        run_on_uvloop(main)
    else:
        run(main, freeze_heap=True)
