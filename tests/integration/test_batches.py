"""Batches against a real Redis: callbacks fire exactly once, counts are right, a running job
grows its own batch, an empty batch fires at once, bad input stores nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from tests.support.conveyor_helpers import running, worker
from tests.support.waiting import async_wait_for

from conveyor import Callback, ConveyorError, Job, JobState, Queue, Unrecoverable
from conveyor.errors import ConfigurationError

pytestmark = pytest.mark.timeout(60)


def _handlers(calls: list[tuple[str, Any]]) -> dict[str, Any]:
    async def work(job: Job) -> Any:
        if job.data.get("fail"):
            raise Unrecoverable("boom")
        if job.data.get("grow"):
            await job.add_to_batch([{"name": "work", "data": {"i": 100 + k}} for k in range(2)])
            await job.add_to_batch("work", {"i": 102}, priority=5)  # one, as add takes it
        return job.data["i"] * 2

    async def note(job: Job) -> None:
        calls.append((job.name, job.data))

    return {"work": work, "done": note, "ok": note, "dead": note}


async def _finished(queue: Queue, batch_id: str) -> bool:
    info = await queue.get_batch(batch_id)
    return info is not None and info.state != "running" and not await _owed(queue)


async def _owed(queue: Queue) -> int:
    return int(await queue.redis.run(_hlen(queue)))


def _hlen(queue: Queue) -> Any:
    from conveyor.storage.ops import Op

    return Op((("HLEN", queue.commands.keys.owed),), lambda r: r[0])


CALLBACKS = {
    "on_complete": Callback("done", {"to": "ops"}),
    "on_success": Callback("ok", {}),
    "on_death": Callback("dead", {"x": 1}),
}


async def test_a_batch_that_succeeds_fires_complete_and_success_once(queue: Queue) -> None:
    calls: list[tuple[str, Any]] = []
    batch = await queue.add_batch(
        [{"name": "work", "data": {"i": i}} for i in range(20)], **CALLBACKS
    )
    assert (batch.total, batch.pending, batch.state) == (20, 20, "running")
    async with running(worker(queue, _handlers(calls))):
        await async_wait_for(lambda: _finished(queue, batch.id), timeout=20)
        await async_wait_for(lambda: len(calls) >= 2, timeout=10)
    info = await queue.get_batch(batch.id)
    assert info is not None
    assert (info.total, info.pending, info.completed, info.failed, info.state) == (
        20,
        0,
        20,
        0,
        "success",
    )
    assert sorted(name for name, _ in calls) == ["done", "ok"]
    done = dict(calls)["done"]
    assert done == {
        "data": {"to": "ops"},
        "batch": {"id": batch.id, "total": 20, "completed": 20, "failed": 0},
    }
    assert set(info.callbacks) == {"complete", "success"}
    job = await queue.get_job((await queue.get_jobs(JobState.COMPLETED, 0, 0))[0].id)
    assert job is not None


async def test_a_failure_for_good_fires_death_once_and_complete_not_success(queue: Queue) -> None:
    calls: list[tuple[str, Any]] = []
    jobs = [{"name": "work", "data": {"i": i, "fail": i % 5 == 0}} for i in range(10)]
    batch = await queue.add_batch(jobs, **CALLBACKS)
    async with running(worker(queue, _handlers(calls))):
        await async_wait_for(lambda: _finished(queue, batch.id), timeout=20)
        await async_wait_for(lambda: len(calls) >= 2, timeout=10)
    info = await queue.get_batch(batch.id)
    assert info is not None
    assert (info.completed, info.failed, info.pending, info.state) == (8, 2, 0, "complete")
    assert sorted(name for name, _ in calls) == ["dead", "done"]
    dead = dict(calls)["dead"]
    assert dead["data"] == {"x": 1} and dead["batch"]["failed"] == 1


async def test_a_running_job_grows_its_batch_before_it_completes(queue: Queue) -> None:
    calls: list[tuple[str, Any]] = []
    batch = await queue.add_batch(
        [{"name": "work", "data": {"i": 0, "grow": True}}], on_complete=Callback("done")
    )
    async with running(worker(queue, _handlers(calls))):
        await async_wait_for(lambda: _finished(queue, batch.id), timeout=20)
        await async_wait_for(lambda: calls, timeout=10)
    info = await queue.get_batch(batch.id)
    assert info is not None and (info.total, info.completed) == (4, 4)
    assert calls[0][1]["batch"]["total"] == 4


async def test_an_empty_batch_fires_at_once(queue: Queue) -> None:
    batch = await queue.add_batch([], on_complete=Callback("done"), on_success=Callback("ok"))
    assert (batch.total, batch.state) == (0, "success")
    waiting = {job.name for job in await queue.get_jobs(JobState.WAITING)}
    assert waiting == {"done", "ok"}
    assert await _owed(queue) == 0


async def test_callbacks_may_go_to_another_queue(make_queue: Callable[..., Queue]) -> None:
    queue, other = make_queue("main"), make_queue("notify")
    batch = await queue.add_batch([], on_complete=Callback("done", {"a": 1}, queue="notify"))
    assert batch.state == "success"
    [job] = await other.get_jobs(JobState.WAITING)
    assert job.data["data"] == {"a": 1} and job.id == f"batch:{batch.id}:complete"


async def test_bad_input_stores_nothing(queue: Queue) -> None:
    with pytest.raises(ConfigurationError):
        await queue.add_batch([{"name": "work", "attempts": 0}], on_complete=Callback("x"))
    with pytest.raises(ConfigurationError):
        await queue.add_batch([{"name": "work"}], on_complete="notify")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        await queue.add_batch([{"name": "work", "queue": "other"}])
    await queue.add("work", {"i": 1}, job_id="taken")
    with pytest.raises(ConveyorError):
        await queue.add_batch(
            [{"name": "work", "data": {"i": 2}}, {"name": "work", "job_id": "taken"}]
        )
    counts = await queue.counts()
    assert counts["waiting"] == 1  # only the plain job


async def test_get_batch_of_an_unknown_id_is_none(queue: Queue) -> None:
    assert await queue.get_batch("nope") is None


async def test_a_removed_job_leaves_the_batch(queue: Queue) -> None:
    batch = await queue.add_batch(
        [
            {"name": "work", "data": {"i": 1}, "job_id": "a"},
            {"name": "work", "data": {"i": 2}, "delay": 60, "job_id": "b"},
        ],
        on_complete=Callback("done"),
    )
    calls: list[tuple[str, Any]] = []
    async with running(worker(queue, _handlers(calls))):
        await async_wait_for(lambda: _job_state(queue, "a", JobState.COMPLETED), timeout=10)
        await queue.remove("b")
        await async_wait_for(lambda: _finished(queue, batch.id), timeout=10)
        await async_wait_for(lambda: calls, timeout=10)
    info = await queue.get_batch(batch.id)
    assert info is not None and (info.total, info.completed, info.state) == (1, 1, "success")


async def _job_state(queue: Queue, job_id: str, state: JobState) -> bool:
    job = await queue.get_job(job_id)
    return job is not None and job.state is state


async def test_paying_the_same_debts_twice_changes_nothing(
    make_queue: Callable[..., Queue],
) -> None:
    """What a worker killed after paying but before clearing leaves: the same owed entries
    (rebuilt here from the jobs, as complete.lua wrote them), paid again by the next one; and
    a callback added but not marked added. Counts, parents and callbacks stay as they were."""
    from conveyor.storage.ops import Op
    from conveyor.workflows import FlowJob

    queue, other = make_queue("q"), make_queue("other")
    keys = queue.commands.keys
    batch = await queue.add_batch(
        [{"name": "work", "data": {"i": i}} for i in range(3)], on_complete=Callback("done")
    )
    parent = await other.add_flow(
        FlowJob("gather", children=[FlowJob("work", {"i": 5}, queue="q")])
    )
    calls: list[tuple[str, Any]] = []
    async with running(worker(queue, _handlers(calls), concurrency=1)):
        await async_wait_for(lambda: _finished(queue, batch.id), timeout=20)
        await async_wait_for(lambda: calls, timeout=10)
    before_batch = await queue.get_batch(batch.id)
    parent_after = await other.get_job(parent.id)
    assert parent_after is not None and parent_after.state is JobState.WAITING
    done = await queue.get_jobs(JobState.COMPLETED, 0, -1)
    owed: list[str] = []
    for job in done:
        if job.name != "work":
            continue
        wf, result = await queue.redis.run(
            Op((("HMGET", keys.job(job.id), "wf", "result"),), lambda r: r[0])
        )
        owed += [f"o:{job.id}", f'["completed",{result},{wf}]']
    assert len(owed) == 8  # four jobs: three of the batch, one child
    owed += [f"c:{batch.id}", "1"]
    counts = json.dumps({"id": batch.id, "total": 3, "completed": 3, "failed": 0})
    await queue.redis.run(
        Op(
            (
                ("HSET", keys.owed, *owed),
                ("HSET", keys.batch(batch.id), "fire:complete", counts),
            ),
            lambda r: r,
        )
    )
    await queue.settle_workflows()
    assert await _owed(queue) == 0
    assert await queue.get_batch(batch.id) == before_batch
    again = await other.get_job(parent.id)
    assert again is not None and again.state is JobState.WAITING
    assert [j.name for j in await queue.get_jobs(JobState.WAITING)] == []  # no second callback
    assert (await other.counts())["waiting"] == 1


async def test_a_finished_batch_is_kept_as_long_as_its_jobs(
    make_queue: Callable[..., Queue],
) -> None:
    from conveyor.storage.ops import Op

    queue = make_queue("q", keep_completed_seconds=60, keep_failed_seconds=120)
    running_batch = await queue.add_batch([{"name": "work", "data": {"i": 1}}])
    done = await queue.add_batch([], on_complete=Callback("done"))

    def pttl(batch_id: str) -> Op[int]:
        return Op((("PTTL", queue.commands.keys.batch(batch_id)),), lambda r: int(r[0]))

    assert await queue.redis.run(pttl(running_batch.id)) == -1  # running: kept
    ttl = await queue.redis.run(pttl(done.id))
    assert 110_000 < ttl <= 120_000  # the longer of the two retentions
