"""Worker processes killed, frozen and stopped mid-job: nothing is lost, nothing is overwritten.

Each test runs real worker processes (tests/support/worker_app.py) against a real Redis and
counts, in lists of its own, how often each job started and finished on which worker.
"""

from __future__ import annotations

import collections
import signal
from collections.abc import Callable
from typing import Any

import pytest
from tests.support.processes import SpawnedProcess
from tests.support.waiting import async_wait_for

from conveyor import JobState, Queue

StartWorker = Callable[..., SpawnedProcess]
Ledger = Callable[..., Any]


async def completed_count(queue: Queue) -> int:
    return (await queue.counts())["completed"]


@pytest.mark.timeout(60)
async def test_sigkill_mid_job_the_jobs_complete_exactly_once_more_elsewhere(
    start_worker: StartWorker, jobs_queue: Queue, ledger: Ledger
) -> None:
    a = start_worker("A", lease=1, concurrency=20)
    jobs = await jobs_queue.add_bulk([{"name": "record", "data": {"sleep": 60}}] * 20)
    await async_wait_for(
        lambda: ledger("started"), timeout=10, message="worker A never started the jobs"
    )
    await async_wait_for(
        lambda: _len_at_least(ledger("started"), 20), timeout=10, message="A took fewer than 20"
    )
    a.send_signal(signal.SIGKILL)
    a.wait(timeout=5)
    start_worker("B", lease=1, concurrency=20)
    await async_wait_for(
        lambda: _equals(completed_count(jobs_queue), 20),
        timeout=20,
        message="the killed worker's jobs were not all re-run",
    )
    ran = await ledger("ran")
    assert sorted(job_id for job_id, _ in ran) == sorted(j.id for j in jobs)  # once each
    assert {worker for _, worker in ran} == {"B"}
    for job in jobs:
        done = await jobs_queue.get_job(job.id)
        assert done is not None and done.state is JobState.COMPLETED
        assert done.result == {"worker": "B"} and done.stalls == 1
    assert (await jobs_queue.counts())["active"] == 0


@pytest.mark.timeout(60)
async def test_sigstop_past_the_lease_the_frozen_workers_late_completion_is_rejected(
    start_worker: StartWorker, jobs_queue: Queue, ledger: Ledger
) -> None:
    a = start_worker("A", lease=0.6)
    job = await jobs_queue.add("record", {"sleep": 2})
    await async_wait_for(lambda: ledger("started"), timeout=10, message="A never started")
    a.send_signal(signal.SIGSTOP)
    try:
        start_worker("B", lease=0.6)
        assert await job.wait(timeout=20) == {"worker": "B"}
    finally:
        a.send_signal(signal.SIGCONT)
    # A wakes up, finishes its copy of the job and tries to complete it: refused.
    await async_wait_for(
        lambda: "lease" in a.stderr() and "lost" in a.stderr(),
        timeout=15,
        message=lambda: f"A never reported the lost lease:\n{a.stderr()}",
    )
    await async_wait_for(lambda: _len_at_least(ledger("ran"), 2), timeout=10)
    done = await jobs_queue.get_job(job.id)
    assert done is not None and done.result == {"worker": "B"}
    assert done.attempts_made == 1  # A's late outcome was not recorded as an attempt
    assert a.alive  # the worker survived being frozen


@pytest.mark.timeout(60)
async def test_sigterm_during_a_job_lets_it_finish_then_exits(
    start_worker: StartWorker, jobs_queue: Queue, ledger: Ledger
) -> None:
    a = start_worker("A")
    job = await jobs_queue.add("record", {"sleep": 1})
    await async_wait_for(lambda: ledger("started"), timeout=10, message="A never started")
    a.send_signal(signal.SIGTERM)
    assert a.wait(timeout=15) == 0, a.describe()
    done = await jobs_queue.get_job(job.id)
    assert done is not None and done.state is JobState.COMPLETED
    assert done.result == {"worker": "A"}
    assert await ledger("ran") == [(job.id, "A")]


@pytest.mark.timeout(60)
async def test_sigterm_past_the_grace_period_hands_the_job_back_exactly_once(
    start_worker: StartWorker, jobs_queue: Queue, ledger: Ledger
) -> None:
    a = start_worker("A", grace=0.5)
    job = await jobs_queue.add("record", {"sleep": 60}, attempts=1)
    await async_wait_for(lambda: ledger("started"), timeout=10, message="A never started")
    a.send_signal(signal.SIGTERM)
    assert a.wait(timeout=15) == 0, a.describe()
    returned = await jobs_queue.get_job(job.id)
    assert returned is not None and returned.state is JobState.WAITING
    assert returned.attempts_made == 0 and returned.stalls == 0
    assert (await jobs_queue.counts())["waiting"] == 1
    start_worker("B")
    assert await job.wait(timeout=15) == {"worker": "B"}
    assert await ledger("ran") == [(job.id, "B")]


@pytest.mark.timeout(120)
async def test_a_thousand_jobs_through_two_worker_processes_each_complete_once(
    start_worker: StartWorker, jobs_queue: Queue, ledger: Ledger
) -> None:
    start_worker("A", concurrency=20)
    start_worker("B", concurrency=20)
    jobs = await jobs_queue.add_bulk({"name": "record", "data": {"i": i}} for i in range(1000))
    await async_wait_for(
        lambda: _equals(completed_count(jobs_queue), 1000),
        timeout=60,
        interval=0.1,
        message="not all 1000 jobs completed",
    )
    ran = await ledger("ran")
    per_job = collections.Counter(job_id for job_id, _ in ran)
    assert set(per_job) == {j.id for j in jobs}
    assert set(per_job.values()) == {1}, "some job ran twice"
    counts = await jobs_queue.counts()
    assert (counts["waiting"], counts["active"], counts["failed"]) == (0, 0, 0)


async def _len_at_least(entries: Any, n: int) -> bool:
    return len(await entries) >= n


async def _equals(value: Any, expected: int) -> bool:
    return await value == expected
