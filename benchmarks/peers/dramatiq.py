"""Dramatiq with the Redis broker: thread-based workers with prefetch."""

from __future__ import annotations

import threading
import time
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from harness.probe import done

from peers.base import SLEEP_S, NoBulk, Payload

DIST = "dramatiq"
#: its producer blocks: concurrent producers are threads (harness/scenario.py)
BLOCKING_PRODUCER = True
SETTINGS = (
    "dramatiq.Worker per process (what `dramatiq -p 1` runs), worker_threads=8 (no-op) / "
    "100 (sleep), default prefetch (2 x threads), default middleware; no bulk API"
)


def make_broker(url: str) -> tuple[RedisBroker, dict[str, Any]]:
    broker = RedisBroker(url=url)
    dramatiq.set_broker(broker)

    @dramatiq.actor(actor_name="noop", queue_name="bench", max_retries=0)
    def noop(data: Payload) -> None:
        done(data["t"])

    @dramatiq.actor(actor_name="sleep", queue_name="bench", max_retries=0)
    def sleep(data: Payload) -> None:
        time.sleep(SLEEP_S)
        done(data["t"])

    return broker, {"noop": noop, "sleep": sleep}


class Producer(NoBulk):
    def __init__(self, url: str) -> None:
        self.broker, self.actors = make_broker(url)

    async def enqueue(self, task: str, data: Payload) -> None:
        self.actors[task].send(data)

    async def close(self) -> None:
        self.broker.close()


async def open_producer(url: str) -> Producer:
    return Producer(url)


def run_worker(url: str, mode: str) -> None:
    broker, _ = make_broker(url)
    worker = dramatiq.Worker(broker, worker_threads=8 if mode == "noop" else 100)
    worker.start()
    threading.Event().wait()
