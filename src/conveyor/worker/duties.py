"""Periodic duties: a list of (duty, interval) run by one scheduler loop, so a new periodic
task (a schedule tick, a rate-limiter refresh) is one more entry."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence

from ..errors import CommandRefused, ConnectionError

__all__ = ["Duty", "run_duties"]

log = logging.getLogger("conveyor.worker")


@dataclasses.dataclass(frozen=True, slots=True)
class Duty:
    name: str
    run: Callable[[], Awaitable[None]]
    #: Seconds from the end of one run to the start of the next, give or take 10% (so that
    #: the workers started together do not all call at once).
    interval: float


async def run_duties(duties: Sequence[Duty], finished: asyncio.Event) -> None:
    """Run every duty at once, then each on its interval, until ``finished``. A duty that
    cannot reach Redis is tried again on its next turn."""
    due = [0.0] * len(duties)
    while not finished.is_set():
        for index, duty in enumerate(duties):
            if due[index] > time.monotonic():
                continue
            try:
                await duty.run()
            except (ConnectionError, CommandRefused) as exc:
                log.warning("%s failed (%s); will retry", duty.name, exc)
            due[index] = time.monotonic() + duty.interval * (0.9 + random.random() * 0.2)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(finished.wait(), max(min(due) - time.monotonic(), 0.0))
