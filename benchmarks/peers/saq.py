"""saq: asyncio, Redis lists with BLMOVE dequeue.

Jobs pass their payload index to the probe (``done(t, i)``) because SAQ can run a job twice.
Its sweep (run as a worker starts, then every 60 s) snapshots the active list and treats any
job whose stored status is not ACTIVE as stale, including one a worker has just moved there
with BLMOVE but not yet marked active. The job still runs and completes, but the sweep,
handling its snapshot one job at a time, writes its stale copy (ABORTING, attempts 0) over the
stored job, waits 5 s for a finish message that already went out, and then retries it
(attempts 0 < retries 1): the job runs again 5, 10, 15 ... s later (tobymao/saq#124, #277).
Not a settings problem: job timeout and heartbeat play no part. The latency scenario counts
each job once, by index, and reports the extra runs.
"""

from __future__ import annotations

import asyncio
from typing import Any

from harness.probe import done
from saq import Queue, Worker

from peers.base import SLEEP_S, NoBulk, Payload, run_on_uvloop

DIST = "saq"
SETTINGS = (
    "saq.Worker per process on uvloop, concurrency=50 (no-op: faster than 200) / 200 (sleep); "
    "no bulk API"
)


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
    done(t, i)


async def sleep(ctx: dict[str, Any], *, i: int, t: float) -> None:
    await asyncio.sleep(SLEEP_S)
    done(t, i)


def run_worker(url: str, mode: str) -> None:
    async def main() -> None:
        queue = Queue.from_url(url, name="bench")
        worker = Worker(queue, functions=[noop, sleep], concurrency=50 if mode == "noop" else 200)
        await worker.start()

    run_on_uvloop(main())
