"""Search every retained job (admin/search.py) against a real Redis: complete across cursors,
stable while jobs are added, bounded per call, exact across ties in score."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from tests.support.conveyor_helpers import running, worker
from tests.support.waiting import async_wait_for

from conveyor import Queue
from conveyor.admin import Admin
from conveyor.admin.search import SEARCH_BUDGET
from conveyor.errors import ConfigurationError

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def admin(redis_url: str, key_prefix: str) -> AsyncIterator[Admin]:
    async with Admin(redis_url, prefix=key_prefix) as a:
        yield a


async def search_all(admin: Admin, queue: str, state: str, **filters: Any) -> list[str]:
    """Every match, following the cursor to the end; the ids in the order given."""
    ids: list[str] = []
    cursor = None
    for _ in range(10_000):
        page = await admin.search_jobs(queue, state, cursor=cursor, **filters)
        assert page.scanned <= SEARCH_BUDGET
        ids += [job["id"] for job in page.jobs]
        cursor = page.next_cursor
        if cursor is None:
            return ids
    raise AssertionError("the search did not end")


async def test_a_search_finds_every_match_across_cursors_newest_first(
    admin: Admin, make_queue: Callable[..., Queue]
) -> None:
    queue = make_queue("find")
    jobs = await queue.add_bulk(
        [
            {"name": "mail" if i % 2 else "sms", "data": {"to": f"user-{i}@example.com"}}
            for i in range(1_500)
        ]
    )
    wanted = [j.id for i, j in enumerate(jobs) if "user-7" in f"user-{i}@"]
    found = await search_all(admin, "find", "waiting", text="USER-7", size=7)
    assert found == list(reversed(wanted))  # newest first, each once, none missing
    oldest = await search_all(admin, "find", "waiting", text="user-7", size=50, sort="oldest")
    assert oldest == wanted
    mail_only = await search_all(admin, "find", "waiting", job_name="mail", text="user-7", size=20)
    assert mail_only == [j for j in reversed(wanted) if int(j) % 2 == 0]  # ids start at 1
    # By id too.
    assert await search_all(admin, "find", "waiting", text=jobs[41].id, size=100) != []


async def test_jobs_added_during_a_search_do_not_shift_its_cursor(
    admin: Admin, make_queue: Callable[..., Queue]
) -> None:
    queue = make_queue("moving")
    first = await queue.add_bulk([{"name": "x", "data": {"n": i}} for i in range(300)])
    seen: list[str] = []
    cursor = None
    while True:
        page = await admin.search_jobs("moving", "waiting", text='"n"', size=25, cursor=cursor)
        seen += [job["id"] for job in page.jobs]
        # New jobs arrive at the newest end while the search pages toward the oldest.
        await queue.add_bulk([{"name": "x", "data": {"n": -1}} for _ in range(10)])
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [j.id for j in reversed(first)]


async def test_ties_in_score_are_resumed_exactly(
    admin: Admin, make_queue: Callable[..., Queue], redis_url: str
) -> None:
    # Completed jobs are scored by the millisecond they finished: thousands share a score.
    queue = make_queue("ties", keep_completed=10_000)
    jobs = await queue.add_bulk([{"name": "noop", "data": i} for i in range(3_000)])

    async def noop(job: Any) -> None:
        return None

    async with running(worker(queue, {"noop": noop}, concurrency=200)):
        await async_wait_for(
            lambda: _completed(queue, 3_000), timeout=60, message="jobs did not complete"
        )
    raw = aioredis.from_url(redis_url)
    scored = await raw.zrange(queue.commands.keys.completed, 0, -1, withscores=True)
    await raw.aclose()
    assert len({score for _, score in scored}) < 1_000  # many jobs per score, or no test
    found = await search_all(admin, "ties", "completed", job_name="noop", size=13)
    assert sorted(found, key=int) == [j.id for j in jobs]
    assert len(set(found)) == len(found)


async def _completed(queue: Queue, want: int) -> bool:
    return (await queue.counts())["completed"] == want


async def test_one_call_reads_a_bounded_slice_and_says_where_to_go_on(
    admin: Admin, make_queue: Callable[..., Queue]
) -> None:
    queue = make_queue("big")
    for _ in range(3):
        await queue.add_bulk([{"name": "x", "data": {"k": "v"}}] * 10_000)
    page = await admin.search_jobs("big", "waiting", text="no such text", size=20)
    assert (page.jobs, page.scanned, page.total) == ([], SEARCH_BUDGET, 30_000)
    assert page.next_cursor is not None
    page = await admin.search_jobs("big", "waiting", text="nothing", cursor=page.next_cursor)
    assert page.scanned == SEARCH_BUDGET


async def test_a_cursor_this_search_did_not_give_is_refused(
    admin: Admin, make_queue: Callable[..., Queue]
) -> None:
    await make_queue("c").add("x")
    for bad in ("nonsense", "12:-1", "abc:3", ":", "nan:0"):
        with pytest.raises(ConfigurationError, match="cursor"):
            await admin.search_jobs("c", "waiting", text="x", cursor=bad)
