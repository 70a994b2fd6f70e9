"""The producer and admin API against a real Redis (no worker involved)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from conveyor import Event, JobState, Queue, SyncQueue
from conveyor.errors import (
    InvalidQueueName,
    InvalidTransition,
    JobNotFound,
    PayloadNotSerializable,
    PayloadTooLarge,
)


async def keys_under(redis_url: str, prefix: str) -> list[str]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return sorted([k async for k in client.scan_iter(f"{prefix}:*")])
    finally:
        await client.aclose()


async def test_add_returns_a_job_that_can_be_read_back(queue: Queue) -> None:
    job = await queue.add("send", {"to": "a@b.c"}, attempts=3, timeout=5, ttl=60)
    assert job.id and job.state is JobState.WAITING
    assert (job.attempts, job.timeout, job.ttl) == (3, 5, 60)  # as given, without a read
    stored = await queue.get_job(job.id)
    assert stored is not None
    assert (stored.name, stored.data, stored.attempts) == ("send", {"to": "a@b.c"}, 3)
    assert (stored.timeout, stored.ttl, stored.attempts_made) == (5, 60, 0)
    assert stored.created_at is not None
    assert await queue.counts() == {
        "waiting": 1,
        "active": 0,
        "delayed": 0,
        "completed": 0,
        "failed": 0,
        "waiting-children": 0,  # workflows
        "paused": 0,
    }


async def test_created_at_is_redis_time_on_both_add_paths(queue: Queue, redis_url: str) -> None:
    # One job with default options takes its creation time from its "added" event's entry id
    # (one call fewer than TIME); any other add takes TIME. Both are Redis's clock in ms.
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:

        async def redis_ms() -> int:
            seconds, micros = await client.time()
            return seconds * 1000 + micros // 1000

        before = await redis_ms()
        plain = await queue.add("a")
        general = await queue.add("a", priority=5)
        after = await redis_ms()
        [(plain_entry, plain_fields), _] = await client.xrange(queue.commands.keys.events)
    finally:
        await client.aclose()
    created = []
    for job in (plain, general):
        stored = await queue.get_job(job.id)
        assert stored is not None and stored.created_at is not None
        created.append(stored.created_at)
    assert before <= created[0] <= created[1] <= after
    assert plain_fields["id"] == plain.id
    assert int(plain_entry.split("-")[0]) == created[0]


async def test_add_with_an_existing_job_id_returns_that_job_and_adds_nothing(queue: Queue) -> None:
    first = await queue.add("send", {"n": 1}, job_id="invoice-42")
    second = await queue.add("send", {"n": 2}, job_id="invoice-42")
    assert first.id == second.id == "invoice-42"
    assert second.data == {"n": 1}  # the existing job, not the new data
    assert (await queue.counts())["waiting"] == 1


async def test_custom_numeric_ids_do_not_collide_with_generated_ones(queue: Queue) -> None:
    # Every add draws the next sequence number, and a generated id is that number as text.
    await queue.add("a", job_id="3")  # draws 1
    await queue.add("a", job_id="4")  # draws 2
    generated = await queue.add("a")  # draws 3: "3" and "4" are taken, so "5"
    assert generated.id == "5"
    await queue.add("a", job_id="7")  # draws 6
    delayed = await queue.add("a", delay=60)  # the general path: draws 7, taken, so "8"
    assert delayed.id == "8"
    assert (await queue.get_job("3")).name == "a"  # type: ignore[union-attr]
    counts = await queue.counts()
    assert (counts["waiting"], counts["delayed"]) == (4, 1)


async def test_a_bulk_add_keeps_ids_unique_within_one_call(queue: Queue) -> None:
    # The third entry's sequence number is 3, an id the first entry chose; "dup" comes twice.
    jobs = await queue.add_bulk(
        [
            {"name": "a", "job_id": "3", "data": "chosen"},
            {"name": "a", "job_id": "dup", "data": 1},
            {"name": "a", "data": "generated"},
            {"name": "a", "job_id": "dup", "data": 2},
        ]
    )
    ids = [job.id for job in jobs]
    assert ids[0] == "3" and ids[1] == ids[3] == "dup" and ids[2] not in ("3", "dup")
    assert [job.data for job in jobs] == ["chosen", 1, "generated", 1]
    assert (await queue.get_job("3")).data == "chosen"  # type: ignore[union-attr]
    assert (await queue.counts())["waiting"] == 3


async def test_concurrent_first_adds_register_the_queue_and_keep_their_order(
    queue: Queue, redis_url: str, key_prefix: str
) -> None:
    # Each first add carries the registration in its own round trip; none waits for another's.
    jobs = await asyncio.gather(*(queue.add("n", i) for i in range(20)))
    assert [int(job.id) for job in jobs] == sorted(int(job.id) for job in jobs)
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert await client.smembers(f"{key_prefix}:queues") == {queue.name}
    finally:
        await client.aclose()


async def test_add_bulk_adds_all_in_order(queue: Queue) -> None:
    # Many script calls, pipelined: they must still reach Redis in order (FIFO across chunks).
    jobs = await queue.add_bulk({"name": "n", "data": {"i": i}} for i in range(2500))
    assert [j.data["i"] for j in jobs] == list(range(2500))
    ids = [int(j.id) for j in jobs]
    assert ids == sorted(ids) and len(set(ids)) == 2500
    assert (await queue.counts())["waiting"] == 2500
    oldest = await queue.get_jobs("waiting", 0, 2499, newest_first=False)
    assert [j.data["i"] for j in oldest] == list(range(2500))


async def test_a_job_id_repeated_in_a_later_chunk_of_a_bulk_add_is_not_added_twice(
    queue: Queue,
) -> None:
    entries = [{"name": "n", "data": i} for i in range(450)]
    entries[10]["job_id"] = entries[420]["job_id"] = "twice"
    jobs = await queue.add_bulk(entries)
    assert jobs[10].id == jobs[420].id == "twice" and jobs[420].data == 10
    assert (await queue.counts())["waiting"] == 449


async def test_add_bulk_validates_everything_before_sending_anything(queue: Queue) -> None:
    with pytest.raises(PayloadNotSerializable):
        await queue.add_bulk([{"name": "ok", "data": 1}, {"name": "bad", "data": {1j}}])
    assert (await queue.counts())["waiting"] == 0


async def test_refused_payloads_never_reach_redis(
    make_queue: Callable[..., Queue], redis_url: str, key_prefix: str
) -> None:
    queue = make_queue(max_payload_bytes=1000)
    with pytest.raises(PayloadTooLarge, match="over the limit of 1000 bytes"):
        await queue.add("big", {"blob": "x" * 5000})
    with pytest.raises(PayloadNotSerializable):
        await queue.add("odd", {"set": {1, 2}})
    assert await keys_under(redis_url, key_prefix) == []


async def test_a_100_mb_payload_is_refused_with_the_default_limit(queue: Queue) -> None:
    with pytest.raises(PayloadTooLarge, match="524288 bytes"):
        await queue.add("huge", "x" * (100 * 1024 * 1024))
    assert (await queue.counts())["waiting"] == 0


@pytest.mark.parametrize("name", ["a b", "{x}", "q*", "a\r\nFLUSHALL", "", "x" * 200])
def test_hostile_queue_names_are_refused(name: str, redis_url: str) -> None:
    with pytest.raises(InvalidQueueName, match="invalid queue name"):
        Queue(name, url=redis_url)
    with pytest.raises(InvalidQueueName):
        SyncQueue(name, url=redis_url)


async def test_pause_and_resume(queue: Queue) -> None:
    assert await queue.pause() is True
    assert await queue.pause() is False
    assert await queue.is_paused()
    await queue.add("still-accepted")
    assert (await queue.counts())["paused"] == 1
    assert await queue.resume() is True
    assert not await queue.is_paused()


async def test_remove_deletes_the_job_and_everything_it_owns(
    queue: Queue, redis_url: str, key_prefix: str
) -> None:
    job = await queue.add("x", {"a": 1})
    await queue.remove(job.id)
    assert await queue.get_job(job.id) is None
    assert [k for k in await keys_under(redis_url, key_prefix) if ":job:" in k] == []
    with pytest.raises(JobNotFound, match="no such job"):
        await queue.remove(job.id)


async def test_promote_moves_a_delayed_job_to_waiting(queue: Queue) -> None:
    job = await queue.add("later", delay=3600)
    assert (await queue.get_job(job.id)).state is JobState.DELAYED  # type: ignore[union-attr]
    await queue.promote(job.id)
    assert (await queue.get_job(job.id)).state is JobState.WAITING  # type: ignore[union-attr]
    with pytest.raises(InvalidTransition, match="not delayed"):
        await queue.promote(job.id)
    with pytest.raises(JobNotFound):
        await queue.promote("nope")


async def test_retry_refuses_a_job_that_has_not_failed(queue: Queue) -> None:
    job = await queue.add("x")
    with pytest.raises(InvalidTransition, match="not failed"):
        await queue.retry(job.id)


async def test_clean_deletes_old_jobs_of_one_state(queue: Queue) -> None:
    await queue.add_bulk([{"name": "w"} for _ in range(30)])
    await queue.add_bulk([{"name": "d", "delay": 3600} for _ in range(5)])
    assert await queue.clean("waiting", older_than=3600) == 0
    assert await queue.clean("waiting", limit=10) == 10
    assert await queue.clean("delayed") == 5
    assert await queue.counts() == {
        "waiting": 20,
        "active": 0,
        "delayed": 0,
        "completed": 0,
        "failed": 0,
        "waiting-children": 0,  # workflows
        "paused": 0,
    }
    with pytest.raises(InvalidTransition):
        await queue.clean("active")


async def test_obliterate_deletes_every_key_of_the_queue_only(
    make_queue: Callable[..., Queue], redis_url: str, key_prefix: str
) -> None:
    doomed, kept = make_queue("doomed"), make_queue("doomed:kept")
    await doomed.add_bulk([{"name": "x", "data": i} for i in range(1200)])
    await kept.add("x")
    deleted = await doomed.obliterate()
    assert deleted >= 1200
    remaining = await keys_under(redis_url, key_prefix)
    assert all("{doomed}" not in key for key in remaining)
    assert any("{doomed:kept}" in key for key in remaining)


async def test_obliterate_refuses_a_queue_with_running_jobs_unless_forced(queue: Queue) -> None:
    await queue.add("x")
    fetched = await queue.redis.run(queue.commands.fetch("some-worker", 1))
    assert len(fetched.jobs) == 1
    with pytest.raises(InvalidTransition, match="has 1 running jobs"):
        await queue.obliterate()
    assert await queue.obliterate(force=True) >= 1


async def test_priority_higher_first_and_fifo_within_a_priority(queue: Queue) -> None:
    await queue.add("low-1", priority=-5)
    await queue.add("normal-1")
    await queue.add("high-1", priority=10)
    await queue.add("normal-2")
    await queue.add("high-2", priority=10)
    names = [j.name for j in await queue.get_jobs("waiting", newest_first=False)]
    assert names == ["high-1", "high-2", "normal-1", "normal-2", "low-1"]


async def test_promoted_jobs_take_their_place_by_priority_and_order_score_stored_or_not(
    queue: Queue, redis_url: str, key_prefix: str
) -> None:
    # A job whose id is its sequence number stores no "score" (its id and priority give it);
    # one with an id of its own (or from an earlier version, here a hash with the field) does.
    delayed = [
        await queue.add("normal-1", delay=3600),
        await queue.add("high-1", priority=10, delay=3600),
        await queue.add("mine", job_id="chosen", delay=3600),
        await queue.add("low-1", priority=-5, delay=3600),
        await queue.add("high-2", priority=10, delay=3600),
    ]
    await queue.add("normal-2")
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        stored = {j.name: await client.hget(f"{key_prefix}:{{{queue.name}}}:job:{j.id}", "score")
                  for j in delayed}  # fmt: skip
    finally:
        await client.aclose()
    assert stored["mine"] is not None
    assert [name for name, score in stored.items() if score is not None] == ["mine"]
    for job in delayed:
        await queue.promote(job.id)
    names = [j.name for j in await queue.get_jobs("waiting", newest_first=False)]
    assert names == ["high-1", "high-2", "normal-1", "mine", "normal-2", "low-1"]


async def test_events_stream_reports_transitions(queue: Queue) -> None:
    seen: list[Event] = []

    async def collect() -> None:
        # From the start of this test's (new) stream: with "$" the reader would race the adds.
        async for event in queue.events(after="0-0", block_seconds=0.5):
            seen.append(event)
            if len(seen) == 3:
                return

    task = asyncio.create_task(collect())
    job = await queue.add("x")
    await queue.remove(job.id)
    await queue.pause()
    await asyncio.wait_for(task, 5)
    assert [e.event for e in seen] == ["added", "removed", "paused"]
    assert seen[0].job_id == seen[1].job_id == job.id
    assert seen[0].fields["state"] == "waiting"


def test_sync_queue_mirrors_the_async_api(redis_url: str, key_prefix: str) -> None:
    with SyncQueue("sync", url=redis_url, prefix=key_prefix) as queue:
        job = queue.add("send", {"x": 1}, priority=2, delay=3600)
        assert job.state is JobState.DELAYED
        again = queue.add("send", {"x": 2}, job_id="fixed")
        assert queue.add("send", job_id="fixed").id == again.id
        assert queue.counts()["delayed"] == 1 and queue.counts()["waiting"] == 1
        queue.promote(job.id)
        assert queue.get_job(job.id).state is JobState.WAITING  # type: ignore[union-attr]
        assert len(queue.add_bulk([{"name": "b"}] * 3)) == 3
        assert queue.pause() and queue.resume()
        queue.remove("fixed")
        assert queue.get_job("fixed") is None
        assert queue.clean("waiting") == 4
