"""Worker liveness on Redis Cluster: a SIGKILLed worker's jobs start again elsewhere as fast as
on one server. CLIENT LIST answers for the node it reaches, so each checker sends it to the node
that holds the queue's slot, where the dead worker's named connections were."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from tests.support.processes import SpawnedProcess
from tests.support.topologies import ClusterSetup
from tests.support.waiting import async_wait_for

from conveyor import Queue

pytestmark = [pytest.mark.fault, pytest.mark.timeout(120)]

StartWorker = Callable[..., SpawnedProcess]
Ledger = Callable[..., Any]


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterSetup]:
    with ClusterSetup(masters=3, replicas=0) as setup:
        yield setup


def one_queue_per_shard(cluster: ClusterSetup) -> list[str]:
    """Queue names whose hash slots lie on each of the masters, one per master."""
    port = next(iter(cluster.roles()))
    client = redis.RedisCluster(host="127.0.0.1", port=port)
    try:
        names: dict[int, str] = {}
        for i in range(100):
            names.setdefault(int(client.get_node_from_key(f"{{l{i}}}").port), f"l{i}")
        return list(names.values())
    finally:
        client.close()


async def test_sigkill_on_a_cluster_runs_the_killed_workers_jobs_within_seconds(
    cluster: ClusterSetup,
    start_worker: StartWorker,
    ledger: Ledger,
    redis_url: str,
    key_prefix: str,
) -> None:
    names = one_queue_per_shard(cluster)
    assert len(names) == 3
    env = {"url": cluster.url, "record_url": redis_url, "queue": names[0]}
    env["more_queues"] = ",".join(names[1:])
    queues = [Queue(name, url=cluster.url, prefix=key_prefix) for name in names]
    try:
        a = start_worker("A", **env)  # default settings: a 30 s lease, 4 s liveness
        # Ids of their own: the worker app's ledger counts starts by job id.
        jobs = [await q.add("record", {"sleep": 60}, job_id=f"{q.name}-1") for q in queues]
        await async_wait_for(
            lambda: _started(ledger, "A", 3), timeout=15, message="A never started its jobs"
        )
        b = start_worker("B", **env)
        await asyncio.sleep(0.6)  # B judges silence against its own previous beat
        a.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        await async_wait_for(
            lambda: _started(ledger, "B", 3),
            timeout=15,
            interval=0.02,
            message=lambda: f"B never took all of the killed worker's jobs:\n{b.stderr()}",
        )
        took = time.monotonic() - killed_at
        assert took < 4, f"re-delivery took {took:.2f} s"  # as on one server
        for job in jobs:
            assert await job.wait(timeout=15) == {"worker": "B"}
        # Found by its connections on each shard, not by the 4 s silence.
        assert b.stderr().count("is dead (no connection left") == 3, b.stderr()
        print(f"re-delivered on 3 shards {took:.2f} s after SIGKILL")
    finally:
        for q in queues:
            await q.close()


async def _started(ledger: Ledger, worker: str, count: int) -> bool:
    return sum(w == worker for _, w in await ledger("started")) >= count
