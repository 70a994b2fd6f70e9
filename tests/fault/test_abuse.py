"""Hostile jobs and inputs: clear errors, and the workers live on.

A poison job that kills its process, a sync handler that never returns, a 100 MB payload,
garbage written straight into a job hash, hostile queue names.
"""

from __future__ import annotations

import collections
import signal
from collections.abc import Callable
from typing import Any

import pytest
from tests.support.processes import SpawnedProcess
from tests.support.waiting import async_wait_for

from conveyor import JobFailed, JobState, Queue
from conveyor.errors import InvalidQueueName, PayloadTooLarge

StartWorker = Callable[..., SpawnedProcess]
Ledger = Callable[..., Any]


@pytest.mark.timeout(90)
async def test_poison_job_that_kills_its_process_fails_as_stalled_while_others_flow(
    start_worker: StartWorker, jobs_queue: Queue, ledger: Ledger
) -> None:
    poison = await jobs_queue.add("exit")
    healthy = await jobs_queue.add_bulk([{"name": "record", "data": {"i": i}} for i in range(50)])
    deaths = 0
    for _ in range(10):  # restart the worker whenever the poison job takes it down
        if (await jobs_queue.get_job(poison.id)).state is JobState.FAILED:  # type: ignore[union-attr]
            break
        proc = start_worker(f"W{deaths}", lease=0.5, max_stalls=1, concurrency=1)
        await async_wait_for(
            lambda p=proc: not p.alive or _failed(jobs_queue, poison.id),  # type: ignore[misc]
            timeout=20,
        )
        deaths += not proc.alive
        proc.send_signal(signal.SIGTERM)
    with pytest.raises(JobFailed, match="stalled") as failed:
        await poison.wait(timeout=10)
    assert "worker killed" in failed.value.reason
    assert deaths == 2  # delivered twice (max_stalls=1), then quarantined
    last = start_worker("survivor", lease=0.5)
    await async_wait_for(
        lambda: _count_at_least(jobs_queue, "completed", 50), timeout=30, interval=0.05
    )
    ran = collections.Counter(job_id for job_id, _ in await ledger("ran"))
    assert set(ran) == {j.id for j in healthy}
    assert last.alive


@pytest.mark.timeout(60)
async def test_sync_handler_that_never_returns_fails_at_its_timeout_and_the_worker_goes_on(
    start_worker: StartWorker, jobs_queue: Queue
) -> None:
    worker = start_worker("A", concurrency=2)
    spinning = await jobs_queue.add("spin", timeout=1, attempts=1)
    with pytest.raises(JobFailed, match="timeout"):
        await spinning.wait(timeout=15)
    after = await jobs_queue.add("record")
    assert await after.wait(timeout=10) == {"worker": "A"}
    assert worker.alive
    worker.kill()  # the spinning thread cannot be stopped: a graceful stop would wait it out


@pytest.mark.timeout(60)
async def test_100mb_payload_is_refused_before_it_reaches_redis(jobs_queue: Queue) -> None:
    before = (await jobs_queue.redis.command("INFO", "memory"))["used_memory"]
    with pytest.raises(PayloadTooLarge, match="over the limit of 524288 bytes"):
        await jobs_queue.add("record", {"blob": "x" * (100 * 1024 * 1024)})
    after = (await jobs_queue.redis.command("INFO", "memory"))["used_memory"]
    assert after - before < 1024 * 1024
    assert (await jobs_queue.counts())["waiting"] == 0


@pytest.mark.timeout(60)
async def test_garbage_in_job_hashes_fails_those_jobs_and_the_worker_goes_on(
    start_worker: StartWorker, jobs_queue: Queue
) -> None:
    keys = jobs_queue.commands.keys
    garbage = {
        "bytes": b"\xff\xfe\x00garbage",
        "truncated": b'{"to": "a@b',
        "nan": b"NaN",
        "deep": b"[" * 100_000 + b"]" * 100_000,
    }
    jobs = {}
    for label, data in garbage.items():
        job = await jobs_queue.add("record", {"label": label})
        await jobs_queue.redis.command("HSET", keys.job(job.id), "data", data)
        jobs[label] = job
    orphan_score = 10**12
    await jobs_queue.redis.command("ZADD", keys.wait, orphan_score, "no-such-job")
    await jobs_queue.redis.command("RPUSH", keys.wait_list, "no-such-listed-job")
    worker = start_worker("A")
    for label, job in jobs.items():
        with pytest.raises(JobFailed) as failed:
            await job.wait(timeout=15)
        assert "malformed" in failed.value.reason or "JSON" in failed.value.reason, label
    good = await jobs_queue.add("record")
    assert await good.wait(timeout=10) == {"worker": "A"}
    assert worker.alive
    assert await jobs_queue.redis.command("ZSCORE", keys.wait, "no-such-job") is None
    assert await jobs_queue.redis.command("LPOS", keys.wait_list, "no-such-listed-job") is None


@pytest.mark.parametrize(
    "name",
    [
        "a{b}",
        "{x}",
        "*",
        "q?",
        "[a]",
        "with space",
        "new\nline",
        "x" * 10_000,
        "ünï",
        "../x",
        "<script>",
        "",
        ":lead",
    ],
)
async def test_hostile_queue_names_are_refused_and_touch_nothing(
    name: str, redis_url: str, key_prefix: str
) -> None:
    canary = Queue("canary", url=redis_url, prefix=key_prefix)
    await canary.add("record")
    # KEYS walks the keyspace's hash table, whose order a rehash may change: compare as sets.
    before = set(await canary.redis.command("KEYS", f"{key_prefix}*"))
    with pytest.raises(InvalidQueueName):
        Queue(name, url=redis_url, prefix=key_prefix)
    assert set(await canary.redis.command("KEYS", f"{key_prefix}*")) == before
    await canary.close()


async def _failed(queue: Queue, job_id: str) -> bool:
    job = await queue.get_job(job_id)
    return job is not None and job.state is JobState.FAILED


async def _count_at_least(queue: Queue, state: str, n: int) -> bool:
    return (await queue.counts())[state] >= n
