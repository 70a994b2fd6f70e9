"""A worker whose link to Redis is cut, slowed down or reset (through tests/support/tcp_proxy.py).

The worker under test reaches Redis only through the proxy; its ledger (which jobs started and
ran where) and every other worker talk to Redis directly.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from typing import Any

import pytest
from tests.support.processes import SpawnedProcess
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import async_wait_for

from conveyor import JobState, Queue

StartWorker = Callable[..., SpawnedProcess]
Ledger = Callable[..., Any]


def via(proxy: TcpProxy, redis_url: str) -> dict[str, Any]:
    """Worker env: Redis through the proxy, the ledger direct."""
    return {"url": proxy.url, "record_url": redis_url}


async def completed(queue: Queue) -> int:
    return (await queue.counts())["completed"]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("socket_timeout", [1, 10])  # 10 s: the default
async def test_cut_off_worker_loses_its_lease_then_reconnects_by_itself_when_healed(
    start_worker: StartWorker,
    jobs_queue: Queue,
    ledger: Ledger,
    proxy: TcpProxy,
    redis_url: str,
    socket_timeout: int,
) -> None:
    a = start_worker("A", lease=1, socket_timeout=socket_timeout, **via(proxy, redis_url))
    job = await jobs_queue.add("record", {"sleep": 3})
    await async_wait_for(lambda: ledger("started"), timeout=10, message="A never started")
    proxy.drop()
    cut_at = time.monotonic()
    b = start_worker("B", lease=1)
    assert await job.wait(timeout=20) == {"worker": "B"}  # A's lease ran out, B re-ran it
    b.terminate()
    # A is still cut off: its heartbeats, renewals and acknowledgement all failed meanwhile.
    await async_wait_for(
        lambda: "Redis is unreachable" in a.stderr(),
        timeout=10,
        message=lambda: f"A never noticed the cut:\n{a.stderr()}",
    )
    assert time.monotonic() - cut_at > 1  # the cut outlasted A's lease
    proxy.heal()
    healed_at = time.monotonic()
    after = await jobs_queue.add_bulk([{"name": "record", "data": {"i": i}} for i in range(20)])
    await async_wait_for(
        lambda: _at_least(completed(jobs_queue), 21),
        timeout=30,
        interval=0.05,
        message=lambda: f"A did not resume after the heal:\n{a.stderr()}",
    )
    resumed_in = time.monotonic() - healed_at
    assert a.alive, a.describe()
    # Its beats notice the heal within a beat or two, and it ends the requests and the wait
    # the cut left hanging rather than sit out their read timeouts (11-20 s).
    assert resumed_in < 5, f"resumed {resumed_in:.2f} s after the heal:\n{a.stderr()}"
    ran = await ledger("ran")
    assert {w for j, w in ran if j in {x.id for x in after}} == {"A"}  # A did the new work
    # A's late completion of the first job was refused by the fencing token.
    await async_wait_for(
        lambda: "was lost before it finished" in a.stderr(),
        timeout=15,
        message=lambda: f"A never reported its stale outcome as refused:\n{a.stderr()}",
    )
    done = await jobs_queue.get_job(job.id)
    assert done is not None and done.result == {"worker": "B"} and done.attempts_made == 1
    print(f"socket timeout {socket_timeout} s: resumed {resumed_in:.2f} s after the link healed")


@pytest.mark.timeout(90)
async def test_connection_resets_under_load_lose_nothing_and_run_nothing_twice(
    start_worker: StartWorker,
    jobs_queue: Queue,
    ledger: Ledger,
    proxy: TcpProxy,
    redis_url: str,
) -> None:
    a = start_worker("A", lease=1, concurrency=10, **via(proxy, redis_url))
    # Jobs of 50-90 ms on 10 slots: at most about 20 complete between two resets, so reaching
    # 200 takes many resets however fast the worker reconnects (with 0-40 ms jobs on 20 slots,
    # a quick worker once got there after 4).
    jobs = await jobs_queue.add_bulk(
        [{"name": "record", "data": {"sleep": 0.05 + 0.01 * (i % 5)}} for i in range(400)]
    )
    resets = 0
    # Reset every connection of the worker again and again while it works through the jobs.
    while await completed(jobs_queue) < 200 and resets < 200:
        await async_wait_for(lambda: proxy.links, timeout=10, message="A never reconnected")
        before = await completed(jobs_queue)
        resets += proxy.reset()
        await async_wait_for(
            lambda n=before + 1: _at_least(completed(jobs_queue), n),  # type: ignore[misc]
            timeout=10,
            message="no progress after a reset",
        )
    assert resets >= 5
    await async_wait_for(
        lambda: _at_least(completed(jobs_queue), 400),
        timeout=40,
        interval=0.05,
        message=lambda: f"not every job completed after the resets:\n{a.stderr()[-3000:]}",
    )
    assert a.alive, a.describe()
    ran = collections.Counter(job_id for job_id, _ in await ledger("ran"))
    assert set(ran) == {j.id for j in jobs}  # lost = 0
    duplicates = sum(n - 1 for n in ran.values())
    # A handler runs only after its fetch reply arrived, so a reset can delay a job (its lease
    # must expire first) but not start it twice.
    assert duplicates == 0, ran.most_common(5)
    counts = await jobs_queue.counts()
    assert (counts["waiting"], counts["active"], counts["failed"]) == (0, 0, 0)
    print(f"{resets} connection resets, 400 of 400 completed, {duplicates} duplicates")


@pytest.mark.timeout(90)
async def test_500ms_of_latency_each_way_expires_no_lease(
    start_worker: StartWorker,
    jobs_queue: Queue,
    ledger: Ledger,
    proxy: TcpProxy,
    redis_url: str,
) -> None:
    a = start_worker("A", lease=4, **via(proxy, redis_url))
    # The worker starts on a fast link and publishes its first heartbeat (a start-up over the
    # slow one costs several round trips per connection, time that proves nothing about
    # leases); from then on every byte it sends or gets takes 500 ms each way.
    await async_wait_for(
        lambda: jobs_queue.redis.command("ZCARD", jobs_queue.commands.keys.workers),
        timeout=30,
        message="A never sent a heartbeat",
    )
    proxy.delay(0.5)  # a 1 s round trip, against a 4 s lease renewed every 4/3 s
    jobs = await jobs_queue.add_bulk([{"name": "record", "data": {"sleep": 9}}] * 5)
    await async_wait_for(
        lambda: _at_least(_count(ledger("started")), 5), timeout=20, message="A took fewer than 5"
    )
    # A live worker on a direct link, watching A's beats arrive late (every ~1.5 s, against a
    # 4 s liveness and a 1 s grace) through a connection that stays open.
    b = start_worker("B")
    await async_wait_for(
        lambda: _at_least(completed(jobs_queue), 5),
        timeout=40,
        interval=0.1,
        message="the slow link stopped the jobs",
    )
    for job in jobs:
        done = await jobs_queue.get_job(job.id)
        assert done is not None and done.state is JobState.COMPLETED
        assert done.stalls == 0, f"job {job.id} lost its lease to latency"
    assert len(await ledger("started")) == 5  # nobody ran them a second time
    assert "is dead" not in b.stderr(), b.stderr()
    assert "taken for dead" not in a.stderr(), a.stderr()
    # Stop A here, over a healed link: at teardown the proxy closes first, and A would spend
    # the whole stop timeout failing to say goodbye.
    proxy.heal()
    a.terminate()


@pytest.mark.timeout(90)
async def test_a_black_holed_workers_job_runs_elsewhere_within_seconds(
    start_worker: StartWorker,
    jobs_queue: Queue,
    ledger: Ledger,
    proxy: TcpProxy,
    redis_url: str,
) -> None:
    # Default lease and liveness; A's connections stay open (the proxy swallows every byte),
    # so only the silence of its beats tells.
    a = start_worker("A", socket_timeout=2, **via(proxy, redis_url))
    job = await jobs_queue.add("record", {"sleep": 8})
    await async_wait_for(lambda: ledger("started"), timeout=10, message="A never started")
    b = start_worker("B")
    await asyncio.sleep(0.6)  # B judges silence against its own previous beat
    proxy.drop()
    cut_at = time.monotonic()
    await async_wait_for(
        lambda: _started_on(ledger, "B"),
        timeout=15,
        interval=0.02,
        message=lambda: f"B never took the cut-off worker's job:\n{b.stderr()}",
    )
    took = time.monotonic() - cut_at
    assert took < 8, f"re-delivery took {took:.2f} s"
    assert await job.wait(timeout=10) == {"worker": "B"}
    proxy.heal()
    # A is back: it learns it was taken for dead, and its late completion is refused.
    await async_wait_for(
        lambda: "taken for dead" in a.stderr() and "was lost before it finished" in a.stderr(),
        timeout=30,
        message=lambda: f"A never reported being reclaimed:\n{a.stderr()}",
    )
    done = await jobs_queue.get_job(job.id)
    assert done is not None and done.result == {"worker": "B"} and done.attempts_made == 1
    assert a.alive, a.describe()
    print(f"re-delivered {took:.2f} s after the black hole")


async def _started_on(ledger: Ledger, worker: str) -> bool:
    return any(w == worker for _, w in await ledger("started"))


async def _count(entries: Any) -> int:
    return len(await entries)


async def _at_least(value: Any, n: int) -> bool:
    return await value >= n
