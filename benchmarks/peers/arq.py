"""arq: asyncio, Redis sorted-set queue polled by workers."""

from __future__ import annotations

import asyncio
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.worker import Worker
from harness.probe import done

from peers.base import SLEEP_S, NoBulk, Payload, run_on_uvloop

DIST = "arq"
SETTINGS = (
    "arq.Worker per process on uvloop, max_jobs=200, poll_delay=0.01 s "
    "(default 0.5 s caps throughput at max_jobs per poll), handle_signals=False; no bulk API"
)


class Producer(NoBulk):
    def __init__(self, pool: ArqRedis) -> None:
        self.pool = pool

    async def enqueue(self, task: str, data: Payload) -> None:
        await self.pool.enqueue_job(task, data)

    async def close(self) -> None:
        await self.pool.aclose()


async def open_producer(url: str) -> Producer:
    return Producer(await create_pool(RedisSettings.from_dsn(url)))


async def noop(ctx: dict[str, Any], data: Payload) -> None:
    done(data["t"])


async def sleep(ctx: dict[str, Any], data: Payload) -> None:
    await asyncio.sleep(SLEEP_S)
    done(data["t"])


def run_worker(url: str, mode: str) -> None:
    async def main() -> None:
        worker = Worker(
            functions=[noop, sleep],  # type: ignore[list-item]
            redis_settings=RedisSettings.from_dsn(url),
            max_jobs=200,
            poll_delay=0.01,
            handle_signals=False,
        )
        await worker.main()

    run_on_uvloop(main())
