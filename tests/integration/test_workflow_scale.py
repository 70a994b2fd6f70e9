"""Big workflows complete: a 1,000-child flow (children on another queue) and a 10,000-job
batch, with exact counts and one callback each (their time is in benchmarks/workflows.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tests.support.conveyor_helpers import running, worker
from tests.support.waiting import async_wait_for

from conveyor import Callback, FlowJob, Job, JobState, Queue

pytestmark = pytest.mark.timeout(120)


async def test_a_thousand_child_flow_and_a_ten_thousand_job_batch_complete(
    make_queue: Callable[..., Queue],
) -> None:
    main, side = make_queue("main"), make_queue("side")
    callbacks: list[Any] = []

    async def leaf(job: Job) -> int:
        return int(job.data["i"])

    async def gather(job: Job) -> int:
        return sum((await job.children_results()).values())

    async def callback(job: Job) -> None:
        callbacks.append(job.data)

    children = [FlowJob("leaf", {"i": i}, queue="side") for i in range(1000)]
    parent = await main.add_flow(FlowJob("gather", children=children))
    batch = await main.add_batch(
        [{"name": "leaf", "data": {"i": i}} for i in range(10_000)],
        on_complete=Callback("callback", {"k": "complete"}),
        on_success=Callback("callback", {"k": "success"}),
    )
    handlers = {"leaf": leaf, "gather": gather, "callback": callback}
    async with running(worker([main, side], handlers, concurrency=50)):

        async def finished() -> bool:
            job = await main.get_job(parent.id)
            return job is not None and job.state is JobState.COMPLETED and len(callbacks) == 2

        await async_wait_for(finished, timeout=90, interval=0.1)
    job = await main.get_job(parent.id)
    assert job is not None and job.result == sum(range(1000))
    info = await main.get_batch(batch.id)
    assert info is not None
    assert (info.total, info.completed, info.failed, info.pending) == (10_000, 10_000, 0, 0)
    assert sorted(c["data"]["k"] for c in callbacks) == ["complete", "success"]
