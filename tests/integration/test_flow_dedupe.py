"""Flow control with dedup modes: an add with both ``dedupe`` and ``group`` places its new job
in its group (as a plain add does) and finds an existing job whatever its group, in each of the
three modes, against a real Redis."""

from __future__ import annotations

import asyncio

import pytest
from tests.support.conveyor_helpers import running, worker
from tests.support.waiting import async_wait_for

from conveyor import Dedupe, Job, Queue
from conveyor.flow_control import GroupFull


async def test_until_finished_with_a_group_waits_in_the_group_and_runs_under_its_limit(
    queue: Queue,
) -> None:
    await queue.set_group("tenant", concurrency=1)
    first = await queue.add("t", 1, group="tenant", dedupe=Dedupe.until_finished("k"))
    again = await queue.add("t", 2, group="tenant", dedupe=Dedupe.until_finished("k"))
    other = await queue.add("t", 3, group="tenant", dedupe=Dedupe.until_finished("k2"))
    assert again.deduplicated and again.id == first.id and not other.deduplicated
    tenant = await queue.get_group("tenant")
    assert tenant is not None and tenant.waiting == 2
    assert [j.id for j in await queue.group_jobs("tenant")] == [first.id, other.id]
    stored = await queue.get_job(first.id)
    assert stored is not None and stored.group == "tenant"
    assert (await queue.counts())["waiting"] == 2
    active: list[int] = []
    most: list[int] = []
    release = asyncio.Event()

    async def handler(job: Job) -> None:
        active.append(job.data)
        most.append(len(active))
        await release.wait()
        active.remove(job.data)

    async with running(worker(queue, {"t": handler}, concurrency=4)):
        await async_wait_for(lambda: len(most) == 1, timeout=10)
        await asyncio.sleep(0.2)
        assert len(most) == 1  # the group's concurrency of 1 holds for a deduped job too
        running_one = await queue.add("t", 4, group="tenant", dedupe=Dedupe.until_finished("k"))
        assert running_one.deduplicated and running_one.id == first.id
        release.set()
        await async_wait_for(lambda: len(most) == 2, timeout=10)
    assert max(most) == 1
    assert [(g.name, g.waiting) for g in await queue.groups()] == [("tenant", 0)]


async def test_throttle_with_a_group_in_a_bulk_add_among_plain_and_grouped_jobs(
    queue: Queue,
) -> None:
    jobs = await queue.add_bulk(
        [
            {"name": "t", "data": 1, "group": "a", "dedupe": Dedupe.throttle("x", 60)},
            {"name": "t", "data": 2, "group": "a"},
            {"name": "t", "data": 3},
            {"name": "t", "data": 4, "group": "b", "dedupe": Dedupe.throttle("x", 60)},
        ]
    )
    assert [j.deduplicated for j in jobs] == [False, False, False, True]
    assert jobs[3].id == jobs[0].id
    groups = {g.name: g.waiting for g in await queue.groups()}
    assert groups == {"a": 2}
    assert (await queue.counts())["waiting"] == 3
    listed = [j.id for j in await queue.get_jobs("waiting", 0, -1, newest_first=False)]
    assert listed == [jobs[2].id, jobs[0].id, jobs[1].id]


async def test_debounce_with_a_group_goes_into_the_group_when_due(queue: Queue) -> None:
    first = await queue.add("t", 1, group="g", dedupe=Dedupe.debounce("d", 0.3))
    again = await queue.add("t", 2, group="g", dedupe=Dedupe.debounce("d", 0.3))
    assert again.deduplicated and again.id == first.id
    assert (await queue.counts())["delayed"] == 1
    assert await queue.groups() == []  # delayed: not in the group yet
    ran: list[Job] = []
    async with running(worker(queue, {"t": ran.append}, concurrency=2)):
        await async_wait_for(lambda: len(ran) == 1, timeout=10)
    assert ran[0].id == first.id and ran[0].data == 2 and ran[0].group == "g"


