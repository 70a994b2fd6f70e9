"""bullmq (Python port of BullMQ): asyncio, Lua scripts on lists/sorted sets."""

from __future__ import annotations

import asyncio
from typing import Any

from bullmq import Queue, Worker
from harness.probe import done

from peers.base import SLEEP_S, Payload, run_on_uvloop

DIST = "bullmq"
SETTINGS = (
    "bullmq.Worker per process on uvloop, concurrency=200, removeOnComplete "
    "left at default; Queue.addBulk chunks of 1000"
)


class Producer:
    has_bulk = True
    bulk_chunk = 1000

    def __init__(self, url: str) -> None:
        self.queue = Queue("bench", {"connection": url})

    async def enqueue(self, task: str, data: Payload) -> None:
        await self.queue.add(task, data)

    async def enqueue_bulk(self, task: str, datas: list[Payload]) -> None:
        await self.queue.addBulk([{"name": task, "data": d} for d in datas])

    async def close(self) -> None:
        await self.queue.close()


async def open_producer(url: str) -> Producer:
    return Producer(url)


async def process(job: Any, token: str) -> None:
    if job.name == "sleep":
        await asyncio.sleep(SLEEP_S)
    done(job.data["t"])


def run_worker(url: str, mode: str) -> None:
    async def main() -> None:
        worker = Worker("bench", process, {"connection": url, "concurrency": 200})
        await asyncio.Event().wait()  # the worker runs in the background until killed
        await worker.close()

    run_on_uvloop(main())
