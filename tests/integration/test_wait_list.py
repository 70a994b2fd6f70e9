"""The wait list: new jobs of priority 0 without a group wait in a list beside the wait set
(lua/includes/waiting.lua). Every reader sees the two as one sequence, in the order the jobs run:
the set below the list's score, the list, the set above it. Against a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from conveyor import Queue
from conveyor.admin import Admin
from conveyor.storage.protocol import PRIORITY_BAND, PRIORITY_OFFSET, WAIT_LIST_SCORE


@pytest.fixture
async def admin(redis_url: str, key_prefix: str) -> AsyncIterator[Admin]:
    async with Admin(redis_url, prefix=key_prefix) as a:
        yield a


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    c = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield c
    await c.aclose()


async def _fetch_all(queue: Queue, size: int = 3) -> list[str]:
    """The names of every waiting job, fetched `size` at a time, in the order handed out."""
    names: list[str] = []
    while True:
        reply = await queue.redis.run(queue.commands.fetch("w", size))
        if not reply.jobs:
            return names
        names += [job.name for job in reply.jobs]


async def _mixed(queue: Queue) -> list[str]:
    """Jobs in both the set and the list; returns their names in the order they must run."""
    await queue.add("low-1", priority=-5)
    await queue.add("fresh-1")
    await queue.add("high-1", priority=10)
    await queue.add_bulk([{"name": "fresh-2"}, {"name": "low-2", "priority": -1}])
    back = await queue.add("back", delay=3600)  # will come back into the set, at priority 0
    await queue.add("fresh-3", job_id="mine")
    await queue.add_bulk([{"name": "high-2", "priority": 10}, {"name": "fresh-4"}])
    await queue.promote(back.id)
    return ["high-1", "high-2", "back", "fresh-1", "fresh-2", "fresh-3", "fresh-4", "low-2",
            "low-1"]  # fmt: skip


async def test_new_jobs_of_priority_0_without_a_group_wait_in_the_list(
    queue: Queue, client: aioredis.Redis
) -> None:
    keys = queue.commands.keys
    plain = await queue.add("plain")
    bulk = await queue.add_bulk([{"name": "a"}, {"name": "b", "priority": 1}])
    grouped = await queue.add("g", group="tenant")
    delayed = await queue.add("later", delay=3600)
    assert await client.lrange(keys.wait_list, 0, -1) == [plain.id, bulk[0].id]
    assert await client.zrange(keys.wait, 0, -1) == [bulk[1].id]
    assert grouped.id not in await client.lrange(keys.wait_list, 0, -1)
    assert await client.zscore(keys.delayed, delayed.id) is not None
    counts = await queue.counts()
    assert counts["waiting"] == 4  # the list, the set and the group
    assert counts["delayed"] == 1


async def test_jobs_run_in_one_order_over_the_set_and_the_list(queue: Queue) -> None:
    expected = await _mixed(queue)
    assert await _fetch_all(queue) == expected


async def test_a_fetch_that_pops_negative_priorities_puts_back_those_behind_the_list(
    queue: Queue, client: aioredis.Redis
) -> None:
    await queue.add_bulk([{"name": f"low-{i}", "priority": -1} for i in range(5)])
    await queue.add_bulk([{"name": f"fresh-{i}"} for i in range(2)])
    reply = await queue.redis.run(queue.commands.fetch("w", 4))
    assert [job.name for job in reply.jobs] == ["fresh-0", "fresh-1", "low-0", "low-1"]
    assert await client.zcard(queue.commands.keys.wait) == 3
    assert await _fetch_all(queue) == ["low-2", "low-3", "low-4"]


async def test_the_listing_shows_the_run_order_and_its_reverse_page_by_page(
    queue: Queue,
) -> None:
    expected = await _mixed(queue)
    oldest = [j.name for j in await queue.get_jobs("waiting", newest_first=False)]
    newest = [j.name for j in await queue.get_jobs("waiting", newest_first=True)]
    assert oldest == expected
    assert newest == list(reversed(expected))
    for size in (1, 2, 4):
        pages = [
            j.name
            for start in range(0, len(expected), size)
            for j in await queue.get_jobs(
                "waiting", start=start, stop=start + size - 1, newest_first=False
            )
        ]
        assert pages == expected
    last_two = await queue.get_jobs("waiting", start=-2, stop=-1, newest_first=False)
    assert [j.name for j in last_two] == expected[-2:]


async def test_a_search_pages_through_the_set_and_the_list_while_jobs_come_and_go(
    queue: Queue, admin: Admin
) -> None:
    await queue.add_bulk([{"name": "x", "data": {"n": i}, "priority": 1} for i in range(30)])
    await queue.add_bulk([{"name": "x", "data": {"n": i}} for i in range(60)])
    await queue.add_bulk([{"name": "x", "data": {"n": i}, "priority": -1} for i in range(30)])
    order = [j.id for j in await queue.get_jobs("waiting", 0, -1, newest_first=False)]
    for sort in ("newest", "oldest"):
        seen: list[str] = []
        cursor = None
        while True:
            page = await admin.search_jobs(
                queue.name, "waiting", text='"n"', size=7, cursor=cursor, sort=sort
            )
            seen += [job["id"] for job in page.jobs]
            # New jobs join the list's tail while the search runs; they are not what it looks for.
            await queue.add_bulk([{"name": "y", "data": {"m": 1}} for _ in range(5)])
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == (list(reversed(order)) if sort == "newest" else order)
    assert len(order) == 120  # the set above and below the list, and the list


async def test_a_search_in_the_list_keeps_its_place_while_workers_take_its_head(
    queue: Queue, admin: Admin
) -> None:
    jobs = await queue.add_bulk([{"name": "x", "data": {"n": i}} for i in range(40)])
    page = await admin.search_jobs(queue.name, "waiting", text='"n"', size=10, sort="oldest")
    seen = [job["id"] for job in page.jobs]
    await queue.redis.run(queue.commands.fetch("w", 15))  # the first 15 leave the list
    cursor = page.next_cursor
    while cursor is not None:
        page = await admin.search_jobs(
            queue.name, "waiting", text='"n"', size=10, cursor=cursor, sort="oldest"
        )
        seen += [job["id"] for job in page.jobs]
        cursor = page.next_cursor
    assert seen == [j.id for j in jobs[:10]] + [j.id for j in jobs[15:]]


@pytest.mark.parametrize("victims", ["head", "scattered-few", "scattered-many"])
async def test_removing_listed_jobs_keeps_the_rest_in_order(
    queue: Queue, client: aioredis.Redis, victims: str
) -> None:
    jobs = await queue.add_bulk([{"name": "x", "data": i} for i in range(100)])
    gone = {
        "head": jobs[:10],
        "scattered-few": jobs[5:40:7],  # LREM each
        "scattered-many": jobs[1::3],  # one pass over the list
    }[victims]
    await queue.redis.run(queue.commands.remove([j.id for j in gone]))
    kept = [j.id for j in jobs if j not in gone]
    assert await client.lrange(queue.commands.keys.wait_list, 0, -1) == kept
    assert (await queue.counts())["waiting"] == len(kept)
    assert [job.id for job in await queue.get_jobs("waiting", 0, -1, newest_first=False)] == kept


async def test_cancel_and_clean_take_jobs_out_of_the_list(
    queue: Queue, client: aioredis.Redis
) -> None:
    jobs = await queue.add_bulk([{"name": "x", "data": i} for i in range(20)])
    await queue.cancel(jobs[12].id)
    assert (await queue.get_job(jobs[12].id)).state.value == "failed"  # type: ignore[union-attr]
    kept_set = await queue.add("ranked", priority=3)
    deleted = await queue.clean("waiting", older_than=0)
    assert deleted == 20  # 19 listed (the list's head: one LTRIM) and the ranked one
    assert await client.exists(queue.commands.keys.wait_list) == 0
    assert (await queue.counts())["waiting"] == 0
    assert await queue.get_job(kept_set.id) is None


async def test_a_job_of_priority_0_in_the_set_from_an_earlier_version_still_runs_first(
    queue: Queue, client: aioredis.Redis
) -> None:
    # Before the list, every waiting job was in the set; such a job keeps its place.
    await queue.add("fresh")
    old = await queue.add("old", delay=3600)
    keys = queue.commands.keys
    await client.zrem(keys.delayed, old.id)
    await client.hset(keys.job(old.id), "state", "waiting")
    await client.zadd(keys.wait, {old.id: PRIORITY_OFFSET * PRIORITY_BAND + int(old.id)})
    assert (await queue.counts())["waiting"] == 2
    assert [j.name for j in await queue.get_jobs("waiting", newest_first=False)] == [
        "old",
        "fresh",
    ]
    assert await queue.redis.run(queue.commands.oldest_waiting_ms()) is not None
    assert await _fetch_all(queue) == ["old", "fresh"]


def test_the_list_stands_at_the_end_of_priority_0s_band() -> None:
    band_0 = PRIORITY_OFFSET * PRIORITY_BAND
    assert band_0 < WAIT_LIST_SCORE < band_0 + PRIORITY_BAND
    assert float(WAIT_LIST_SCORE) == WAIT_LIST_SCORE  # exact as a Lua number and in Redis
