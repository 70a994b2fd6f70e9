"""streaQ: asyncio/anyio, Redis streams + consumer groups."""

from __future__ import annotations

import asyncio
from typing import Any

from harness.probe import done
from streaq import Worker

from peers.base import SLEEP_S, Payload

DIST = "streaq"
SETTINGS = (
    "streaq.Worker per process on uvloop, concurrency=200, default prefetch (streaq "
    "fetches up to concurrency + prefetch = 400); enqueue_many (one pipeline) chunks of 1000"
)


def make_worker(url: str, concurrency: int = 16) -> tuple[Worker[Any], Any, Any]:
    worker: Worker[Any] = Worker(redis_url=url, concurrency=concurrency, queue_name="bench")

    @worker.task(name="noop")
    async def noop(data: Payload) -> None:
        done(data["t"])

    @worker.task(name="sleep")
    async def sleep(data: Payload) -> None:
        await asyncio.sleep(SLEEP_S)
        done(data["t"])

    return worker, noop, sleep


class Producer:
    has_bulk = True
    bulk_chunk = 1000

    def __init__(self, url: str) -> None:
        self.worker, noop, sleep = make_worker(url)
        self.tasks = {"noop": noop, "sleep": sleep}

    async def enqueue(self, task: str, data: Payload) -> None:
        await self.tasks[task].enqueue(data)

    async def enqueue_bulk(self, task: str, datas: list[Payload]) -> None:
        fn = self.tasks[task]
        await self.worker.enqueue_many([fn.enqueue(d) for d in datas])

    async def close(self) -> None:
        await self.worker.__aexit__(None, None, None)


async def open_producer(url: str) -> Producer:
    producer = Producer(url)
    await producer.worker.__aenter__()
    return producer


def run_worker(url: str, mode: str) -> None:
    worker, _, _ = make_worker(url, concurrency=200)
    worker.handle_signals = False
    worker.anyio_kwargs = {"use_uvloop": True}  # as peers.base.run_on_uvloop does
    worker.run_sync()
