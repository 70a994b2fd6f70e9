"""Physical limit for blocking clients: bare sync redis-py LPUSH, one call at a time.

``enqueue`` makes the blocking call inside the harness's coroutine without yielding, as the
sync peers' adapters do. Scenario (a) only.
"""

from __future__ import annotations

import json

import redis

from peers.base import NoBulk, Payload

DIST = "redis"
#: its producer blocks: concurrent producers are threads (harness/scenario.py)
BLOCKING_PRODUCER = True
SETTINGS = "redis.Redis.lpush(key, json.dumps(payload)), blocking; producer scenarios only"
SCENARIOS = ("enqueue", "enqueue_concurrent")


class Producer(NoBulk):
    def __init__(self, url: str) -> None:
        self.r = redis.Redis.from_url(url)

    async def enqueue(self, task: str, data: Payload) -> None:
        self.r.lpush("bench:lpush", json.dumps({"task": task, "data": data}))

    async def close(self) -> None:
        self.r.close()


async def open_producer(url: str) -> Producer:
    return Producer(url)


def run_worker(url: str, mode: str) -> None:
    raise NotImplementedError("baseline has no worker")
