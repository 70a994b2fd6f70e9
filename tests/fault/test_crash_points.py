"""Workers that die at deterministic points of a job's life: nothing is lost.

The worker app (tests/support/worker_app.py) calls ``os._exit(137)`` exactly at the chosen point
on a job's first start, so the window is hit every time rather than by luck:

* ``after_fetch``: the job is leased and the handler entered, nothing else happened;
* ``before_ack``: the handler did its work, the worker died before acknowledging it.

A test keeps restarting a worker process (concurrency 1, so each process leases one job and
dies with it) until every job completed, then checks the ledger: no job lost, and a job runs
twice only when its first run finished before the crash (``before_ack``), as the README says.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import pytest
from tests.support.processes import SpawnedProcess
from tests.support.waiting import async_wait_for

from conveyor import JobState, Queue

StartWorker = Callable[..., SpawnedProcess]
Ledger = Callable[..., Any]

JOBS = 10
LEASE = 0.5


async def restart_until_done(
    start_worker: StartWorker, queue: Queue, expected: int, timeout: float = 60.0
) -> list[SpawnedProcess]:
    """Run one worker at a time, replacing it whenever it dies, until ``expected`` completed."""
    workers: list[SpawnedProcess] = []

    async def done_or_dead() -> bool:
        if (await queue.counts())["completed"] >= expected:
            return True
        return not workers[-1].alive

    async def all_done() -> bool:
        return (await queue.counts())["completed"] >= expected

    for _ in range(expected * 3 + 5):  # each process should finish or crash on one job
        if await all_done():
            return workers
        workers.append(start_worker(f"W{len(workers)}", lease=LEASE, concurrency=1))
        await async_wait_for(
            done_or_dead, timeout=timeout, interval=0.02, message="no progress and no crash"
        )
    raise AssertionError(f"jobs still not completed after {len(workers)} worker processes")


@pytest.mark.timeout(120)
async def test_crash_right_after_fetch_loses_nothing_and_runs_each_job_once(
    start_worker: StartWorker, jobs_queue: Queue, ledger: Ledger
) -> None:
    jobs = await jobs_queue.add_bulk(
        [{"name": "record", "data": {"i": i, "crash": "after_fetch"}} for i in range(JOBS)]
    )
    workers = await restart_until_done(start_worker, jobs_queue, JOBS)
    crashed = [w for w in workers if not w.alive]
    assert len(crashed) == JOBS, [w.describe() for w in crashed]
    assert {w.returncode for w in crashed} == {137}
    started = collections.Counter(job_id for job_id, _ in await ledger("started"))
    ran = collections.Counter(job_id for job_id, _ in await ledger("ran"))
    ids = {j.id for j in jobs}
    assert set(started) == ids and set(started.values()) == {2}  # crashed once, re-delivered once
    assert set(ran) == ids and set(ran.values()) == {1}  # lost = 0, no duplicate execution
    for job in jobs:
        done = await jobs_queue.get_job(job.id)
        assert done is not None and done.state is JobState.COMPLETED
        assert done.stalls == 1 and done.attempts_made == 1
    counts = await jobs_queue.counts()
    assert (counts["waiting"], counts["active"], counts["failed"]) == (0, 0, 0)


@pytest.mark.timeout(120)
async def test_crash_after_the_handler_before_the_ack_reruns_the_job_and_loses_nothing(
    start_worker: StartWorker, jobs_queue: Queue, ledger: Ledger
) -> None:
    jobs = await jobs_queue.add_bulk(
        [{"name": "record", "data": {"i": i, "crash": "before_ack"}} for i in range(JOBS)]
    )
    workers = await restart_until_done(start_worker, jobs_queue, JOBS)
    crashed = [w for w in workers if not w.alive]
    assert len(crashed) == JOBS and {w.returncode for w in crashed} == {137}
    ran = collections.Counter(job_id for job_id, _ in await ledger("ran"))
    ids = {j.id for j in jobs}
    # The documented duplicate: the work was done, the ack never landed, so it runs again.
    assert set(ran) == ids and set(ran.values()) == {2}
    by_job = collections.defaultdict(list)
    for job_id, worker in await ledger("ran"):
        by_job[job_id].append(worker)
    for job in jobs:
        done = await jobs_queue.get_job(job.id)
        assert done is not None and done.state is JobState.COMPLETED
        assert done.stalls == 1 and done.attempts_made == 1
        # The recorded outcome is the second run's, by a different process than the crashed one.
        first, second = by_job[job.id]
        assert first != second and done.result == {"worker": second}
    counts = await jobs_queue.counts()
    assert (counts["waiting"], counts["active"], counts["failed"]) == (0, 0, 0)
