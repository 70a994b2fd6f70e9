"""Process isolation: results, progress/logs, timeouts that kill, and crashes that fail one job.

The handlers live at module level: the pool's children import them by name.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from tests.support.conveyor_helpers import running, worker

from conveyor import Job, JobFailed, Queue
from conveyor.isolation import isolated

pytestmark = pytest.mark.timeout(90)


@isolated(processes=2)
def square_in_child(job: Job) -> dict[str, int]:
    return {"square": job.data["n"] ** 2, "pid": os.getpid()}


@isolated(processes=1)
async def reports_in_child(job: Job) -> str:
    await job.log("step one")
    await job.update_progress(50)
    await job.log("step two")
    await job.update_progress(100)
    return "reported"


@isolated(processes=1)
def hangs(job: Job) -> None:
    time.sleep(3600)  # a sync handler no thread could ever stop


@isolated(processes=1, timeout=1.0)
def hangs_with_own_timeout(job: Job) -> None:
    time.sleep(3600)


@isolated(processes=1)
def exits_hard(job: Job) -> None:
    os._exit(3)


@isolated(processes=1)
def segfaults(job: Job) -> None:
    ctypes.string_at(0)  # reads address 0: SIGSEGV


@isolated(processes=1, memory_limit_mb=300)
def eats_memory(job: Job) -> int:
    hog = bytearray(1024 * 1024 * 1024)  # 1 GiB, over the 300 MB limit
    return len(hog)


@isolated(processes=1)
def fine(job: Job) -> str:
    return f"ok {job.data}"


@isolated(processes=1)
def raises_value_error(job: Job) -> None:
    raise ValueError("bad input in the child")


async def _fail_reason(job: Any) -> str:
    with pytest.raises(JobFailed) as info:
        await job.wait(timeout=30)
    return info.value.reason


async def test_an_isolated_handler_runs_in_another_process(queue: Queue) -> None:
    async with running(worker(queue, {"square": square_in_child})):
        job = await queue.add("square", {"n": 7})
        result = await job.wait(timeout=30)
    assert result["square"] == 49
    assert result["pid"] != os.getpid()


async def test_progress_and_log_lines_from_the_child_reach_the_job(queue: Queue) -> None:
    async with running(worker(queue, {"report": reports_in_child})):
        job = await queue.add("report")
        assert await job.wait(timeout=30) == "reported"
    stored = await queue.get_job(job.id)
    assert stored is not None and stored.progress == 100
    assert await queue.job_logs(job.id) == ["step one", "step two"]


async def test_an_exception_in_the_child_fails_the_attempt_with_its_message(
    queue: Queue,
) -> None:
    async with running(worker(queue, {"bad": raises_value_error})):
        job = await queue.add("bad", attempts=1)
        reason = await _fail_reason(job)
    assert "ValueError: bad input in the child" in reason
    [attempt] = await queue.job_attempts(job.id)
    assert "raise ValueError" in attempt["traceback"]  # the child's traceback is kept


@pytest.mark.parametrize(
    ("handler", "timeout"), [(hangs, 1.0), (hangs_with_own_timeout, None)], ids=["job", "own"]
)
async def test_a_timeout_kills_the_child_and_fails_the_attempt(
    queue: Queue, handler: Callable[..., Any], timeout: float | None
) -> None:
    pool = handler.pool  # type: ignore[attr-defined]
    replaced = pool.replaced
    async with running(worker(queue, {"hang": handler, "fine": fine})):
        job = await queue.add("hang", attempts=1, timeout=timeout)
        started = time.monotonic()
        reason = await _fail_reason(job)
        assert time.monotonic() - started < 15
        assert "timeout" in reason.lower()
        assert pool.replaced == replaced + 1
        assert await (await queue.add("fine", 1)).wait(timeout=30) == "ok 1"


@pytest.mark.parametrize(
    ("handler", "detail"),
    [(exits_hard, "exited with code 3"), (segfaults, "SIGSEGV"), (eats_memory, "memory")],
    ids=["os_exit", "segfault", "out_of_memory"],
)
async def test_a_crashing_child_fails_its_job_with_worker_lost_and_is_replaced(
    queue: Queue, handler: Callable[..., Any], detail: str
) -> None:
    pool = handler.pool  # type: ignore[attr-defined]
    replaced = pool.replaced
    async with running(worker(queue, {"crash": handler, "fine": fine})):
        doomed = await queue.add("crash", attempts=1)
        others = [await queue.add("fine", i) for i in range(3)]
        reason = await _fail_reason(doomed)
        assert "worker lost" in reason
        assert detail in reason
        results = await asyncio.gather(*(j.wait(timeout=30) for j in others))
        assert results == ["ok 0", "ok 1", "ok 2"]
        assert pool.replaced == replaced + 1
        # The crashing handler's pool serves the next job with a fresh child.
        again = await queue.add("crash", attempts=1)
        assert "worker lost" in await _fail_reason(again)
