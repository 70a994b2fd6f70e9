from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from tests.support.postgres import outbox, pg_dsn  # noqa: F401 (the outbox tests' fixtures)

from conveyor import Queue
from conveyor.web import create_app


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


@pytest.fixture
async def client(redis_url: str, key_prefix: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the JSON API (no auth) over this test's key prefix, in process."""
    app = create_app(url=redis_url, prefix=key_prefix)
    transport = httpx.ASGITransport(app=app)
    # A script's bodiless action must say it is not an HTML form (see web/security.py).
    headers = {"x-conveyor-request": "1"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1", headers=headers
    ) as c:
        yield c
    await app.state.admin.close()
