"""The worker's slots: how many jobs may run at once, and the threads sync handlers run in.

A slot is busy from the moment a job starts until its handler has returned, and for a sync
handler until its thread has returned too (Python cannot stop a thread: a handler that timed
out or was cancelled keeps its slot until it ends). The acknowledgement comes after, so the
next fetch overlaps with it. ``busy`` is the one count the fetch loop and the heartbeat use.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["Slots"]

log = logging.getLogger("conveyor.worker")


class Slots:
    def __init__(self, size: int) -> None:
        self.size = size
        self._busy = 0
        #: Set whenever a slot frees.
        self.freed = asyncio.Event()
        # One thread per slot: a sync handler's slot stays taken until its thread returns.
        self.executor = ThreadPoolExecutor(size, thread_name_prefix="conveyor-job")

    @property
    def busy(self) -> int:
        return self._busy

    @property
    def free(self) -> int:
        return self.size - self._busy

    def take(self, count: int = 1) -> None:
        self._busy += count

    def release(self) -> None:
        self._busy -= 1
        self.freed.set()

    def release_after(self, threads: Sequence[concurrent.futures.Future[Any]], job_id: str) -> None:
        """Free the slot of a job whose attempt ended, once its handler's thread (if it ran in
        one) has returned too."""
        pending = [t for t in threads if not t.done()]
        if not pending:
            self.release()
            return
        log.warning(
            "job %s: its sync handler is still running after the attempt ended; its slot is "
            "taken until the thread returns",
            job_id,
        )
        loop = asyncio.get_running_loop()
        pending[0].add_done_callback(lambda _: loop.call_soon_threadsafe(self.release))

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
