"""saq: asyncio, Redis lists with BLMOVE dequeue."""

from __future__ import annotations

import asyncio
from typing import Any

from harness.probe import PROBE, done
from saq import Queue, Worker

from peers.base import SLEEP_S, NoBulk, Payload

DIST = "saq"
SETTINGS = "saq.Worker per process, concurrency=50 (no-op) / 200 (sleep); no bulk API"


class Producer(NoBulk):
    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    async def enqueue(self, task: str, data: Payload) -> None:
        await self.queue.enqueue(task, **data)

    async def close(self) -> None:
        await self.queue.disconnect()


async def open_producer(url: str) -> Producer:
    queue = Queue.from_url(url, name="bench")
    await queue.connect()
    return Producer(queue)


async def noop(ctx: dict[str, Any], *, i: int, t: float) -> None:
    done(t)


async def sleep(ctx: dict[str, Any], *, i: int, t: float) -> None:
    await asyncio.sleep(SLEEP_S)
    done(t)


def run_worker(url: str, mode: str) -> None:
    async def main() -> None:
        queue = Queue.from_url(url, name="bench")
        worker = Worker(queue, functions=[noop, sleep], concurrency=50 if mode == "noop" else 200)
        PROBE.start_reporter(url)
        await worker.start()

    asyncio.run(main())
