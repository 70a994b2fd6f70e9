"""Flow control: jobs waiting in groups are listed, searched and cleaned with the other waiting
jobs (one waiting listing over the wait set and every group's set), against a real Redis."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from conveyor import Queue
from conveyor.admin import Admin
from conveyor.errors import ConfigurationError


async def _group_keys(redis_url: str, prefix: str) -> set[str]:
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        keys = {key async for key in client.scan_iter(f"{prefix}:*")}
    finally:
        await client.aclose()
    return {k for k in keys if any(f":{p}" in k for p in ("g:", "gw:", "gindex", "gready"))}


@pytest.fixture
async def admin(redis_url: str, key_prefix: str) -> AsyncIterator[Admin]:
    async with Admin(redis_url, prefix=key_prefix) as a:
        yield a


async def _fill(queue: Queue) -> dict[str, list[str]]:
    """3 jobs without a group, 4 in "big", 2 in "small", 1 in "one" (in that add order)."""
    jobs = await queue.add_bulk(
        [{"name": "plain", "data": i} for i in range(3)]
        + [{"name": "t", "data": f"big{i}", "group": "big"} for i in range(4)]
        + [{"name": "t", "data": f"small{i}", "group": "small"} for i in range(2)]
        + [{"name": "t", "data": "one0", "group": "one"}]
    )
    ids = [job.id for job in jobs]
    return {"plain": ids[:3], "big": ids[3:7], "small": ids[7:9], "one": ids[9:]}


async def test_the_waiting_listing_holds_the_grouped_jobs_ungrouped_first_then_by_group_size(
    queue: Queue,
) -> None:
    ids = await _fill(queue)
    oldest = [j.id for j in await queue.get_jobs("waiting", 0, -1, newest_first=False)]
    assert oldest == ids["plain"] + ids["big"] + ids["small"] + ids["one"]
    newest = [j.id for j in await queue.get_jobs("waiting", 0, -1)]
    parts = [ids["plain"], ids["big"], ids["small"], ids["one"]]
    assert newest == [i for part in parts for i in reversed(part)]
    assert len(oldest) == (await queue.counts())["waiting"] == 10
    # Pages of every size put together give the whole listing, each job once.
    for size in (1, 2, 3, 4, 7):
        paged: list[str] = []
        for start in range(0, 12, size):
            page = await queue.get_jobs("waiting", start, start + size - 1, newest_first=False)
            paged += [j.id for j in page]
        assert paged == oldest
    assert [j.id for j in await queue.get_jobs("waiting", -2, -1, newest_first=False)] == [
        ids["small"][1], ids["one"][0]
    ]  # fmt: skip
    assert await queue.get_jobs("waiting", 10, 20) == []


async def test_the_admin_listing_and_search_reach_the_grouped_jobs(
    queue: Queue, admin: Admin
) -> None:
    ids = await _fill(queue)
    page = await admin.list_jobs("q", "waiting", size=4, sort="oldest")
    assert page.total == 10
    assert [j["id"] for j in page.jobs] == ids["plain"] + ids["big"][:1]
    last = await admin.list_jobs("q", "waiting", page=3, size=4, sort="oldest")
    assert [j["id"] for j in last.jobs] == ids["small"][1:] + ids["one"]
    found = await admin.list_jobs("q", "waiting", text="small")
    assert sorted(j["id"] for j in found.jobs) == sorted(ids["small"])
    # The cursor search, a few members per call, walks the wait set and then each group.
    hits: list[str] = []
    cursor: str | None = None
    for _ in range(20):
        part = await admin.search_jobs("q", "waiting", text="", cursor=cursor, size=3)
        hits += [j["id"] for j in part.jobs]
        cursor = part.next_cursor
        if cursor is None:
            break
    assert sorted(hits) == sorted(i for group in ids.values() for i in group)
    assert len(hits) == 10
    one = await admin.search_jobs("q", "waiting", text="ONE0", sort="oldest")
    assert [j["id"] for j in one.jobs] == ids["one"] and one.total == 10


async def test_clean_waiting_takes_the_grouped_jobs_too_and_leaves_no_group_key(
    queue: Queue, redis_url: str, key_prefix: str
) -> None:
    await queue.set_group("small", weight=2)  # an override: its hash stays, its count is 0
    ids = await _fill(queue)
    assert await queue.clean("waiting", limit=5) == 5  # a limit still holds across the groups
    assert (await queue.counts())["waiting"] == 5
    assert await queue.clean("waiting") == 5
    assert (await queue.counts())["waiting"] == 0
    assert await queue.get_jobs("waiting", 0, -1) == []
    assert not any([await queue.get_job(i) for group in ids.values() for i in group])
    groups = {g.name: g for g in await queue.groups()}
    assert list(groups) == ["small"] and groups["small"].waiting == 0
    base = f"{key_prefix}:{{q}}:"
    assert await _group_keys(redis_url, key_prefix) == {f"{base}g:small", f"{base}gindex"}
    # A job added to a group afterwards is listed and runs as before.
    again = await queue.add("t", group="big")
    assert [j.id for j in await queue.get_jobs("waiting")] == [again.id]
    assert (await queue.get_group("big")).waiting == 1  # type: ignore[union-attr]


async def test_clean_waiting_goes_through_many_groups_in_bounded_steps(
    queue: Queue, redis_url: str, key_prefix: str
) -> None:
    # More groups than one scan batch, and a group bigger than one call's chunk.
    await queue.add_bulk([{"name": "t", "group": f"g{i}"} for i in range(300)])
    await queue.add_bulk([{"name": "t", "group": "huge"} for _ in range(1200)])
    await queue.add_bulk([{"name": "t"} for _ in range(10)])
    assert (await queue.counts())["waiting"] == 1510
    assert await queue.clean("waiting") == 1510
    assert (await queue.counts())["waiting"] == 0
    assert await queue.groups() == []
    assert await _group_keys(redis_url, key_prefix) == set()


async def test_clean_keeps_the_waiting_jobs_younger_than_the_cut_off(queue: Queue) -> None:
    await _fill(queue)
    assert await queue.clean("waiting", older_than=3600) == 0
    assert (await queue.counts())["waiting"] == 10
    assert (await queue.get_group("big")).waiting == 4  # type: ignore[union-attr]


async def test_a_search_walks_many_groups_of_every_size_each_job_once(
    queue: Queue, admin: Admin
) -> None:
    specs = [{"name": "t", "data": f"g{i}-{j}", "group": f"g{i}"} for i in range(150) for j in
             range(i % 4 + 1)]  # fmt: skip
    added = {job.id for job in await queue.add_bulk([*specs, {"name": "t", "data": "plain"}])}
    hits: list[str] = []
    cursor: str | None = None
    calls = 0
    while True:
        part = await admin.search_jobs("q", "waiting", text="-", cursor=cursor, size=7)
        hits += [j["id"] for j in part.jobs]
        calls += 1
        cursor = part.next_cursor
        if cursor is None:
            break
    assert len(hits) == len(set(hits)) == len(specs) and set(hits) < added
    assert calls >= len(specs) // 7
    with pytest.raises(ConfigurationError, match="not one this search gave out"):
        await admin.search_jobs("q", "waiting", cursor="1:0:x:0:")


async def test_pages_deep_in_runs_of_groups_with_equal_counts_match_the_whole_listing(
    queue: Queue,
) -> None:
    # 40 groups in runs of equal counts (1, 2 and 3 waiting jobs), and 5 jobs without a group.
    specs = [{"name": "t", "group": f"g{i:02}"} for i in range(40) for _ in range(i % 3 + 1)]
    await queue.add_bulk([*specs, *({"name": "t"} for _ in range(5))])
    total = (await queue.counts())["waiting"]
    assert total == len(specs) + 5
    whole = [j.id for j in await queue.get_jobs("waiting", 0, -1, newest_first=False)]
    assert len(whole) == len(set(whole)) == total
    sizes = [j.group for j in await queue.get_jobs("waiting", 0, -1, newest_first=False)][5:]
    runs = [len([g for g in sizes if g == name]) for name in dict.fromkeys(sizes)]
    assert runs == sorted(runs, reverse=True)  # the groups with the most first
    for start, size in ((0, 3), (4, 2), (17, 5), (41, 9), (60, 7), (total - 3, 10)):
        page = await queue.get_jobs("waiting", start, start + size - 1, newest_first=False)
        assert [j.id for j in page] == whole[start : start + size]


@pytest.mark.timeout(120)
def test_the_group_listing_benchmark_runs_end_to_end() -> None:
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "group_listing.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--groups", "50", "--plain", "5"],
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "50 groups of one job and 5 jobs without a group: 55" in proc.stdout
    assert "clean('waiting'): 55 jobs in" in proc.stdout


async def test_clean_with_a_cut_off_takes_only_the_old_jobs_of_each_group(
    queue: Queue, redis_url: str, key_prefix: str
) -> None:
    # 30 groups of 2 (the first of each made old), one group of 2,500 (every other one old).
    small = await queue.add_bulk([{"name": "t", "group": f"g{i}"} for i in range(30) for _ in "ab"])
    big = await queue.add_bulk([{"name": "t", "group": "big"} for _ in range(2500)])
    old = [job.id for job in small[0::2]] + [job.id for job in big[0::2]]
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        for job_id in old:
            await client.hset(f"{key_prefix}:{{q}}:job:{job_id}", "created", 1)
    finally:
        await client.aclose()
    assert await queue.clean("waiting", older_than=3600) == 30 + 1250
    assert (await queue.counts())["waiting"] == 30 + 1250
    groups = {g.name: g.waiting for g in await queue.groups(0, -1)}
    assert groups == {"big": 1250, **{f"g{i}": 1 for i in range(30)}}
    left = {j.id for j in await queue.get_jobs("waiting", 0, -1)}
    assert left.isdisjoint(old) and len(left) == 1280
