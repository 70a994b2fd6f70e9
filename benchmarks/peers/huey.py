"""Huey with RedisHuey (blocking BRPOP dequeue), thread workers."""

from __future__ import annotations

import time
from typing import Any

from harness.probe import done
from huey import RedisHuey

from peers.base import SLEEP_S, NoBulk, Payload

DIST = "huey"
#: its producer blocks: concurrent producers are threads (harness/scenario.py)
BLOCKING_PRODUCER = True
SETTINGS = (
    "RedisHuey(blocking=True), 1 consumer per process, worker_type=thread, workers=8 "
    "(no-op) / 100 (sleep), periodic=False, check_worker_health=False, results off; "
    "no bulk API"
)


def make_huey(url: str) -> tuple[RedisHuey, dict[str, Any]]:
    huey = RedisHuey("bench", url=url, results=False, blocking=True)

    @huey.task(name="noop")
    def noop(data: Payload) -> None:
        done(data["t"])

    @huey.task(name="sleep")
    def sleep(data: Payload) -> None:
        time.sleep(SLEEP_S)
        done(data["t"])

    return huey, {"noop": noop, "sleep": sleep}


class Producer(NoBulk):
    def __init__(self, url: str) -> None:
        self.huey, self.tasks = make_huey(url)

    async def enqueue(self, task: str, data: Payload) -> None:
        self.tasks[task](data)

    async def close(self) -> None:
        self.huey.storage.conn.close()


async def open_producer(url: str) -> Producer:
    return Producer(url)


def run_worker(url: str, mode: str) -> None:
    huey, _ = make_huey(url)
    consumer = huey.create_consumer(
        workers=8 if mode == "noop" else 100,
        worker_type="thread",
        periodic=False,
        check_worker_health=False,
    )
    consumer.run()
