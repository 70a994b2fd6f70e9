"""RQ: synchronous; one job at a time per worker process."""

from __future__ import annotations

import time

from harness.probe import done
from redis import Redis
from rq import Queue, SimpleWorker

from peers.base import SLEEP_S, Payload

DIST = "rq"
#: its producer blocks: concurrent producers are threads (harness/scenario.py)
BLOCKING_PRODUCER = True
SETTINGS = (
    "rq.SimpleWorker per process (no fork per job: RQ's documented fast path), "
    "1 job at a time per process; Queue.enqueue_many (one pipeline) chunks of 1000"
)


def noop(data: Payload) -> None:
    done(data["t"])


def sleep(data: Payload) -> None:
    time.sleep(SLEEP_S)
    done(data["t"])


FUNCS = {"noop": noop, "sleep": sleep}


class Producer:
    has_bulk = True
    bulk_chunk = 1000

    def __init__(self, url: str) -> None:
        self.redis = Redis.from_url(url)
        self.queue = Queue("bench", connection=self.redis)

    async def enqueue(self, task: str, data: Payload) -> None:
        self.queue.enqueue(FUNCS[task], data)

    async def enqueue_bulk(self, task: str, datas: list[Payload]) -> None:
        fn = FUNCS[task]
        self.queue.enqueue_many([Queue.prepare_data(fn, (d,)) for d in datas])

    async def close(self) -> None:
        self.redis.close()


async def open_producer(url: str) -> Producer:
    return Producer(url)


def run_worker(url: str, mode: str) -> None:
    redis = Redis.from_url(url)
    worker = SimpleWorker([Queue("bench", connection=redis)], connection=redis)
    worker.work(logging_level="WARNING")
