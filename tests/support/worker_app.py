"""A worker process for fault tests, configured by environment variables.

``record`` jobs note each start and each finish in Redis lists of the test's own (outside the
queue's keys), so a test can count exactly how often each job ran and on which worker. A job's
``sleep`` applies to its first start only, so a redelivered job finishes quickly.
"""

from __future__ import annotations

import asyncio
import logging
import os

import redis.asyncio as aioredis

from conveyor import Job, Queue, Worker

URL = os.environ["CT_URL"]
PREFIX = os.environ["CT_PREFIX"]
NAME = os.environ.get("CT_WORKER", "worker")

queue = Queue(
    "jobs",
    url=URL,
    prefix=PREFIX,
    lease_seconds=float(os.environ.get("CT_LEASE", "30")),
    max_stalls=int(os.environ.get("CT_MAX_STALLS", "2")),
    shutdown_grace_seconds=float(os.environ.get("CT_GRACE", "30")),
)
recorder = aioredis.Redis.from_url(URL, decode_responses=True)


@queue.handler("record")
async def record(job: Job) -> dict[str, str]:
    starts = await recorder.incr(f"{PREFIX}:starts:{job.id}")
    await recorder.rpush(f"{PREFIX}:started", f"{job.id}:{NAME}")
    sleep = (job.data or {}).get("sleep", 0)
    if sleep and starts == 1:
        await asyncio.sleep(sleep)
    await recorder.rpush(f"{PREFIX}:ran", f"{job.id}:{NAME}")
    return {"worker": NAME}


def main() -> None:
    logging.basicConfig(level=logging.INFO, format=f"{NAME} %(levelname)s %(message)s")
    worker = Worker(queue, concurrency=int(os.environ.get("CT_CONCURRENCY", "10")))
    asyncio.run(worker.run())
