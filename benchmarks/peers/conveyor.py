"""Conveyor (this project), run from the project's own environment."""

from __future__ import annotations

import asyncio
from typing import Any

from harness.probe import done

from conveyor import Queue, Worker
from peers.base import SLEEP_S, Payload

DIST = "conveyor-queue"
SETTINGS = (
    "1 Worker per process, concurrency=200, uvloop, start-up heap frozen as `conveyor worker` "
    "does; "
    "add_bulk with 1000 jobs per call (sent as 10 pipelined script calls of 100)"
)
QUEUE = "bench"


class Producer:
    has_bulk = True
    bulk_chunk = 1000

    def __init__(self, url: str) -> None:
        self.q = Queue(QUEUE, url=url)

    async def enqueue(self, task: str, data: Payload) -> None:
        await self.q.add(task, data)

    async def enqueue_bulk(self, task: str, datas: list[Payload]) -> None:
        await self.q.add_bulk([{"name": task, "data": d} for d in datas])

    async def close(self) -> None:
        await self.q.close()


async def open_producer(url: str) -> Producer:
    return Producer(url)


async def noop(job: Any) -> None:
    done(job.data["t"])


async def sleep(job: Any) -> None:
    await asyncio.sleep(SLEEP_S)
    done(job.data["t"])


async def _work(url: str, mode: str) -> None:
    q = Queue(QUEUE, url=url)
    worker = Worker(q, {"noop": noop, "sleep": sleep}, concurrency=200)
    await worker.run()


def run_worker(url: str, mode: str) -> None:
    # As `conveyor worker` runs: on uvloop when installed (a dependency on Linux), with the
    # start-up heap out of the garbage collector's sight.
    from conveyor.eventloop import run

    run(_work(url, mode), freeze_heap=True)
