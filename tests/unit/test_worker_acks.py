"""Acknowledgements: finished attempts go out together; lost leases, refusals and outages."""

from __future__ import annotations

import orjson
import pytest
from tests.unit.worker_fakes import FakeRedis, queue

from conveyor.errors import CommandRefused, ConnectionError
from conveyor.job import Job
from conveyor.runner import AttemptOutcome
from conveyor.storage.protocol import Code, FetchedJob
from conveyor.worker.acks import Acknowledger
from conveyor.worker.leased import LeasedJob, LeasedJobs

COMMANDS = queue()


def leased(jobs: LeasedJobs, job_id: str) -> LeasedJob:
    raw = FetchedJob(job_id, "7@w", "send", "{}", None, None, None, None, None, "1000", None)
    item = LeasedJob(COMMANDS, Job.from_fetch(COMMANDS.queue, list(raw), None))
    jobs.add(item)
    return item


def redis(lost: frozenset[str] = frozenset(), refuse: frozenset[str] = frozenset()) -> FakeRedis:
    """complete.lua and fail.lua as far as the acknowledgements see them; a call with a job
    in ``refuse`` is refused as a whole."""

    def complete(items: bytes) -> list[str]:
        ids = [item[0] for item in orjson.loads(items)]
        if refuse & set(ids):
            raise CommandRefused("ERR refused")
        return [i for i in ids if i in lost]

    def fail(job_id: str, token: str, message: str, record: str, delay: int) -> int:
        return Code.LEASE_LOST if job_id in lost else Code.FAILED

    return FakeRedis(complete=complete, fail=fail)


async def test_every_finished_attempt_goes_out_in_one_round_trip() -> None:
    jobs, store = LeasedJobs(), redis()
    acks = Acknowledger(store, jobs, "w")
    for job_id in ("1", "2"):
        acks.put(leased(jobs, job_id), AttemptOutcome(result="42"))
    acks.put(leased(jobs, "3"), AttemptOutcome(error="boom"))
    jobs.settled.clear()
    await acks.flush()
    assert store.round_trips == 1
    assert store.names() == ["complete", "fail"]
    assert (acks.processed, acks.failed, len(jobs), len(acks)) == (3, 1, 0, 0)
    assert jobs.settled.is_set()


async def test_an_outcome_whose_lease_was_lost_is_discarded() -> None:
    jobs, store = LeasedJobs(), redis(lost=frozenset({"2", "3"}))
    acks = Acknowledger(store, jobs, "w")
    acks.put(leased(jobs, "1"), AttemptOutcome(result="1"))
    acks.put(leased(jobs, "2"), AttemptOutcome(result="2"))
    acks.put(leased(jobs, "3"), AttemptOutcome(error="boom"))
    await acks.flush()
    assert (acks.processed, acks.failed, len(jobs)) == (1, 0, 0)


async def test_a_refused_flush_is_sent_again_job_by_job(caplog: pytest.LogCaptureFixture) -> None:
    jobs, store = LeasedJobs(), redis(refuse=frozenset({"2"}))
    acks = Acknowledger(store, jobs, "w")
    for job_id in ("1", "2", "3"):
        acks.put(leased(jobs, job_id), AttemptOutcome(result="null"))
    await acks.flush()
    assert store.round_trips == 4  # the flush, then one per job
    assert (acks.processed, len(jobs)) == (2, 0)  # job 2 dropped: it runs again elsewhere
    assert "refused to record the outcome of job 2" in caplog.text


async def test_outcomes_are_kept_through_an_outage_and_sent_after_it() -> None:
    jobs, store = LeasedJobs(), redis()
    acks = Acknowledger(store, jobs, "w")
    acks.put(leased(jobs, "1"), AttemptOutcome(result="null"))
    store.fail_next = ConnectionError("connection reset")
    await acks.flush()
    assert store.round_trips == 2
    assert (acks.processed, len(jobs)) == (1, 0)


async def test_a_deadline_gives_up_on_an_outage() -> None:
    jobs, store = LeasedJobs(), redis()
    acks = Acknowledger(store, jobs, "w")
    acks.put(leased(jobs, "1"), AttemptOutcome(result="null"))
    store.fail_next = ConnectionError("connection reset")
    await acks.flush(deadline=0.0)
    assert (acks.processed, len(acks), len(jobs)) == (0, 1, 1)
