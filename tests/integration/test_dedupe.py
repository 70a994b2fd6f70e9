"""Dedup modes of add (Dedupe.until_finished, throttle, debounce) against a real Redis: the
existing job comes back marked, a "deduplicated" event is written, add_bulk and coalesced adds
honour them, keys live in the queue's slot and expire, bad input is refused."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis
from tests.support.conveyor_helpers import running, worker
from tests.support.waiting import async_wait_for

from conveyor import Dedupe, Job, JobState, Queue, SyncQueue
from conveyor.errors import ConfigurationError


async def _events(queue: Queue, after: str, name: str) -> list[tuple[str, dict[str, str]]]:
    """The events called ``name`` written after the stream id ``after``, up to now."""
    last = await queue.redis.run(queue.commands.last_event_id())
    found = []
    async for event in queue.events(after=after, block_seconds=0.05):
        if event.event == name:
            found.append((event.job_id, dict(event.fields)))
        if event.id == last:
            return found
    return found


async def test_until_finished_keeps_one_live_job_per_key(queue: Queue) -> None:
    start = await queue.redis.run(queue.commands.last_event_id())
    first = await queue.add("sync", {"n": 1}, dedupe=Dedupe.until_finished("user-42"))
    again = await queue.add("sync", {"n": 2}, dedupe=Dedupe.until_finished("user-42"))
    other = await queue.add("sync", {"n": 3}, dedupe=Dedupe.until_finished("user-7"))
    assert not first.deduplicated and again.deduplicated and not other.deduplicated
    assert again.id == first.id and again.data == {"n": 1}  # the existing job, as stored
    assert other.id != first.id
    assert (await queue.counts())["waiting"] == 2
    events = await _events(queue, start, "deduplicated")
    assert events == [(first.id, {"key": "user-42", "mode": "until_finished"})]

    release = asyncio.Event()
    ran: list[Job] = []

    async def sync(job: Job) -> None:
        ran.append(job)
        await release.wait()

    async with running(worker(queue, {"sync": sync})):
        await async_wait_for(lambda: len(ran) == 2, timeout=10)
        running_one = await queue.add("sync", {"n": 4}, dedupe=Dedupe.until_finished("user-42"))
        assert running_one.deduplicated and running_one.id == first.id  # still running
        release.set()
        await (await queue.get_job(first.id)).wait(timeout=10)  # type: ignore[union-attr]
        after = await queue.add("sync", {"n": 5}, dedupe=Dedupe.until_finished("user-42"))
        assert not after.deduplicated and after.id != first.id  # finished: a new job
        await async_wait_for(lambda: len(ran) == 3, timeout=10)


async def test_throttle_drops_repeats_for_ttl_even_after_the_job_finished(queue: Queue) -> None:
    first = await queue.add("ping", {"n": 1}, dedupe=Dedupe.throttle("t", ttl=1.5))
    async with running(worker(queue, {"ping": lambda job: None})):
        await first.wait(timeout=10)
    repeat = await queue.add("ping", {"n": 2}, dedupe=Dedupe.throttle("t", ttl=1.5))
    assert repeat.deduplicated and repeat.id == first.id and repeat.state is JobState.COMPLETED

    async def window_over() -> bool:
        job = await queue.add("ping", {"n": 3}, dedupe=Dedupe.throttle("t", ttl=1.5))
        return not job.deduplicated

    started = time.monotonic()
    await async_wait_for(window_over, timeout=5, interval=0.05)
    assert time.monotonic() - started > 0.5  # not before the window from the first add ended


async def test_debounce_runs_once_per_quiet_period_with_the_last_data(queue: Queue) -> None:
    ran: list[tuple[float, object]] = []

    async def save(job: Job) -> None:
        ran.append((time.monotonic(), job.data))

    async with running(worker(queue, {"save": save})):
        ids = set()
        for i in range(15):  # a stream of adds, 0.1 s apart, for 1.5 s
            job = await queue.add("save", {"i": i}, dedupe=Dedupe.debounce("doc-1", delay=0.5))
            ids.add(job.id)
            assert job.deduplicated == (i > 0)
            await asyncio.sleep(0.1)
        last_add = time.monotonic()
        assert len(ids) == 1 and ran == []  # the timer restarted with every add
        await async_wait_for(lambda: ran, timeout=5)
        assert ran[0][1] == {"i": 14}  # the last add's data won
        assert ran[0][0] - last_add >= 0.3  # about delay after the last add (clock margins)
        await asyncio.sleep(0.6)
        assert len(ran) == 1
        later = await queue.add("save", {"i": 99}, dedupe=Dedupe.debounce("doc-1", delay=0.2))
        assert not later.deduplicated and later.id not in ids  # a new quiet period, a new job
        await async_wait_for(lambda: len(ran) == 2, timeout=5)


async def test_add_bulk_and_concurrent_adds_deduplicate_in_order(queue: Queue) -> None:
    jobs = await queue.add_bulk(
        [
            {"name": "a", "data": 1},
            {"name": "b", "data": 1, "dedupe": Dedupe.throttle("k", 60)},
            {"name": "b", "data": 2, "dedupe": Dedupe.throttle("k", 60)},
            {"name": "a", "data": 2},
        ]
    )
    assert [j.deduplicated for j in jobs] == [False, False, True, False]
    assert jobs[1].id == jobs[2].id and len({j.id for j in jobs}) == 3
    together = await asyncio.gather(
        *(queue.add("c", i, dedupe=Dedupe.until_finished("c")) for i in range(20))
    )
    assert len({j.id for j in together}) == 1
    assert sum(not j.deduplicated for j in together) == 1
    assert (await queue.counts())["waiting"] == 4


async def test_keys_live_in_the_queue_slot_and_expire(
    queue: Queue, redis_url: str, key_prefix: str
) -> None:
    await queue.add("x", dedupe=Dedupe.throttle("slot", 30))
    await queue.add("x", dedupe=Dedupe.until_finished("live"))
    await queue.add("x", dedupe=Dedupe.debounce("quiet", 2))
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        for key, low, high in (("slot", 29_000, 30_000), ("live", 6 * 86_400_000, 7 * 86_400_000),
                               ("quiet", 61_000, 62_000)):  # fmt: skip
            name = queue.commands.keys.dedupe(key)
            assert name.startswith(f"{key_prefix}:{{q}}:")
            assert low <= await client.pttl(name) <= high, key
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Dedupe.throttle("k", 0), "throttle ttl must be positive"),
        (lambda: Dedupe.debounce("k", -1), "debounce delay must be positive"),
        (lambda: Dedupe.throttle("k", "soon"), "must be a number of seconds"),
        (lambda: Dedupe.until_finished(""), "dedupe key must be a non-empty string"),
        (lambda: Dedupe.until_finished("a\nb"), "must be printable"),
    ],
)
def test_bad_dedupe_is_refused(make: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make()  # type: ignore[operator]


async def test_bad_combinations_are_refused_and_store_nothing(queue: Queue) -> None:
    with pytest.raises(ConfigurationError, match="either job_id or dedupe"):
        await queue.add("x", job_id="j", dedupe=Dedupe.throttle("k", 5))
    with pytest.raises(ConfigurationError, match="give no delay or run_at"):
        await queue.add("x", delay=3, dedupe=Dedupe.debounce("k", 5))
    with pytest.raises(ConfigurationError, match="dedupe must be a Dedupe"):
        await queue.add("x", dedupe="k")
    assert await queue.counts() == {k: 0 for k in await queue.counts()}


def test_sync_queue_deduplicates_too(redis_url: str, key_prefix: str) -> None:
    with SyncQueue("sq", url=redis_url, prefix=key_prefix) as sync:
        first = sync.add("x", 1, dedupe=Dedupe.until_finished("k"))
        again = sync.add("x", 2, dedupe=Dedupe.until_finished("k"))
        assert again.deduplicated and again.id == first.id
        bulk = sync.add_bulk([{"name": "x", "dedupe": Dedupe.until_finished("k")}])
        assert bulk[0].deduplicated and bulk[0].id == first.id


async def test_a_debounced_jobs_ttl_moves_with_its_timer(queue: Queue) -> None:
    first = await queue.add("x", 1, ttl=2, dedupe=Dedupe.debounce("k", delay=1))
    fields = queue.commands.keys.job(first.id)
    client = aioredis.Redis.from_url(queue.settings.url, decode_responses=True)
    try:
        run_at, expire_at = map(int, await client.hmget(fields, "run_at", "expire_at"))
        assert expire_at - run_at == 2000
        await asyncio.sleep(0.3)
        again = await queue.add("x", 2, ttl=2, dedupe=Dedupe.debounce("k", delay=1))
        assert again.deduplicated
        later, expire_later = map(int, await client.hmget(fields, "run_at", "expire_at"))
        assert later > run_at and expire_later - later == 2000
    finally:
        await client.aclose()
