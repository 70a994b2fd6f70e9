"""Celery with the Redis broker (kombu), results disabled."""

from __future__ import annotations

import time
from typing import Any

from celery import Celery
from harness.probe import done

from peers.base import SLEEP_S, NoBulk, Payload

DIST = "celery"
#: its producer blocks: concurrent producers are threads (harness/scenario.py)
BLOCKING_PRODUCER = True
SETTINGS = (
    "1 `celery worker` per process, --pool=threads (prefork children would exceed the "
    "2-process cap), -c 8 & prefetch_multiplier=64 (no-op) / -c 100 & multiplier 4 (sleep), "
    "task_ignore_result, --without-gossip/mingle/heartbeat; no bulk API (group = N sends)"
)


def make_app(url: str) -> tuple[Celery, dict[str, Any]]:
    app = Celery("bench", broker=url)
    app.conf.update(
        task_ignore_result=True,
        task_default_queue="bench",
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )

    @app.task(name="noop")
    def noop(data: Payload) -> None:
        done(data["t"])

    @app.task(name="sleep")
    def sleep(data: Payload) -> None:
        time.sleep(SLEEP_S)
        done(data["t"])

    return app, {"noop": noop, "sleep": sleep}


class Producer(NoBulk):
    def __init__(self, url: str) -> None:
        self.app, self.tasks = make_app(url)

    async def enqueue(self, task: str, data: Payload) -> None:
        self.tasks[task].apply_async((data,))

    async def close(self) -> None:
        self.app.close()


async def open_producer(url: str) -> Producer:
    return Producer(url)


def run_worker(url: str, mode: str) -> None:
    app, _ = make_app(url)
    concurrency, multiplier = (8, 64) if mode == "noop" else (100, 4)
    app.conf.worker_prefetch_multiplier = multiplier
    app.worker_main(
        [
            "worker",
            "--pool=threads",
            f"--concurrency={concurrency}",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-Q",
            "bench",
        ]
    )
