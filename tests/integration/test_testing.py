"""``conveyor.testing``: drain and inline mode, against the real Redis and the real Worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor import Backoff, Job, JobFailed, JobState, Queue
from conveyor.errors import PayloadError, WaitTimeout
from conveyor.testing import drain, inline

pytestmark = pytest.mark.timeout(60)


async def add(job: Job) -> int:
    return int(job.data["a"]) + int(job.data["b"])


async def boom(job: Job) -> None:
    raise RuntimeError("smtp refused")


async def test_drain_runs_everything_waiting_and_returns_the_outcomes_in_order(
    make_queue: Callable[..., Queue],
) -> None:
    queue = make_queue("mail")
    first = await queue.add("add", {"a": 1, "b": 2})
    failing = await queue.add("boom")
    last = await queue.add("add", {"a": 40, "b": 2})

    ran = await drain(queue, {"add": add, "boom": boom})

    assert [j.id for j in ran] == [first.id, failing.id, last.id]
    assert [j.state for j in ran] == [JobState.COMPLETED, JobState.FAILED, JobState.COMPLETED]
    assert (ran[0].result, ran[2].result) == (3, 42)
    assert ran[1].error is not None and "smtp refused" in ran[1].error
    with pytest.raises(JobFailed, match="smtp refused"):
        await ran[1].wait(timeout=1)
    assert await ran[2].wait(timeout=1) == 42
    counts = await queue.counts()
    assert (counts["waiting"], counts["active"], counts["completed"], counts["failed"]) == (
        0,
        0,
        2,
        1,
    )
    # stored in Redis, not only in the returned objects
    other = make_queue("mail")
    stored = await other.get_job(last.id)
    assert stored is not None and stored.result == 42


async def test_drain_of_an_empty_queue_returns_nothing(make_queue: Callable[..., Queue]) -> None:
    assert await drain(make_queue("empty"), {"add": add}) == []


async def test_drain_uses_registered_handlers_sync_ones_too_and_several_queues(
    make_queue: Callable[..., Queue],
) -> None:
    high, low = make_queue("high"), make_queue("low")

    @low.handler("shout")
    def shout(job: Job) -> str:  # a plain function: runs in the worker's thread pool
        return str(job.data).upper()

    later = await low.add("shout", "later")
    sooner = await high.add("add", {"a": 1, "b": 1})
    ran = await drain([high, low], {"add": add})
    assert [(j.queue, j.id) for j in ran] == [("high", sooner.id), ("low", later.id)]
    assert [j.result for j in ran] == [2, "LATER"]


async def test_retries_wait_out_their_backoff_unless_run_delayed(
    make_queue: Callable[..., Queue],
) -> None:
    queue = make_queue("flaky")
    calls: list[int] = []

    async def flaky(job: Job) -> str:
        calls.append(job.attempts_made)
        if len(calls) < 3:
            raise RuntimeError(f"try {len(calls)}")
        return "third time lucky"

    job = await queue.add("flaky", attempts=3, backoff=Backoff.fixed(3600))
    [after_one] = await drain(queue, {"flaky": flaky})
    assert after_one.state is JobState.DELAYED and after_one.attempts_made == 1

    [done] = await drain(queue, {"flaky": flaky}, run_delayed=True)
    assert done.id == job.id
    assert (done.state, done.result, done.attempts_made) == (
        JobState.COMPLETED,
        "third time lucky",
        3,
    )
    assert len(calls) == 3
    scheduled = await queue.add("flaky", delay=3600)
    assert await drain(queue, {"flaky": flaky}) == []
    [ran] = await drain(queue, {"flaky": flaky}, run_delayed=True)
    assert ran.id == scheduled.id and ran.state is JobState.COMPLETED


async def test_max_jobs_stops_early(make_queue: Callable[..., Queue]) -> None:
    queue = make_queue("many")
    jobs = await queue.add_bulk([{"name": "add", "data": {"a": i, "b": 0}} for i in range(5)])
    ran = await drain(queue, {"add": add}, max_jobs=2)
    assert [j.id for j in ran] == [j.id for j in jobs[:2]]
    assert (await queue.counts())["waiting"] == 3


async def test_drain_times_out_and_hands_the_running_job_back(
    make_queue: Callable[..., Queue],
) -> None:
    queue = make_queue("slow")

    async def forever(job: Job) -> None:
        await asyncio.sleep(3600)

    job = await queue.add("forever")
    started = time.monotonic()
    with pytest.raises(WaitTimeout, match=r"not drained within 0\.5 s"):
        await drain(queue, {"forever": forever}, timeout=0.5)
    assert time.monotonic() - started < 10
    stored = await queue.get_job(job.id)
    assert stored is not None and stored.state is JobState.WAITING  # handed back, not lost
    assert stored.attempts_made == 0


async def test_inline_runs_each_add_at_once_through_redis(
    make_queue: Callable[..., Queue],
) -> None:
    queue = make_queue("inline")
    async with inline(queue, {"add": add, "boom": boom}) as q:
        assert q is queue
        job = await queue.add("add", {"a": 2, "b": 3})
        assert (job.state, job.result) == (JobState.COMPLETED, 5)
        failed = await queue.add("boom")
        assert failed.state is JobState.FAILED and "smtp refused" in (failed.error or "")
        bulk = await queue.add_bulk([{"name": "add", "data": {"a": i, "b": i}} for i in range(3)])
        assert [j.result for j in bulk] == [0, 2, 4]
        with pytest.raises(PayloadError):  # validated exactly as in production
            await queue.add("add", {"a": object()})
    assert (await queue.counts())["completed"] == 4
    after = await queue.add("add", {"a": 1, "b": 1})  # outside the block: a normal add
    assert after.state is JobState.WAITING
    assert (await queue.counts())["waiting"] == 1


async def test_inline_runs_jobs_that_handlers_add_before_returning(
    make_queue: Callable[..., Queue],
) -> None:
    queue = make_queue("chain")
    seen: list[str] = []

    async def signup(job: Job) -> str:
        follow_up = await queue.add("welcome", {"to": job.data["email"]})
        seen.append(f"signup added {follow_up.state.value}")
        return follow_up.id

    async def welcome(job: Job) -> None:
        seen.append(f"welcome {job.data['to']}")

    async with inline(queue, {"signup": signup, "welcome": welcome}):
        job = await queue.add("signup", {"email": "a@b.c"})
    assert job.state is JobState.COMPLETED
    assert seen == ["signup added waiting", "welcome a@b.c"]
    welcome_job = await queue.get_job(str(job.result))
    assert welcome_job is not None and welcome_job.state is JobState.COMPLETED


async def test_inline_leaves_delayed_jobs_delayed_unless_asked(
    make_queue: Callable[..., Queue],
) -> None:
    queue = make_queue("later")
    async with inline(queue, {"add": add}):
        job = await queue.add("add", {"a": 1, "b": 1}, delay=60)
    assert job.state is JobState.DELAYED
    async with inline(queue, {"add": add}, run_delayed=True):
        now = await queue.add("add", {"a": 2, "b": 2}, delay=60)
    assert (now.state, now.result) == (JobState.COMPLETED, 4)
    earlier = await queue.get_job(job.id)  # promoted and run by the same drain
    assert earlier is not None and earlier.result == 2


def test_the_testing_module_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Testing your jobs", 1)[1].split("\n## ", 1)[0]
    for name in ("drain", "inline", "run_delayed"):
        assert name in section, name
