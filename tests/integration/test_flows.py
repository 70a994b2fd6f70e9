"""Flows against a real Redis: a parent waits in WAITING_CHILDREN, runs after its children
(on its queue or others), reads their results; on_failure fail / ignore / remove; chain and
chord; the tree in the job's JSON; cancelling and removing a waiting parent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from tests.support.conveyor_helpers import running, worker
from tests.support.waiting import async_wait_for

from conveyor import FlowJob, Job, JobState, Queue, SyncQueue, Unrecoverable
from conveyor.errors import ConfigurationError
from conveyor.workflows import ChildFailure, chain, chord

pytestmark = pytest.mark.timeout(60)


def _handlers(seen: dict[str, Any]) -> dict[str, Any]:
    async def leaf(job: Job) -> Any:
        if job.data.get("fail"):
            raise Unrecoverable(f"leaf {job.data['n']} broke")
        return job.data["n"] * 10

    async def gather(job: Job) -> Any:
        results = await job.children_results()
        seen[job.id] = results
        values = [v for v in results.values() if not isinstance(v, ChildFailure)]
        return sum(values) + (job.data or {}).get("n", 0)

    return {"leaf": leaf, "gather": gather}


async def _state(queue: Queue, job_id: str, state: JobState) -> bool:
    job = await queue.get_job(job_id)
    return job is not None and job.state is state


async def test_a_parent_waits_then_reads_its_childrens_results(queue: Queue) -> None:
    seen: dict[str, Any] = {}
    flow = FlowJob(
        "gather",
        {"n": 1},
        children=[FlowJob("leaf", {"n": i}, job_id=f"c{i}") for i in range(3)],
    )
    parent = await queue.add_flow(flow)
    assert parent.state is JobState.WAITING_CHILDREN
    assert (await queue.counts())["waiting-children"] == 1
    stored = await queue.get_job(parent.id)
    assert stored is not None and stored.children is not None
    assert sorted(c["id"] for c in stored.children) == ["c0", "c1", "c2"]
    child = await queue.get_job("c1")
    assert child is not None and child.parent == {"queue": "q", "id": parent.id}
    assert child.to_dict()["parent"] == {"queue": "q", "id": parent.id}
    async with running(worker(queue, _handlers(seen))):
        assert await parent.wait(timeout=20) == 31  # a parent is waited for as any job
    assert seen[parent.id] == {"c0": 0, "c1": 10, "c2": 20}
    done = await queue.get_job(parent.id)
    assert done is not None and done.result == 31


async def test_children_on_other_queues_and_grandchildren(make_queue: Callable[..., Queue]) -> None:
    main, render, fonts = make_queue("main"), make_queue("render"), make_queue("fonts")
    seen: dict[str, Any] = {}
    flow = FlowJob(
        "gather",
        {"n": 0},
        children=[
            FlowJob(
                "gather",
                {"n": 1},
                queue="render",
                job_id="mid",
                children=[
                    FlowJob("leaf", {"n": 2}, queue="fonts"),
                    FlowJob("leaf", {"n": 3}, queue="main"),
                ],
            ),
            FlowJob("leaf", {"n": 4}, queue="render", job_id="side"),
        ],
    )
    parent = await main.add_flow(flow)
    assert parent.state is JobState.WAITING_CHILDREN
    assert await _state(render, "mid", JobState.WAITING_CHILDREN)
    async with running(worker([main, render, fonts], _handlers(seen))):
        await async_wait_for(lambda: _state(main, parent.id, JobState.COMPLETED), timeout=20)
    assert seen["mid"] and sorted(seen["mid"].values()) == [20, 30]
    assert seen[parent.id] == {"mid": 51, "side": 40}


async def test_a_failed_child_fails_its_parent_naming_it(queue: Queue) -> None:
    flow = FlowJob(
        "gather",
        children=[FlowJob("leaf", {"n": 1}), FlowJob("leaf", {"n": 2, "fail": True}, job_id="bad")],
    )
    parent = await queue.add_flow(flow)
    async with running(worker(queue, _handlers({}))):
        await async_wait_for(lambda: _state(queue, parent.id, JobState.FAILED), timeout=20)
    failed = await queue.get_job(parent.id)
    assert failed is not None and failed.error is not None
    assert "q|bad" in failed.error and "leaf 2 broke" in failed.error


async def test_ignore_lists_the_failure_and_remove_drops_the_child(queue: Queue) -> None:
    seen: dict[str, Any] = {}
    flow = FlowJob(
        "gather",
        children=[
            FlowJob("leaf", {"n": 1}, job_id="good"),
            FlowJob("leaf", {"n": 2, "fail": True}, job_id="ign", on_failure="ignore"),
            FlowJob("leaf", {"n": 3, "fail": True}, job_id="rem", on_failure="remove"),
        ],
    )
    parent = await queue.add_flow(flow)
    async with running(worker(queue, _handlers(seen))):
        await async_wait_for(lambda: _state(queue, parent.id, JobState.COMPLETED), timeout=20)
    results = seen[parent.id]
    assert set(results) == {"good", "ign"}
    assert results["good"] == 10
    assert results["ign"] == ChildFailure("ign", "q", "Unrecoverable: leaf 2 broke")


async def test_chain_runs_steps_in_order_and_chord_gathers(queue: Queue) -> None:
    seen: dict[str, Any] = {}
    flow = chain(
        FlowJob("leaf", {"n": 1}, job_id="s1"),
        FlowJob("gather", {"n": 2}, job_id="s2"),
        FlowJob("gather", {"n": 3}, job_id="s3"),
    )
    last = await queue.add_flow(flow)
    assert last.id == "s3"
    fan = chord([FlowJob("leaf", {"n": i}) for i in range(5)], FlowJob("gather", job_id="sum"))
    await queue.add_flow(fan)
    async with running(worker(queue, _handlers(seen))):
        await async_wait_for(lambda: _state(queue, "s3", JobState.COMPLETED), timeout=20)
        await async_wait_for(lambda: _state(queue, "sum", JobState.COMPLETED), timeout=20)
    assert seen["s2"] == {"s1": 10} and seen["s3"] == {"s2": 12}
    assert sorted(seen["sum"].values()) == [0, 10, 20, 30, 40]


async def test_a_leaf_only_flow_and_a_repeated_root_id(queue: Queue) -> None:
    job = await queue.add_flow(FlowJob("leaf", {"n": 1}, job_id="solo"))
    assert job.state is JobState.WAITING
    again = await queue.add_flow(
        FlowJob("gather", children=[FlowJob("leaf", {"n": 2})], job_id="solo")
    )
    assert again.name == "leaf"  # the existing job: nothing was added
    assert (await queue.counts())["waiting"] == 1


async def test_a_flow_naming_a_job_that_exists_adds_nothing(
    make_queue: Callable[..., Queue],
) -> None:
    queue, other = make_queue("q"), make_queue("other")
    await queue.add("leaf", job_id="here")
    await other.add("leaf", job_id="there")
    with pytest.raises(ConfigurationError, match="'here' exists"):
        await queue.add_flow(FlowJob("gather", children=[FlowJob("leaf", job_id="here")]))
    with pytest.raises(ConfigurationError, match="'there' exists"):
        await queue.add_flow(
            FlowJob("gather", children=[FlowJob("leaf", queue="other", job_id="there")])
        )
    with pytest.raises(ConfigurationError, match="twice"):
        await queue.add_flow(
            FlowJob("gather", children=[FlowJob("a", job_id="x"), FlowJob("b", job_id="x")])
        )
    assert (await queue.counts())["waiting"] == 1 and (await queue.counts())[
        "waiting-children"
    ] == 0
    assert (await other.counts())["waiting"] == 1


async def test_bad_flows_are_refused(queue: Queue) -> None:
    with pytest.raises(ConfigurationError):
        FlowJob("x", on_failure="explode")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        FlowJob("x", children=["nope"])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError):
        await queue.add_flow(FlowJob("x", children=[FlowJob("y", attempts=0)]))
    with pytest.raises(ConfigurationError):
        chain()
    assert sum(v for k, v in (await queue.counts()).items() if k != "paused") == 0


async def test_cancel_or_remove_a_waiting_parent_removes_its_children_not_run(
    make_queue: Callable[..., Queue],
) -> None:
    queue, other = make_queue("q"), make_queue("other")
    tree = FlowJob(
        "gather",
        children=[
            FlowJob("leaf", {"n": 1}, delay=60, job_id="a1"),
            FlowJob("gather", queue="other", job_id="a2", children=[FlowJob("leaf", job_id="a3")]),
        ],
    )
    parent = await queue.add_flow(tree)
    done = await other.add("leaf", {"n": 9}, job_id="finished")
    assert await queue.cancel(parent.id) is JobState.WAITING_CHILDREN
    assert await _state(queue, parent.id, JobState.FAILED)
    assert (await queue.counts())["waiting-children"] == 0  # at once: no worker runs here
    assert await queue.get_job("a1") is None and await other.get_job("a2") is None
    assert await other.get_job("a3") is None
    assert await other.get_job(done.id) is not None

    tree = FlowJob("gather", children=[FlowJob("leaf", {"n": 1}, delay=60, job_id="b1")])
    second = await queue.add_flow(tree)
    await queue.remove(second.id)
    assert (await queue.counts())["waiting-children"] == 0
    assert await queue.get_job("b1") is None
    assert sum(v for k, v in (await queue.counts()).items() if k != "paused") == 1  # the first


def test_sync_queue_adds_flows_and_batches(redis_url: str, key_prefix: str) -> None:
    with SyncQueue("q", url=redis_url, prefix=key_prefix) as queue:
        parent = queue.add_flow(FlowJob("gather", children=[FlowJob("leaf", {"n": 1})]))
        assert parent.state is JobState.WAITING_CHILDREN
        batch = queue.add_batch([{"name": "leaf", "data": {"n": 1}}])
        info = queue.get_batch(batch.id)
        assert info is not None and info.total == 1


async def test_cleaning_waiting_jobs_of_a_flow_releases_or_removes_as_remove_does(
    queue: Queue,
) -> None:
    parent = await queue.add_flow(
        FlowJob("gather", children=[FlowJob("leaf", {"n": 1}, delay=60, job_id="late")])
    )
    assert await queue.clean("delayed") == 1
    await queue.settle_workflows()
    assert await _state(queue, parent.id, JobState.WAITING)  # as if the child never was
    other = await queue.add_flow(
        FlowJob("gather", job_id="top", children=[FlowJob("leaf", {"n": 1}, delay=60, job_id="x")])
    )
    assert await queue.clean("waiting-children") == 1
    await queue.settle_workflows()
    assert await queue.get_job(other.id) is None and await queue.get_job("x") is None


async def test_a_failure_climbs_the_tree_and_ignore_stops_it(
    make_queue: Callable[..., Queue],
) -> None:
    main, other = make_queue("main"), make_queue("other")
    seen: dict[str, Any] = {}
    flow = FlowJob(
        "gather",
        job_id="top",
        children=[
            FlowJob(
                "gather",
                queue="other",
                job_id="mid",
                children=[FlowJob("leaf", {"n": 1, "fail": True}, queue="main", job_id="low")],
            )
        ],
    )
    await main.add_flow(flow)
    tolerant = FlowJob(
        "gather",
        job_id="top2",
        children=[
            FlowJob(
                "gather",
                queue="other",
                job_id="mid2",
                on_failure="ignore",
                children=[FlowJob("leaf", {"n": 1, "fail": True}, job_id="low2")],
            )
        ],
    )
    await main.add_flow(tolerant)
    async with running(worker([main, other], _handlers(seen))):
        await async_wait_for(lambda: _state(main, "top", JobState.FAILED), timeout=20)
        await async_wait_for(lambda: _state(main, "top2", JobState.COMPLETED), timeout=20)
    mid = await other.get_job("mid")
    top = await main.get_job("top")
    assert mid is not None and mid.error is not None and "main|low failed" in mid.error
    assert top is not None and top.error is not None and "other|mid failed" in top.error
    assert seen["top2"] == {
        "mid2": ChildFailure("mid2", "other", mid.error.replace("main|low", "other|low2"))
    }


async def test_a_burst_worker_runs_a_whole_flow_before_it_stops(
    make_queue: Callable[..., Queue],
) -> None:
    main, other = make_queue("main"), make_queue("other")
    seen: dict[str, Any] = {}
    tree = chain(
        FlowJob("leaf", {"n": 1}, queue="other"),
        FlowJob("gather", job_id="mid"),
        FlowJob("gather", queue="other", job_id="end"),
    )
    await main.add_flow(tree)
    burst = worker([main, other], _handlers(seen), burst=True)
    await asyncio.wait_for(burst.run(install_signal_handlers=False), 30)
    end = await other.get_job("end")
    assert end is not None and end.state is JobState.COMPLETED and end.result == 10


async def test_a_parents_delay_and_ttl_count_from_when_its_children_are_done(
    queue: Queue,
) -> None:
    parent = await queue.add_flow(
        FlowJob("gather", delay=30, ttl=60, children=[FlowJob("leaf", {"n": 1}, job_id="k")])
    )
    stored = await queue.get_job(parent.id)
    assert stored is not None and stored.state is JobState.WAITING_CHILDREN
    async with running(worker(queue, _handlers({}))):
        await async_wait_for(lambda: _state(queue, parent.id, JobState.DELAYED), timeout=10)
    delayed = await queue.get_job(parent.id)
    child = await queue.get_job("k")
    assert delayed is not None and child is not None and delayed.run_at and child.finished_at
    assert 29_000 <= delayed.run_at - child.finished_at <= 31_000  # from its release
    await queue.promote(parent.id)
    assert await _state(queue, parent.id, JobState.WAITING)


async def test_the_testing_drain_runs_a_flow_to_its_end(make_queue: Callable[..., Queue]) -> None:
    from conveyor.testing import drain

    main, other = make_queue("main"), make_queue("other")
    seen: dict[str, Any] = {}
    flow = FlowJob("gather", job_id="top", children=[FlowJob("leaf", {"n": 2}, queue="other")])
    await main.add_flow(flow)
    jobs = await drain([main, other], _handlers(seen))
    by_id = {job.id: job for job in jobs}
    assert by_id["top"].state is JobState.COMPLETED and by_id["top"].result == 20


def test_sync_queue_cancel_removes_a_parents_children_at_once(
    redis_url: str, key_prefix: str
) -> None:
    with SyncQueue("q", url=redis_url, prefix=key_prefix) as queue:
        parent = queue.add_flow(FlowJob("gather", children=[FlowJob("leaf", job_id="kid")]))
        assert queue.cancel(parent.id) is JobState.WAITING_CHILDREN
        assert queue.get_job("kid") is None
        other = queue.add_flow(
            FlowJob("gather", job_id="p2", children=[FlowJob("leaf", job_id="k2")])
        )
        queue.remove("k2")  # as if it never was: its parent may run
        released = queue.get_job(other.id)
        assert released is not None and released.state is JobState.WAITING
