"""Conveyor's blocking producer, ``SyncQueue.add``, one call at a time: the producer scenarios only.

Like the sync peers (huey, rq, celery, dramatiq), ``enqueue`` makes a blocking call inside
the harness's coroutine: it never yields to the event loop, so the producer pays no asyncio
cost. Run from the project's own environment, like ``conveyor``.
"""

from __future__ import annotations

from conveyor import SyncQueue
from peers.base import NoBulk, Payload
from peers.conveyor import ORIGIN as ORIGIN  # the same proof of which tree it imported
from peers.conveyor import VERSION as VERSION

DIST = "conveyor-queue"
#: its producer blocks: concurrent producers are threads (harness/scenario.py)
BLOCKING_PRODUCER = True
SETTINGS = "conveyor.SyncQueue(QUEUE, url=url).add(task, data), blocking; producer scenarios only"
SCENARIOS = ("enqueue", "enqueue_concurrent")
QUEUE = "bench"


class Producer(NoBulk):
    def __init__(self, url: str) -> None:
        self.q = SyncQueue(QUEUE, url=url)

    async def enqueue(self, task: str, data: Payload) -> None:
        self.q.add(task, data)

    async def close(self) -> None:
        self.q.close()


async def open_producer(url: str) -> Producer:
    return Producer(url)


def run_worker(url: str, mode: str) -> None:
    raise NotImplementedError("producer-only row: Conveyor's worker is measured as `conveyor`")