async def test_a_full_group_refuses_a_deduped_add_and_keeps_no_record(queue: Queue) -> None:
    await queue.set_group("small", max_size=1)
    await queue.add("t", group="small")
    with pytest.raises(GroupFull):
        await queue.add("t", group="small", dedupe=Dedupe.until_finished("key"))
    assert (await queue.counts())["waiting"] == 1
    # Nothing was recorded under the key: once there is room, the same add makes a job.
    await queue.set_group("small", max_size=2)
    added = await queue.add("t", group="small", dedupe=Dedupe.until_finished("key"))
    assert not added.deduplicated
    assert (await queue.get_group("small")).waiting == 2  # type: ignore[union-attr]


async def test_a_bulk_add_in_steps_says_which_jobs_were_added_when_a_group_is_full(
    queue: Queue,
) -> None:
    await queue.set_group("small", max_size=1)
    await queue.add("t", group="small")
    with pytest.raises(GroupFull) as refused:
        await queue.add_bulk(
            [
                {"name": "t", "data": 1, "dedupe": Dedupe.until_finished("a")},
                {"name": "t", "data": 2, "group": "small", "dedupe": Dedupe.until_finished("b")},
                {"name": "t", "data": 3},
            ]
        )
    added = refused.value.added
    assert added is not None and added[1] is None
    assert "1 of the 3 jobs" in str(refused.value)
    stored = {j.id for j in await queue.get_jobs("waiting", 0, -1)}
    assert {added[0].id, added[2].id} <= stored  # type: ignore[union-attr]
    assert (await queue.counts())["waiting"] == 3


async def test_concurrent_adds_with_dedupe_and_a_full_group_are_not_added_twice(
    queue: Queue,
) -> None:
    await queue.set_group("small", max_size=1)
    await queue.add("t", group="small")
    results = await asyncio.gather(
        *(queue.add("t", i) for i in range(5)),
        queue.add("t", 9, group="small", dedupe=Dedupe.until_finished("k")),
        *(queue.add("t", i) for i in range(5, 10)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, GroupFull)]
    assert len(refused) == 1 and "nothing was added" in str(refused[0])
    assert (await queue.counts())["waiting"] == 11  # each plain add once, the first one


async def test_concurrent_adds_refused_by_two_full_groups_each_name_their_own_group(
    queue: Queue,
) -> None:
    for name in ("a", "b"):
        await queue.set_group(name, max_size=1)
        await queue.add("t", group=name)
    results = await asyncio.gather(
        queue.add("t", 1),
        queue.add("t", 2, group="a", dedupe=Dedupe.until_finished("ka")),
        queue.add("t", 3, group="b", dedupe=Dedupe.until_finished("kb")),
        queue.add("t", 4),
        return_exceptions=True,
    )
    plain_1, to_a, to_b, plain_4 = results
    assert isinstance(to_a, GroupFull) and to_a.group == "a" and "'a'" in str(to_a)
    assert isinstance(to_b, GroupFull) and to_b.group == "b" and "'b'" in str(to_b)
    assert isinstance(plain_1, Job) and isinstance(plain_4, Job)
    assert (await queue.counts())["waiting"] == 4  # the two plain adds, once each


async def test_a_bulk_add_in_steps_names_each_refused_jobs_own_group(queue: Queue) -> None:
    for name in ("a", "b"):
        await queue.set_group(name, max_size=1)
        await queue.add("t", group=name)
    with pytest.raises(GroupFull) as refused:
        await queue.add_bulk(
            [
                {"name": "t", "data": 1},
                {"name": "t", "data": 2, "group": "a", "dedupe": Dedupe.until_finished("ka")},
                {"name": "t", "data": 3, "group": "b", "dedupe": Dedupe.until_finished("kb")},
            ]
        )
    own = refused.value.refusals
    assert own is not None and own[0] is None
    assert [e.group for e in own[1:] if e is not None] == ["a", "b"]
