"""Redis itself fails: killed under load (AOF on), restarted empty, full, down, forgetful.

Each test starts its own redis-server (``make_redis``) so it may kill and restart it; the
worker processes' ledger lives on the session server, outside the Redis under test.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from tests.support.processes import SpawnedProcess
from tests.support.redis_server import RedisServer
from tests.support.waiting import async_wait_for

from conveyor import Queue, SyncQueue
from conveyor.errors import ConnectionError, OutOfMemory
from conveyor.web import create_app

StartWorker = Callable[..., SpawnedProcess]
Ledger = Callable[..., Any]
MakeRedis = Callable[..., RedisServer]

DATA_LOSS_LOG = "Redis lost this queue's data"


@pytest.fixture
async def api(key_prefix: str) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    """``api(redis_url)``: an HTTP client of the JSON API on that Redis."""
    clients: list[httpx.AsyncClient] = []

    def make(url: str) -> httpx.AsyncClient:
        app = create_app(url=url, prefix=key_prefix)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1234))
        client = httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def _ran_ids(ledger: Ledger) -> collections.Counter[str]:
    return collections.Counter(job_id for job_id, _ in await ledger("ran"))


@pytest.mark.timeout(120)
async def test_redis_sigkill_under_load_with_aof_always_keeps_every_acknowledged_job(
    make_redis: MakeRedis,
    start_worker: StartWorker,
    ledger: Ledger,
    key_prefix: str,
    redis_url: str,
) -> None:
    server = make_redis(appendonly=True, appendfsync="always")
    env = {"url": server.url, "record_url": redis_url, "lease": 2, "socket_timeout": 2}
    workers = [start_worker(name, **env) for name in ("A", "B")]
    queue = Queue("jobs", url=server.url, prefix=key_prefix, socket_timeout_seconds=2)
    acked: list[str] = []
    failures = 0
    stop = asyncio.Event()

    async def produce() -> None:
        nonlocal failures
        i = 0
        while not stop.is_set():
            try:
                acked.append((await queue.add("record", {"i": i, "sleep": 0.02})).id)
            except ConnectionError:
                failures += 1  # outcome unknown: the job may or may not be stored
                await asyncio.sleep(0.02)  # a retry pause, not a wait for a condition
            i += 1

    producer = asyncio.create_task(produce())
    try:
        await async_wait_for(lambda: len(acked) >= 300, timeout=30, message="producer stuck")
        server.kill()
        acked_at_kill = len(acked)
        ran_at_kill = len(await ledger("ran"))
        server.start()  # same port and directory: the AOF is replayed
        restarted_at = time.monotonic()
        await async_wait_for(
            lambda: len(acked) > acked_at_kill,
            timeout=20,
            message="the producer did not reconnect by itself",
        )
        producer_back = time.monotonic() - restarted_at
        await async_wait_for(
            lambda: _more_than(ledger("ran"), ran_at_kill + 10),
            timeout=20,
            message="the workers did not reconnect by themselves",
        )
        workers_back = time.monotonic() - restarted_at
        await async_wait_for(lambda: len(acked) >= acked_at_kill + 300, timeout=30)
    finally:
        stop.set()
        await producer
    await async_wait_for(
        lambda: _contains_all(_ran_ids(ledger), acked),
        timeout=30,
        interval=0.1,
        message="some acknowledged jobs never ran",
    )
    ran = await _ran_ids(ledger)
    lost = set(acked) - set(ran)
    duplicated = sum(n - 1 for n in ran.values())
    recovered = len(set(ran) - set(acked))  # enqueue raised, but the job was stored and ran
    assert not lost
    # Only jobs running at the kill can run twice (their lease may expire before the ack).
    assert duplicated <= 2 * 10, ran.most_common(5)
    for worker in workers:
        assert worker.alive, worker.describe()
        assert DATA_LOSS_LOG not in worker.stderr()  # AOF kept the data: no false alarm
    counts = await queue.counts()
    assert counts["failed"] == 0
    await queue.close()
    print(
        f"acknowledged {len(acked)}, lost {len(lost)}, duplicated {duplicated}, "
        f"recovered {recovered}, failed enqueues during the outage {failures}, "
        f"producer back {producer_back:.2f} s, workers back {workers_back:.2f} s"
    )


@pytest.mark.timeout(60)
async def test_redis_sigkill_under_concurrent_adds_keeps_every_job_an_add_returned(
    make_redis: MakeRedis, key_prefix: str
) -> None:
    """Many tasks adding at once share calls, several in flight at a time: a kill fails every
    call then in flight, each of its adds raises, and every add that returned a job is stored
    (AOF always); the adds go on by themselves once Redis is back."""
    server = make_redis(appendonly=True, appendfsync="always")
    queue = Queue("jobs", url=server.url, prefix=key_prefix, socket_timeout_seconds=2)
    returned: list[str] = []
    raised = 0
    stop = asyncio.Event()

    async def produce(k: int) -> None:
        nonlocal raised
        n = 0
        while not stop.is_set():
            try:
                returned.append((await queue.add("record", {"k": k, "n": n})).id)
            except ConnectionError:
                raised += 1  # outcome unknown: the job may or may not be stored
                await asyncio.sleep(0.05)  # a retry pause, not a wait for a condition
            n += 1

    producers = [asyncio.create_task(produce(k)) for k in range(50)]
    try:
        await async_wait_for(lambda: len(returned) >= 5000, timeout=30, message="adds stuck")
        server.kill()
        at_kill = len(returned)
        server.start()  # same port and directory: the AOF is replayed
        await async_wait_for(
            lambda: len(returned) >= at_kill + 5000,
            timeout=20,
            message="the adds did not come back by themselves",
        )
    finally:
        stop.set()
        await asyncio.gather(*producers)
    assert raised > 0  # the kill did meet adds in flight
    assert len(set(returned)) == len(returned)
    stored = await queue.get_jobs("waiting", 0, -1)
    missing = set(returned) - {job.id for job in stored}
    assert not missing, f"{len(missing)} of {len(returned)} returned adds are not stored"
    await queue.close()
    print(f"adds returned {len(returned)}, raised {raised}")


@pytest.mark.timeout(90)
async def test_redis_restarted_empty_workers_and_api_say_so_loudly(
    make_redis: MakeRedis,
    start_worker: StartWorker,
    key_prefix: str,
    redis_url: str,
    api: Callable[[str], httpx.AsyncClient],
) -> None:
    server = make_redis()  # no persistence at all
    worker = start_worker("A", url=server.url, record_url=redis_url, lease=0.6)
    queue = Queue("jobs", url=server.url, prefix=key_prefix)
    client = api(server.url)
    job = await queue.add("record")
    assert await job.wait(timeout=10) == {"worker": "A"}
    await async_wait_for(
        lambda: queue.redis.command("HGET", queue.commands.keys.meta, "epoch"),
        timeout=10,
        message="the worker never set the queue epoch",
    )
    healthy = await client.get("/api/health")
    assert healthy.status_code == 200 and healthy.json()["status"] == "ok"

    await queue.add("record", {"sleep": 60})  # a queued job, about to vanish
    server.restart()  # SHUTDOWN NOSAVE, no AOF: Redis comes back empty
    restarted_at = time.monotonic()
    await async_wait_for(
        lambda: DATA_LOSS_LOG in worker.stderr(),
        timeout=15,
        message=lambda: f"the worker did not notice:\n{worker.stderr()}",
    )
    detected_in = time.monotonic() - restarted_at
    assert "ERROR" in worker.stderr()
    health = await client.get("/api/health")
    assert health.status_code == 503, health.text
    body = health.json()
    assert body["error"]["code"] == "data_loss" and body["status"] == "data_loss"
    assert [loss["queue"] for loss in body["data_loss"]] == ["jobs"]
    assert body["data_loss"][0]["noticed_by"] not in ("", "api")  # the worker's id
    # The worker carries on with the new, empty Redis.
    after = await queue.add("record", {"n": 1})
    assert await after.wait(timeout=10) == {"worker": "A"}
    assert worker.alive
    # A fresh API process (no memory of the old epoch) still sees the recorded loss...
    fresh = api(server.url)
    assert (await fresh.get("/api/health")).status_code == 503
    # ...until an operator acknowledges it.
    from conveyor.admin import Admin

    async with Admin(server.url, prefix=key_prefix) as admin:
        assert await admin.acknowledge_data_loss("jobs")
    assert (await fresh.get("/api/health")).status_code == 200
    await queue.close()
    print(f"worker reported the data loss {detected_in:.2f} s after the restart")
    worker.kill()  # it may hold the 60 s job, if it fetched it in time: no graceful stop to wait


@pytest.mark.timeout(60)
async def test_redis_flushed_with_no_worker_running_the_api_notices_by_itself(
    make_redis: MakeRedis,
    start_worker: StartWorker,
    key_prefix: str,
    redis_url: str,
    api: Callable[[str], httpx.AsyncClient],
) -> None:
    server = make_redis()
    worker = start_worker("A", url=server.url, record_url=redis_url, lease=0.6)
    queue = Queue("jobs", url=server.url, prefix=key_prefix)
    await (await queue.add("record")).wait(timeout=10)
    client = api(server.url)
    await async_wait_for(
        lambda: queue.redis.command("HGET", queue.commands.keys.meta, "epoch"),
        timeout=10,
        message="the worker never set the queue epoch",
    )
    assert await _health_status(client, 200)  # the API has seen the epoch
    worker.terminate()
    await queue.redis.command("FLUSHALL")
    health = await client.get("/api/health")
    assert health.status_code == 503, health.text
    assert health.json()["data_loss"][0]["noticed_by"] == "api"
    await queue.close()


@pytest.mark.timeout(60)
async def test_redis_at_maxmemory_refuses_adds_clearly_and_deletes_nothing(
    make_redis: MakeRedis, key_prefix: str
) -> None:
    server = make_redis(maxmemory="4mb", maxmemory_policy="noeviction")
    queue = Queue("jobs", url=server.url, prefix=key_prefix)
    added = 0
    with pytest.raises(OutOfMemory, match="out of memory") as refused:
        for _ in range(1000):
            await queue.add_bulk([{"name": "record", "data": {"pad": "x" * 1000}}] * 50)
            added += 50
    assert "maxmemory" in str(refused.value)
    assert added > 0
    # All or nothing: every acknowledged job is there, the refused batch left no trace.
    counts = await queue.counts()
    assert counts["waiting"] == added
    jobs = await queue.redis.command("EVAL", _COUNT_JOB_HASHES, 0, f"{key_prefix}:{{jobs}}:job:*")
    assert jobs == added
    # Room again (an operator raised the limit): adding works without reconnecting.
    server.command("CONFIG", "SET", "maxmemory", "0")
    await queue.add("record", {"after": True})
    assert (await queue.counts())["waiting"] == added + 1
    await queue.close()


_COUNT_JOB_HASHES = """
local n, cursor = 0, "0"
repeat
  local reply = redis.call("SCAN", cursor, "MATCH", ARGV[1], "COUNT", 1000)
  cursor = reply[1]
  n = n + #reply[2]
