"""Physical-limit baseline: bare redis-py asyncio LPUSH, one awaited call at a time."""

from __future__ import annotations

import json

import redis.asyncio as aioredis

from peers.base import NoBulk, Payload

DIST = "redis"
SETTINGS = "redis.asyncio.Redis.lpush(key, json.dumps(payload)); producer scenarios only"
SCENARIOS = ("enqueue", "enqueue_concurrent")


class Producer(NoBulk):
    def __init__(self, url: str) -> None:
        self.r = aioredis.Redis.from_url(url)

    async def enqueue(self, task: str, data: Payload) -> None:
        await self.r.lpush("bench:lpush", json.dumps({"task": task, "data": data}))

    async def close(self) -> None:
        await self.r.aclose()


async def open_producer(url: str) -> Producer:
    return Producer(url)


def run_worker(url: str, mode: str) -> None:
    raise NotImplementedError("baseline has no worker")
