"""Flow control on Redis Cluster: a queue's groups, windows and counts live in its hash slot,
so grouped, limited, delayed, retried and deduplicated jobs over queues on different shards,
and the waiting listing, search and clean that go through the groups, raise no CROSSSLOT
error."""

from __future__ import annotations

import collections

import pytest
from tests.support.conveyor_helpers import running
from tests.support.topologies import ClusterSetup
from tests.support.waiting import async_wait_for

from conveyor import Dedupe, Job, Queue, RateLimit, RateLimited, Retry, Worker
from conveyor.admin import Admin

pytestmark = [pytest.mark.fault, pytest.mark.timeout(120)]


async def test_groups_and_limits_on_queues_across_shards(
    cluster: ClusterSetup, key_prefix: str
) -> None:
    queues = [Queue(f"f{i}", url=cluster.url, prefix=key_prefix) for i in range(6)]
    runs: collections.Counter[str] = collections.Counter()
    active: collections.Counter[tuple[str, str]] = collections.Counter()
    peak: collections.Counter[tuple[str, str]] = collections.Counter()

    async def work(job: Job) -> str:
        runs[job.id] += 1
        key = (job.queue, job.group or "")
        active[key] += 1
        peak[key] = max(peak[key], active[key])
        try:
            if job.data.get("limited") and runs[job.id] == 1:
                raise RateLimited(delay=0.1)
            if job.data.get("flaky") and runs[job.id] == 1:
                raise Retry(delay=0.05)
            return job.queue
        finally:
            active[key] -= 1

    try:
        for q in queues:
            await q.set_rate_limit(RateLimit(1000, per=1))
            await q.set_group_defaults(concurrency=1)
            await q.set_group("wide", concurrency=3, weight=2)
        jobs: list[Job] = []
        for q in queues:
            jobs += await q.add_bulk(
                [{"name": "w", "data": {"n": n}, "group": f"g{n % 3}"} for n in range(12)]
            )
            jobs.append(await q.add("w", {"limited": True}, group="g0"))
            jobs.append(await q.add("w", {"flaky": True}, group="wide", attempts=2))
            jobs.append(await q.add("w", {}, group="wide", delay=0.2))
            jobs.append(await q.add("w", {}))
        before = cluster.crossslot_errors()
        async with running(Worker(queues, {"w": work}, concurrency=20)):
            for job in jobs:
                assert await job.wait(timeout=30) == job.queue
        for q in queues:
            await async_wait_for(lambda q=q: _idle(q), timeout=10)
        assert all(peak[(q.name, f"g{i}")] == 1 for q in queues for i in range(3))
        assert cluster.crossslot_errors() == before == 0
    finally:
        for q in queues:
            await q.close()


async def _idle(queue: Queue) -> bool:
    groups = await queue.groups()
    return all(g.active == 0 and g.waiting == 0 for g in groups)


async def test_the_waiting_listing_search_clean_and_deduped_adds_of_groups_across_shards(
    cluster: ClusterSetup, key_prefix: str
) -> None:
    queues = [Queue(f"l{i}", url=cluster.url, prefix=key_prefix) for i in range(4)]
    admin = Admin(cluster.url, prefix=key_prefix)
    try:
        before = cluster.crossslot_errors()
        for q in queues:
            await q.set_group("small", max_size=5)
            await q.add_bulk([{"name": "w", "data": n, "group": f"g{n % 3}"} for n in range(9)])
            await q.add("w", "plain")
            first = await q.add("w", "d", group="small", dedupe=Dedupe.until_finished("k"))
            again = await q.add("w", "d", group="small", dedupe=Dedupe.until_finished("k"))
            assert again.deduplicated and again.id == first.id
            listed = await q.get_jobs("waiting", 0, -1, newest_first=False)
            assert len(listed) == (await q.counts())["waiting"] == 11
            assert listed[0].data == "plain"
            found = await admin.search_jobs(q.name, "waiting", text='"d"', size=5)
            assert [j["id"] for j in found.jobs] == [first.id]
            assert await q.clean("waiting") == 11
            assert (await q.counts())["waiting"] == 0
            assert [g.name for g in await q.groups()] == ["small"]  # its settings stay
        assert cluster.crossslot_errors() == before == 0
    finally:
        await admin.close()
        for q in queues:
            await q.close()
