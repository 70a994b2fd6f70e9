"""Running Conveyor's coroutines: on uvloop when it is installed (a faster event loop, worth
about 15% of a worker's per-job overhead), else on asyncio's own loop."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run"]

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], *, freeze_heap: bool = False) -> T:
    """Run ``coro`` to the end on a new loop.

    ``freeze_heap`` is for a process that lives to run this one coroutine (``conveyor
    worker``): what it holds so far (modules, the app and its handlers) is moved out of the
    garbage collector's sight (``gc.freeze``), so a full collection walks only what the process
    made since. A worker's stream of short-lived objects sets one off every few seconds under
    load, and each walked the whole heap: 30-57 ms on the benchmark machine, in which no job
    of that process moved. Objects frozen are never collected, so this is only for start-up.
    """
    if freeze_heap:
        gc.freeze()
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)
