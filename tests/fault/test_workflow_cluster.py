"""Workflows on a Redis Cluster: a flow whose children and grandchildren live on queues on
other masters, and a batch whose callback goes to another master, complete without a single
CROSSSLOT error (every script runs on one queue's node; the steps between nodes are
separate, idempotent calls)."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from tests.support.conveyor_helpers import running
from tests.support.topologies import ClusterSetup
from tests.support.waiting import async_wait_for

from conveyor import Callback, FlowJob, Job, JobState, Queue, Worker

pytestmark = [pytest.mark.fault, pytest.mark.timeout(120)]


def _queues_on_distinct_shards(cluster: ClusterSetup, count: int) -> list[str]:
    port = next(iter(cluster.roles()))
    client = redis.RedisCluster(host="127.0.0.1", port=port)
    try:
        chosen: dict[int, str] = {}
        for i in range(200):
            shard = int(client.get_node_from_key(f"{{wq{i}}}").port)
            chosen.setdefault(shard, f"wq{i}")
            if len(chosen) == count:
                return list(chosen.values())
    finally:
        client.close()
    raise AssertionError("could not find queues on distinct shards")


async def test_a_flow_and_a_batch_across_shards(cluster: ClusterSetup, key_prefix: str) -> None:
    top, mid, low = _queues_on_distinct_shards(cluster, 3)
    before = cluster.crossslot_errors()
    queues = {name: Queue(name, url=cluster.url, prefix=key_prefix) for name in (top, mid, low)}
    callbacks: list[Any] = []

    async def leaf(job: Job) -> int:
        return int(job.data["n"])

    async def gather(job: Job) -> int:
        return sum((await job.children_results()).values())

    async def callback(job: Job) -> None:
        callbacks.append(job.data)

    flow = FlowJob(
        "gather",
        job_id="root",
        children=[
            FlowJob(
                "gather",
                queue=mid,
                job_id="mid",
                children=[FlowJob("leaf", {"n": n}, queue=low) for n in range(5)],
            ),
            FlowJob("leaf", {"n": 100}, queue=low),
        ],
    )
    await queues[top].add_flow(flow)
    batch = await queues[mid].add_batch(
        [{"name": "leaf", "data": {"n": n}} for n in range(20)],
        on_complete=Callback("callback", {"k": 1}, queue=low),
    )
    worker = Worker(list(queues.values()), {"leaf": leaf, "gather": gather, "callback": callback})
    async with running(worker):

        async def done() -> bool:
            root = await queues[top].get_job("root")
            return root is not None and root.state is JobState.COMPLETED and bool(callbacks)

        await async_wait_for(done, timeout=60, interval=0.05)
    root = await queues[top].get_job("root")
    assert root is not None and root.result == sum(range(5)) + 100
    info = await queues[mid].get_batch(batch.id)
    assert info is not None and (info.completed, info.state) == (20, "success")
    assert callbacks == [
        {"data": {"k": 1}, "batch": {"id": batch.id, "total": 20, "completed": 20, "failed": 0}}
    ]
    for queue in queues.values():
        await queue.close()
    assert cluster.crossslot_errors() == before == 0
