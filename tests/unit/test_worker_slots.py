"""Slots: one count of busy slots; a sync handler's thread keeps its slot until it returns."""

from __future__ import annotations

import asyncio
import threading

from conveyor.worker.slots import Slots


async def test_a_slot_is_busy_from_take_to_release() -> None:
    slots = Slots(2)
    try:
        slots.take()
        slots.take()
        assert (slots.busy, slots.free) == (2, 0)
        slots.freed.clear()
        slots.release_after([], "job-1")
        assert (slots.busy, slots.free) == (1, 1)
        assert slots.freed.is_set()
    finally:
        slots.shutdown()


async def test_a_thread_still_running_keeps_its_slot_until_it_returns() -> None:
    slots = Slots(1)
    go = threading.Event()
    try:
        slots.take()
        thread = slots.executor.submit(go.wait, 5)
        slots.release_after([thread], "job-1")
        await asyncio.sleep(0.05)
        assert slots.busy == 1 and not slots.freed.is_set()
        go.set()
        await asyncio.wait_for(slots.freed.wait(), 5)
        assert slots.busy == 0
    finally:
        slots.shutdown()
