"""The admin model (``conveyor.admin.Admin``) against a real Redis: bulk actions, data-loss
records and the reads behind ``conveyor info``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from tests.support.conveyor_helpers import running, worker
from tests.support.redis_server import RedisServer
from tests.support.waiting import async_wait_for

from conveyor import Queue
from conveyor.admin import BULK_CHUNK, Admin
from conveyor.storage.keys import QueueKeys

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def admin(redis_url: str, key_prefix: str) -> AsyncIterator[Admin]:
    async with Admin(redis_url, prefix=key_prefix) as a:
        yield a


async def boom(job: Any) -> None:
    raise RuntimeError("nope")


async def _failed_jobs(queue: Queue, n: int) -> list[str]:
    jobs = await queue.add_bulk([{"name": "boom", "data": i} for i in range(n)])
    async with running(worker(queue, {"boom": boom}, concurrency=20)):
        await async_wait_for(
            lambda: _state_count(queue, "failed", n), timeout=30, message="jobs did not fail"
        )
    return [job.id for job in jobs]


async def _state_count(queue: Queue, state: str, want: int) -> bool:
    return (await queue.counts())[state] == want


def _evalsha_calls(server: RedisServer) -> int:
    stats = server.command("INFO", "commandstats").decode()
    for line in stats.splitlines():
        if line.startswith("cmdstat_evalsha:"):
            return int(line.split("calls=", 1)[1].split(",", 1)[0])
    return 0


async def test_bulk_goes_in_chunks_not_one_call_per_id(
    make_redis: Callable[..., RedisServer], key_prefix: str
) -> None:
    server = make_redis()  # private: its command statistics count only this test's calls
    queue = Queue("bulk", url=server.url, prefix=key_prefix)
    try:
        ids = await _failed_jobs(queue, BULK_CHUNK + 100)
        async with Admin(server.url, prefix=key_prefix) as admin:
            before = _evalsha_calls(server)
            result = await admin.bulk("bulk", "retry", ids)
            calls = _evalsha_calls(server) - before
        assert result["done"] == len(ids)
        assert all(r == {"ok": True} for r in result["results"].values())
        assert calls == 2, f"{calls} script calls for {len(ids)} ids"
        counts = await queue.counts()
        assert (counts["waiting"], counts["failed"]) == (len(ids), 0)
    finally:
        await queue.obliterate(force=True)
        await queue.close()


async def test_bulk_maps_every_per_id_code(admin: Admin, make_queue: Callable[..., Queue]) -> None:
    queue = make_queue("codes")
    [failed] = await _failed_jobs(queue, 1)
    waiting = (await queue.add("x")).id
    delayed = (await queue.add("x", delay=3600)).id

    retried = await admin.bulk("codes", "retry", [failed, waiting, "missing", failed])
    assert retried["done"] == 1
    assert list(retried["results"]) == [failed, waiting, "missing"]  # a repeated id acts once
    assert retried["results"][failed] == {"ok": True}
    assert retried["results"][waiting]["code"] == "wrong_state"
    assert "it is not failed" in retried["results"][waiting]["message"]
    assert retried["results"]["missing"]["code"] == "job_not_found"

    promoted = await admin.bulk("codes", "promote", [delayed, waiting])
    assert promoted["results"][delayed] == {"ok": True}
    assert promoted["results"][waiting]["code"] == "wrong_state"
    assert (await queue.counts())["delayed"] == 0

    removed = await admin.bulk("codes", "remove", [waiting, "missing"])
    assert removed["done"] == 1 and removed["results"]["missing"]["code"] == "job_not_found"
    assert await queue.get_job(waiting) is None

    cancelled = await admin.bulk("codes", "cancel", [delayed, "missing"])
    assert cancelled["results"][delayed] == {"ok": True}
    assert cancelled["results"]["missing"]["code"] == "job_not_found"


async def test_bulk_remove_refuses_a_running_job(
    admin: Admin, make_queue: Callable[..., Queue]
) -> None:
    queue = make_queue("active")
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(job: Any) -> None:
        started.set()
        await release.wait()

    job = await queue.add("slow")
    async with running(worker(queue, {"slow": slow})):
        await asyncio.wait_for(started.wait(), 10)
        result = await admin.bulk("active", "remove", [job.id])
        release.set()
    assert result["done"] == 0
    assert result["results"][job.id]["code"] == "wrong_state"
    assert "running" in result["results"][job.id]["message"]


async def test_data_loss_is_recorded_under_the_queue_keys_data_lost_key(
    admin: Admin, make_queue: Callable[..., Queue], redis_url: str, key_prefix: str
) -> None:
    queue = make_queue("lossy")
    await queue.add("x")
    keys = QueueKeys(key_prefix, "lossy")
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        await client.hset(keys.meta, "epoch", "first")
        assert await admin.data_losses() == []
        await client.hset(keys.meta, "epoch", "second")  # as if Redis came back empty
        [loss] = await admin.data_losses()
        assert (loss["queue"], loss["noticed_by"], loss["previous_epoch"]) == (
            "lossy",
            "api",
            "first",
        )
        assert keys.data_lost == f"{key_prefix}:{{lossy}}:data_lost"
        assert 0 < await client.ttl(keys.data_lost) <= 86400
        assert await admin.acknowledge_data_loss("lossy") is True
        assert not await client.exists(keys.data_lost)
        assert await admin.data_losses() == []
    finally:
        await client.aclose()


async def test_overview_of_named_queues_and_throughput(
    admin: Admin, make_queue: Callable[..., Queue]
) -> None:
    queue = make_queue("seen")
    make_queue("other")
    await queue.add("ok")
    await queue.add("boom")

    async def ok(job: Any) -> str:
        return "fine"

    async with running(worker(queue, {"ok": ok, "boom": boom})):
        await async_wait_for(lambda: _state_count(queue, "failed", 1), timeout=10)
        await async_wait_for(lambda: _state_count(queue, "completed", 1), timeout=10)
    [only] = await admin.overview(["seen"])
    assert only["name"] == "seen" and only["counts"]["completed"] == 1
    [never] = await admin.overview(["never-added"])
    assert never["counts"]["waiting"] == 0 and never["workers"] == 0
    done = await admin.throughput(["seen", "never-added"], minutes=5)
    assert done["seen"] == {"completed": 1, "failed": 1, "retried": 0}
    assert done["never-added"] == {"completed": 0, "failed": 0, "retried": 0}


def _connected_clients(server: RedisServer) -> int:
    info = server.command("INFO", "clients").decode()
    return int(info.split("connected_clients:", 1)[1].split()[0])


async def test_the_queues_of_an_admin_share_its_connections(
    make_redis: Callable[..., RedisServer], key_prefix: str
) -> None:
    server = make_redis()  # private: every connection counted is this test's
    before = _connected_clients(server)
    async with Admin(server.url, prefix=key_prefix) as admin:
        admin.queue_cache_limit = 5  # most queues below drop out of the cache
        for i in range(40):
            job = await admin.add(f"q{i}", "x", None, {})
            assert (await admin.job_detail(f"q{i}", job.id))["state"] == "waiting"
            await admin.cancel(f"q{i}", job.id)
        assert len(admin._queues) == 5
        opened = _connected_clients(server) - before
        assert opened <= 3, f"{opened} connections for 40 queues"
    await async_wait_for(
        lambda: _connected_clients(server) == before, timeout=10, message="left open"
    )


async def test_retry_all_and_clean_report_progress_after_each_chunk(
    admin: Admin, make_queue: Callable[..., Queue]
) -> None:
    queue = make_queue("sweep")
    total = 1500  # more than one chunk of the procedures
    await queue.add_bulk([{"name": "x", "delay": 3600} for _ in range(total)])
    promoted: list[int] = []
    assert await admin.retry_all("sweep", "delayed", promoted.append) == total
    assert len(promoted) >= 2 and promoted == sorted(promoted) and promoted[-1] == total
    cleaned: list[int] = []
    assert await admin.clean("sweep", "waiting", 0, None, cleaned.append) == total
    assert len(cleaned) >= 2 and cleaned == sorted(cleaned) and cleaned[-1] == total
    assert (await queue.counts())["waiting"] == 0
