"""Conveyor (this project), run from the project's own environment."""

from __future__ import annotations

import asyncio
import gc
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
    "drain_mix",
)
#: (f): every job may run twice, the retry at once (as the peers' attempts=2, no backoff)
MIX_RETRY = {"attempts": 2, "backoff": Backoff.fixed(0)}


class Producer:
    has_bulk = True
    bulk_chunk = 1000

    def __init__(self, url: str) -> None:
        self.q = Queue(QUEUE, url=url)

    async def enqueue(self, task: str, data: Payload) -> None:
        await self.q.add(task, data)

    async def enqueue_bulk(self, task: str, datas: list[Payload]) -> None:
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
    return Producer(url)


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