until cursor == "0"
return n
"""


@pytest.mark.timeout(30)
async def test_redis_down_add_fails_fast_with_a_clear_error(
    make_redis: MakeRedis, key_prefix: str
) -> None:
    server = make_redis(appendonly=True, appendfsync="always")
    queue = Queue("jobs", url=server.url, prefix=key_prefix)
    await queue.add("record")
    server.kill()
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="Redis is unreachable"):
        await queue.add("record")
    assert time.monotonic() - started < 2.0
    sync_queue = SyncQueue("jobs", url=server.url, prefix=key_prefix)
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="Redis is unreachable"):
        sync_queue.add("record")
    assert time.monotonic() - started < 2.0
    server.start()
    await queue.add("record")  # and it comes back by itself
    assert (await queue.counts())["waiting"] == 2
    await queue.close()
    sync_queue.close()


@pytest.mark.timeout(30)
async def test_redis_that_forgot_its_scripts_costs_one_extra_round_trip_per_pipeline(
    make_redis: MakeRedis, key_prefix: str
) -> None:
    server = make_redis()
    queue = Queue("jobs", url=server.url, prefix=key_prefix)
    c = queue.commands
    ops = [c.extend_leases([]), c.heartbeat("w", "{}", 10), c.recover_stalled()]
    await queue.redis.run_many(ops)
    await queue.redis.command("SCRIPT", "FLUSH")  # what a restart or failover does
    await queue.redis.command("CONFIG", "RESETSTAT")
    await queue.redis.run_many(ops)
    stats = await queue.redis.command("INFO", "commandstats")
    # One pipeline of EVALSHA (all NOSCRIPT), then one pipeline of EVAL: not 2 trips per script.
    assert stats["cmdstat_evalsha"]["calls"] == 3
    assert stats["cmdstat_eval"]["calls"] == 3
    await queue.close()


async def _more_than(entries: Any, n: int) -> bool:
    return len(await entries) > n


async def _contains_all(counter: Any, ids: list[str]) -> bool:
    return set(ids) <= set(await counter)


async def _health_status(client: httpx.AsyncClient, status: int) -> bool:
    return (await client.get("/api/health")).status_code == status
