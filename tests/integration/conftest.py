from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from conveyor import Queue


@pytest.fixture
async def make_queue(redis_url: str, key_prefix: str) -> AsyncIterator[Callable[..., Queue]]:
    """``make_queue(name="q", **settings)``: queues under this test's key prefix, closed after."""
    queues: list[Queue] = []

    def make(name: str = "q", **overrides: Any) -> Queue:
        overrides.setdefault("prefix", key_prefix)
        queue = Queue(name, url=redis_url, **overrides)
        queues.append(queue)
        return queue

    yield make
    for queue in queues:
        await queue.close()


@pytest.fixture
async def queue(make_queue: Callable[..., Queue]) -> Queue:
    return make_queue()
