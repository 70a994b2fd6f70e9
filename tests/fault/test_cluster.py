"""Redis Cluster: many queues spread over 3 masters, zero CROSSSLOT errors, a replica promotion.

One queue's keys share the hash tag ``{<queue>}``, so each queue lives on one shard and all of
its scripts run there; load spreads across shards by using several queues.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from tests.support.conveyor_helpers import running
from tests.support.topologies import ClusterSetup, command
from tests.support.waiting import async_wait_for, wait_for

from conveyor import Job, JobFailed, JobState, Queue, Retry, Worker
from conveyor.admin import Admin
from conveyor.errors import ConnectionError

pytestmark = pytest.mark.timeout(120)

QUEUES = [f"q{i}" for i in range(12)]


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterSetup]:
    # Its own, with replicas for the failovers (not conftest.py's 3 masters without replicas).
    with ClusterSetup(masters=3, replicas=1) as setup:
        yield setup


def shard_of(cluster: ClusterSetup, queue: str) -> int:
    """The port of the master that owns the queue's hash slot (a fresh view of the cluster)."""
    port = next(p for p, role in cluster.roles().items() if role == "master")
    client = redis.RedisCluster(host="127.0.0.1", port=port)
    try:
        return int(client.get_node_from_key(f"{{{queue}}}").port)
    finally:
        client.close()


async def test_core_scenarios_on_many_queues_across_shards_without_crossslot(
    cluster: ClusterSetup, key_prefix: str
) -> None:
    shards = {shard_of(cluster, name) for name in QUEUES}
    assert len(shards) == 3, "the queues should spread over all three masters"
    before = cluster.crossslot_errors()
    queues = [Queue(name, url=cluster.url, prefix=key_prefix) for name in QUEUES]
    calls: collections.Counter[str] = collections.Counter()

    async def work(job: Job) -> dict[str, Any]:
        calls[job.id] += 1
        if job.data.get("flaky") and calls[job.id] == 1:
            raise Retry(delay=0.05)
        await job.update_progress(100)
        await job.log("done")
        return {"queue": job.queue, "n": job.data["n"]}

    worker = Worker(queues, {"work": work}, concurrency=20)
    async with running(worker):
        jobs: list[Job] = []
        for q in queues:
            jobs.append(await q.add("work", {"n": 0}))
            jobs += await q.add_bulk([{"name": "work", "data": {"n": n}} for n in range(1, 20)])
            jobs.append(await q.add("work", {"n": 20}, delay=0.2))
            jobs.append(await q.add("work", {"n": 21, "flaky": True}, attempts=2))
        results = await asyncio.gather(*(job.wait(timeout=30) for job in jobs))
        assert sorted((r["queue"], r["n"]) for r in results) == sorted(
            (q, n) for q in QUEUES for n in range(22)
        )
        # Pause, resume, inspect, fail for good, retry from failed, obliterate: per queue.
        q0 = queues[0]
        await q0.pause()
        held = await q0.add("work", {"n": 99})
        assert (await q0.counts())["waiting"] == 1 and (await q0.counts())["paused"] == 1
        await q0.resume()
        assert (await held.wait(timeout=10))["n"] == 99
        bad = await queues[1].add("missing-handler", {"n": 1}, attempts=1)
        with pytest.raises(JobFailed):
            await bad.wait(timeout=10)
        await queues[1].retry(bad.id)
        got = await queues[1].get_job(bad.id)
        assert got is not None and got.state in (JobState.WAITING, JobState.ACTIVE, JobState.FAILED)
    async with Admin(cluster.url, prefix=key_prefix) as admin:
        overview = await admin.overview()
        assert {q["name"] for q in overview} == set(QUEUES)
        assert sum(q["counts"]["completed"] for q in overview) == len(jobs) + 1
    deleted = await queues[2].obliterate()
    assert deleted > 0 and (await queues[2].counts())["completed"] == 0
    for q in queues:
        await q.close()
    assert cluster.crossslot_errors() == before == 0


async def test_producers_and_workers_survive_a_replica_promotion(
    cluster: ClusterSetup, key_prefix: str
) -> None:
    name = "promoted"
    master = shard_of(cluster, name)
    queue = Queue(name, url=cluster.url, prefix=key_prefix, socket_timeout_seconds=2.0)
    ran: collections.Counter[str] = collections.Counter()

    async def work(job: Job) -> None:
        ran[job.id] += 1

    acked: list[str] = []
    errors = 0
    stop = asyncio.Event()

    async def produce() -> None:
        nonlocal errors
        i = 0
        while not stop.is_set():
            try:
                acked.append((await queue.add("work", {"i": i})).id)
            except ConnectionError:
                errors += 1
                await asyncio.sleep(0.05)  # a retry pause, not a wait for a condition
            i += 1

    worker = Worker(Queue(name, url=cluster.url, prefix=key_prefix), {"work": work})
    async with running(worker):
        producer = asyncio.create_task(produce())
        try:
            await async_wait_for(lambda: len(acked) >= 200, timeout=30)
            replica = _replica_of(cluster, master)
            command(replica, "CLUSTER", "FAILOVER")  # the replica takes over, the master steps down
            promoted_at = time.monotonic()
            await asyncio.to_thread(
                wait_for,
                lambda: cluster.roles().get(replica) == "master",
                30,
                0.1,
                "the replica was never promoted",
            )
            count = len(acked)
            await async_wait_for(
                lambda: len(acked) >= count + 200,
                timeout=30,
                message="the producer did not follow the promotion",
            )
            followed_in = time.monotonic() - promoted_at
        finally:
            stop.set()
            await producer
        await async_wait_for(
            lambda: set(acked) <= set(ran), timeout=30, message="acknowledged jobs never ran"
        )
    assert shard_of(cluster, name) == replica
    await queue.close()
    duplicated = sum(n - 1 for n in ran.values())
    print(
        f"replica promotion: acknowledged {len(acked)}, lost 0, duplicated {duplicated}, "
        f"failed adds {errors}, producer followed in {followed_in:.2f} s"
    )


def _replica_of(cluster: ClusterSetup, master_port: int) -> int:
    for port, role in cluster.roles().items():
        if role == "slave":
            info = command(port, "INFO", "replication")
            if f"master_port:{master_port}" in info:
                return port
    raise AssertionError(f"no replica of {master_port}")
