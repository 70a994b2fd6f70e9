"""Helpers for tests that run Conveyor workers in-process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from conveyor import Queue, Worker


@contextlib.asynccontextmanager
async def running(worker: Worker, *, stop_timeout: float = 15.0) -> AsyncIterator[Worker]:
    """Run ``worker`` as a task for the duration of the block, then close it and wait."""
    task = asyncio.create_task(worker.run(install_signal_handlers=False))
    try:
        yield worker
    finally:
        await worker.close()
        await asyncio.wait_for(task, stop_timeout)


def worker(queue: Queue | Sequence[Queue], handlers: Mapping[str, Any], **options: Any) -> Worker:
    """A worker that accepts the test server's Redis (persistence is off there by design)."""
    options.setdefault("concurrency", 5)
    return Worker(queue, handlers, **options)
