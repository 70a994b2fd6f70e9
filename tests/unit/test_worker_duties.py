"""Periodic duties: each runs at once, then on its own interval; an outage skips a turn."""

from __future__ import annotations

import asyncio

from conveyor.errors import ConnectionError
from conveyor.worker.duties import Duty, run_duties


async def test_each_duty_runs_at_once_and_then_on_its_own_interval() -> None:
    runs = {"fast": 0, "slow": 0}

    def counting(name: str) -> Duty:
        async def run() -> None:
            runs[name] += 1

        return Duty(name, run, 0.02 if name == "fast" else 10.0)

    finished = asyncio.Event()
    loop = asyncio.create_task(run_duties([counting("fast"), counting("slow")], finished))
    await asyncio.sleep(0.25)
    finished.set()
    await asyncio.wait_for(loop, 1)
    assert runs["slow"] == 1
    assert 5 <= runs["fast"] <= 14


async def test_a_duty_that_cannot_reach_redis_is_tried_again() -> None:
    attempts = 0

    async def flaky() -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("connection refused")

    finished = asyncio.Event()
    loop = asyncio.create_task(run_duties([Duty("flaky", flaky, 0.01)], finished))
    await asyncio.sleep(0.1)
    finished.set()
    await asyncio.wait_for(loop, 1)
    assert attempts >= 3


async def test_finishing_ends_the_wait_for_the_next_turn_at_once() -> None:
    async def nothing() -> None:
        return None

    finished = asyncio.Event()
    loop = asyncio.create_task(run_duties([Duty("rare", nothing, 3600.0)], finished))
    await asyncio.sleep(0.01)
    finished.set()
    await asyncio.wait_for(loop, 0.5)
