"""taskiq + taskiq-redis: asyncio, RedisStreamBroker (acknowledged, like Conveyor)."""

from __future__ import annotations

import asyncio
from typing import Any

from harness.probe import done
from taskiq.api import run_receiver_task
from taskiq_redis import RedisStreamBroker

from peers.base import SLEEP_S, NoBulk, Payload, run_on_uvloop

DIST = "taskiq"
SETTINGS = (
    "RedisStreamBroker (acks; ListQueueBroker has none), receiver per process via "
    "taskiq.api.run_receiver_task on uvloop, max_async_tasks=200, "
    "max_prefetch=max_async_tasks, xread_count=100; no bulk API"
)


def make_broker(url: str) -> tuple[RedisStreamBroker, dict[str, Any]]:
    broker = RedisStreamBroker(url, queue_name="bench")

    @broker.task(task_name="noop")
    async def noop(data: Payload) -> None:
        done(data["t"])

    @broker.task(task_name="sleep")
    async def sleep(data: Payload) -> None:
        await asyncio.sleep(SLEEP_S)
        done(data["t"])

    return broker, {"noop": noop, "sleep": sleep}


class Producer(NoBulk):
    def __init__(self, url: str) -> None:
        self.broker, self.tasks = make_broker(url)

    async def enqueue(self, task: str, data: Payload) -> None:
        await self.tasks[task].kiq(data)

    async def close(self) -> None:
        await self.broker.shutdown()


async def open_producer(url: str) -> Producer:
    producer = Producer(url)
    await producer.broker.startup()  # creates the consumer group before jobs are added
    return producer


def run_worker(url: str, mode: str) -> None:
    async def main() -> None:
        broker, _ = make_broker(url)
        broker.is_worker_process = True
        await broker.startup()
        await run_receiver_task(broker, max_async_tasks=200, max_prefetch=200)

    run_on_uvloop(main())
