"""Flow control against a real Redis, in one process: rate limits, groups (concurrency,
fairness, rate limits, pause, max size), RateLimited from a handler, and the bookkeeping that
must leave no key behind."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from tests.support.conveyor_helpers import running, worker
from tests.support.waiting import async_wait_for

from conveyor import Job, Queue, RateLimit, RateLimited, SyncQueue
from conveyor.errors import ConfigurationError
from conveyor.flow_control import GroupFull
from conveyor.isolation import isolated
from conveyor.storage.flow import FlowCommands
from conveyor.storage.protocol import Code


async def _keys(redis_url: str, prefix: str) -> set[str]:
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        return {key async for key in client.scan_iter(f"{prefix}:*")}
    finally:
        await client.aclose()


def _max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


async def test_queue_rate_limit_holds_jobs_waiting_and_lets_them_out_in_windows(
    queue: Queue,
) -> None:
    await queue.set_rate_limit(RateLimit(5, per=0.5))
    starts: list[float] = []

    async def handler(job: Job) -> None:
        starts.append(time.monotonic())

    await queue.add_bulk([{"name": "t", "data": i} for i in range(15)])
    async with running(worker(queue, {"t": handler}, concurrency=20)):
        await async_wait_for(lambda: len(starts) >= 6, timeout=5)
        counts = await queue.counts()
        assert counts["failed"] == 0
        assert counts["waiting"] >= 4  # held back, not failed
        state = await queue.flow_state()
        assert state.rate_limit == RateLimit(5, per=0.5)
        await async_wait_for(lambda: len(starts) == 15, timeout=10)
    assert _max_in_window(starts, 0.48) <= 5
    assert starts[-1] - starts[0] >= 0.9  # three windows at least
    assert (await queue.counts())["completed"] == 15
    jobs = await queue.get_jobs("completed", 0, 20)
    assert all(job.attempts_made == 1 for job in jobs)


async def test_removing_the_rate_limit_lets_everything_out(queue: Queue) -> None:
    await queue.set_rate_limit(RateLimit(1, per=60))
    await queue.set_rate_limit(None)
    done: list[int] = []
    await queue.add_bulk([{"name": "t", "data": i} for i in range(30)])
    async with running(worker(queue, {"t": lambda job: done.append(job.data)}, concurrency=10)):
        await async_wait_for(lambda: len(done) == 30, timeout=5)
    assert (await queue.flow_state()).rate_limit is None


async def test_group_concurrency_is_never_exceeded(queue: Queue) -> None:
    await queue.set_group_defaults(concurrency=2)
    active: dict[str, int] = {}
    peak: dict[str, int] = {}
    done: list[str] = []

    async def handler(job: Job) -> None:
        g = job.group or ""
        active[g] = active.get(g, 0) + 1
        peak[g] = max(peak.get(g, 0), active[g])
        await asyncio.sleep(0.01)
        active[g] -= 1
        done.append(g)

    await queue.add_bulk(
        [{"name": "t", "data": i, "group": f"g{i % 3}"} for i in range(60)]
        + [{"name": "t", "data": i} for i in range(10)]
    )
    assert (await queue.counts())["waiting"] == 70
    async with running(worker(queue, {"t": handler}, concurrency=30)):
        await async_wait_for(lambda: len(done) == 70, timeout=15)
    assert peak["g0"] == peak["g1"] == peak["g2"] == 2
    assert peak[""] >= 2  # jobs without a group have no such limit


async def test_fairness_a_small_group_is_not_stuck_behind_a_big_one(queue: Queue) -> None:
    order: list[str] = []
    await queue.add_bulk([{"name": "t", "data": i, "group": "A"} for i in range(2000)])
    async with running(worker(queue, {"t": lambda job: order.append(job.group)}, concurrency=10)):
        await async_wait_for(lambda: len(order) >= 100, timeout=10)
        at_add = len(order)
        await queue.add_bulk([{"name": "t", "data": i, "group": "B"} for i in range(20)])
        await async_wait_for(lambda: order.count("B") == 20, timeout=10)
        last_b = max(i for i, g in enumerate(order) if g == "B")
    # Round robin: B's 20 jobs alternate with A's, so all start within ~40 starts (+ in flight).
    assert last_b - at_add <= 100


async def test_weight_gives_a_group_more_turns(queue: Queue) -> None:
    await queue.set_group("heavy", weight=3)
    order: list[str] = []
    await queue.add_bulk(
        [{"name": "t", "data": i, "group": g} for i in range(300) for g in ("heavy", "light")]
    )
    async with running(worker(queue, {"t": lambda job: order.append(job.group)}, concurrency=1)):
        await async_wait_for(lambda: len(order) >= 200, timeout=10)
    first = order[:200]
    assert 140 <= first.count("heavy") <= 160  # 3 : 1


async def test_group_rate_limit_and_its_own_override(queue: Queue) -> None:
    await queue.set_group_defaults(rate_limit=RateLimit(3, per=0.5))
    await queue.set_group("free", rate_limit=None)
    starts: dict[str, list[float]] = {"slow": [], "free": []}

    def handler(job: Job) -> None:
        starts[job.group or ""].append(time.monotonic())

    await queue.add_bulk(
        [{"name": "t", "data": i, "group": g} for i in range(9) for g in ("slow", "free")]
    )
    async with running(worker(queue, {"t": handler}, concurrency=20)):
        await async_wait_for(lambda: len(starts["free"]) == 9, timeout=5)
        assert len(starts["slow"]) <= 6
        await async_wait_for(lambda: len(starts["slow"]) == 9, timeout=10)
    assert _max_in_window(starts["slow"], 0.48) <= 3
    info = {g.name: g for g in await queue.groups()}
    assert info["free"].rate_limit is None and info["free"].overrides == ("rate_limit",)
    assert "slow" not in info  # idle, and no settings of its own: nothing left of it
    await queue.add("t", group="slow", delay=60)
    await queue.add("t", group="slow")
    slow = await queue.get_group("slow")
    assert slow is not None and slow.rate_limit == RateLimit(3, per=0.5) and slow.waiting == 1


async def test_pause_and_resume_one_group(queue: Queue) -> None:
    done: list[str] = []
    assert await queue.pause_group("p") is True
    assert await queue.pause_group("p") is False
    await queue.add_bulk(
        [{"name": "t", "data": i, "group": g} for i in range(5) for g in ("p", "q")]
    )
    async with running(worker(queue, {"t": lambda job: done.append(job.group)}, concurrency=5)):
        await async_wait_for(lambda: done.count("q") == 5, timeout=5)
        await asyncio.sleep(0.2)
        assert "p" not in done
        info = await queue.get_group("p")
        assert info is not None and info.paused and info.waiting == 5
        assert await queue.resume_group("p") is True
        await async_wait_for(lambda: done.count("p") == 5, timeout=5)


async def test_max_size_refuses_the_add_and_stores_nothing(queue: Queue) -> None:
    await queue.set_group("small", max_size=3)
    await queue.add_bulk([{"name": "t", "group": "small"} for _ in range(3)])
    with pytest.raises(GroupFull, match="at most 3 waiting jobs"):
        await queue.add("t", group="small")
    with pytest.raises(GroupFull):
        await queue.add_bulk([{"name": "t", "group": "other"}, {"name": "t", "group": "small"}])
    counts = await queue.counts()
    assert counts["waiting"] == 3
    assert [g.name for g in await queue.groups()] == ["small"]


async def test_bad_flow_input_is_refused_with_a_clear_error(queue: Queue) -> None:
    with pytest.raises(ConfigurationError, match="RateLimit"):
        RateLimit(0)
    with pytest.raises(ConfigurationError, match="per"):
        RateLimit(5, per=-1)
    with pytest.raises(ConfigurationError, match="concurrency"):
        await queue.set_group("g", concurrency=0)
    with pytest.raises(ConfigurationError, match="weight"):
        await queue.set_group_defaults(weight=0)
    with pytest.raises(ConfigurationError, match="group"):
        await queue.add("t", group="")
    with pytest.raises(ConfigurationError, match="rate_limit"):
        await queue.set_rate_limit(5)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="delay"):
        RateLimited(delay=-1)
    assert await queue.groups() == []


async def test_rate_limited_holds_the_group_and_uses_no_attempt(queue: Queue) -> None:
    runs: list[tuple[str | None, int, float]] = []

    async def handler(job: Job) -> str:
        runs.append((job.group, job.data, time.monotonic()))
        if job.data == 0 and sum(1 for r in runs if r[1] == 0) == 1:
            raise RateLimited(delay=0.6)
        return "ok"

    await queue.add_bulk([{"name": "t", "data": i, "group": "api"} for i in range(3)])
    await queue.add("t", 99, group="other")
    async with running(worker(queue, {"t": handler}, concurrency=1)):
        await async_wait_for(lambda: len(runs) >= 5, timeout=10)
    first = runs[0][2]
    api_after = [t for g, d, t in runs[1:] if g == "api"]
    assert runs[0][1] == 0
    assert all(t - first >= 0.55 for t in api_after)  # the group was held
    assert [d for g, d, _ in runs if g == "other"] == [99]  # the other group was not
    job = await queue.get_jobs("completed", 0, 10)
    by_data = {j.data: j for j in job}
    assert by_data[0].attempts_made == 1  # the held run did not count


async def test_rate_limited_without_a_group_holds_only_the_jobs_without_a_group(
    queue: Queue,
) -> None:
    runs: list[tuple[str | None, float]] = []
    held: list[float] = []

    async def handler(job: Job) -> None:
        runs.append((job.group, time.monotonic()))
        if job.group is None and not held:
            held.append(time.monotonic())
            raise RateLimited(delay=0.5)

    await queue.add_bulk([{"name": "t", "data": i} for i in range(3)])
    await queue.add_bulk([{"name": "t", "data": i, "group": f"g{i % 2}"} for i in range(4)])
    async with running(worker(queue, {"t": handler}, concurrency=1)):
        await async_wait_for(lambda: len(runs) == 8, timeout=10)
    plain = [t for g, t in runs if g is None]
    grouped = [t for g, t in runs if g is not None]
    assert len(plain) == 4 and all(t - held[0] >= 0.45 for t in plain[1:])  # held
    assert len(grouped) == 4 and all(t - held[0] < 0.4 for t in grouped)  # the groups were not
    jobs = await queue.get_jobs("completed", 0, 10)
    assert sorted(j.attempts_made for j in jobs) == [1] * 7


async def test_a_fetch_under_a_hold_of_the_jobs_without_a_group_says_when_they_are_due(
    queue: Queue,
) -> None:
    await queue.add_bulk([{"name": "t", "data": i} for i in range(2)])
    commands = queue.commands
    [job] = (await queue.redis.run(commands.fetch("w1", 1))).jobs
    assert job.data == "0"
    await queue.add("t", 9, group="g")
    flow = FlowCommands(commands)
    assert await queue.redis.run(flow.rate_limited(job.id, job.token, 60_000)) == Code.OK
    state = await queue.flow_state()
    assert state.held_until is not None
    taken = await queue.redis.run(commands.fetch("w1", 5))
    assert [j.data for j in taken.jobs] == ["9"]  # the group's job, not the held ones
    assert taken.limited_ms is None
    assert taken.next_due_ms is not None and 55_000 < taken.next_due_ms <= 60_000
    again = await queue.redis.run(commands.fetch("w1", 5))
    assert again.jobs == [] and again.next_due_ms is not None and again.next_due_ms > 55_000
    assert (await queue.counts())["waiting"] == 2


async def test_delayed_and_retried_jobs_return_to_their_group(queue: Queue) -> None:
    await queue.set_group("one", concurrency=1)
    runs: list[tuple[int, int]] = []

    async def handler(job: Job) -> None:
        runs.append((job.data, job.attempt))
        if job.attempt == 1 and job.data == 1:
            raise RuntimeError("again")

    await queue.add("t", 1, group="one", attempts=2)
    await queue.add("t", 2, group="one", delay=0.3)
    job = await queue.get_job((await queue.get_jobs("delayed"))[0].id)
    assert job is not None and job.group == "one" and job.to_dict()["group"] == "one"
    async with running(worker(queue, {"t": handler}, concurrency=5)):
        await async_wait_for(lambda: len(runs) == 3, timeout=10)
    assert sorted(runs) == [(1, 1), (1, 2), (2, 1)]


async def test_an_idle_group_leaves_no_key_behind(
    queue: Queue, redis_url: str, key_prefix: str
) -> None:
    done: list[int] = []
    await queue.add_bulk([{"name": "t", "data": i, "group": f"g{i}"} for i in range(20)])
    await queue.add("t", 100, group="gone")
    await queue.remove((await queue.get_jobs("waiting", 0, 0))[0].id) if False else None
    async with running(worker(queue, {"t": lambda job: done.append(job.data)}, concurrency=8)):
        await async_wait_for(lambda: len(done) == 21, timeout=10)
    keys = await _keys(redis_url, key_prefix)
    group_keys = {k for k in keys if any(f":{p}" in k for p in ("g:", "gw:", "gr:", "gactive"))}
    assert group_keys == set()
    assert await queue.groups() == []
    assert (await queue.counts())["waiting"] == 0


async def test_cancel_and_remove_take_a_job_out_of_its_group(
    queue: Queue, redis_url: str, key_prefix: str
) -> None:
    a = await queue.add("t", 1, group="x")
    b = await queue.add("t", 2, group="x")
    assert (await queue.get_group("x")).waiting == 2  # type: ignore[union-attr]
    await queue.cancel(a.id)
    await queue.remove(b.id)
    assert (await queue.counts())["waiting"] == 0
    assert await queue.groups() == []
    assert not {k for k in await _keys(redis_url, key_prefix) if ":gw:" in k or ":g:" in k}


def test_sync_queue_has_the_same_methods(redis_url: str, key_prefix: str) -> None:
    with SyncQueue("s", url=redis_url, prefix=key_prefix) as q:
        q.set_rate_limit(RateLimit(10, per=1))
        q.set_group_defaults(concurrency=3)
        q.set_group("t1", weight=2, max_size=10)
        assert q.pause_group("t1") and q.resume_group("t1")
        q.add("x", {}, group="t1")
        (info,) = q.groups()
        assert (info.name, info.waiting, info.concurrency, info.weight) == ("t1", 1, 3, 2)
        state = q.flow_state()
        assert state.rate_limit == RateLimit(10, per=1) and state.group_defaults.concurrency == 3


async def test_a_worker_over_several_queues_is_not_held_by_one_limited_queue(
    make_queue: Callable[..., Queue],
) -> None:
    slow, fast = make_queue("slow"), make_queue("fast")
    await slow.set_rate_limit(RateLimit(1, per=30))
    done: list[str] = []
    handler: Any = lambda job: done.append(job.queue)  # noqa: E731
    await slow.add_bulk([{"name": "t"} for _ in range(3)])
    async with running(worker([slow, fast], {"t": handler}, concurrency=4)):
        await async_wait_for(lambda: done.count("slow") == 1, timeout=5)
        await fast.add_bulk([{"name": "t"} for _ in range(20)])
        await async_wait_for(lambda: done.count("fast") == 20, timeout=5)
    assert done.count("slow") == 1


async def test_priority_and_fifo_hold_inside_a_group(queue: Queue) -> None:
    order: list[int] = []
    await queue.add_bulk([{"name": "t", "data": i, "group": "g"} for i in range(5)])
    await queue.add("t", 100, group="g", priority=10)
    await queue.add("t", 50, group="g", priority=5)
    async with running(worker(queue, {"t": lambda job: order.append(job.data)}, concurrency=1)):
        await async_wait_for(lambda: len(order) == 7, timeout=5)
    assert order == [100, 50, 0, 1, 2, 3, 4]


async def test_ttl_expiry_inside_a_group_frees_its_turn(queue: Queue) -> None:
    await queue.set_group("g", concurrency=1)
    await queue.add("t", 1, group="g", ttl=0.05)
    await queue.add("t", 2, group="g")
    await asyncio.sleep(0.1)
    done: list[int] = []
    async with running(worker(queue, {"t": lambda job: done.append(job.data)}, concurrency=5)):
        await async_wait_for(lambda: done == [2], timeout=5)
    counts = await queue.counts()
    assert (counts["failed"], counts["completed"], counts["waiting"]) == (1, 1, 0)
    info = await queue.get_group("g")
    assert info is not None and (info.active, info.waiting) == (0, 0)


@isolated(processes=1)
def limited_in_child(job: Job) -> int:
    """Rate limited on its first run (a marker file says it ran), in a child process."""
    marker = job.data["marker"]
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RateLimited(delay=0.3)
    return os.getpid()


@pytest.mark.timeout(60)
async def test_rate_limited_in_an_isolated_child_process_keeps_its_meaning(
    queue: Queue, tmp_path: Any
) -> None:
    job = await queue.add("t", {"marker": str(tmp_path / "ran")}, group="api")
    async with running(worker(queue, {"t": limited_in_child}, concurrency=1)):
        result = await job.wait(timeout=30)
    assert result != os.getpid()
    done = await queue.get_job(job.id)
    assert done is not None and done.attempts_made == 1 and done.error is None


async def test_raising_a_limit_lets_a_held_back_group_out_at_once(queue: Queue) -> None:
    await queue.set_group_defaults(concurrency=1)
    release = asyncio.Event()
    started: list[int] = []

    async def handler(job: Job) -> None:
        started.append(job.data)
        await release.wait()

    await queue.add_bulk([{"name": "t", "data": i, "group": "g"} for i in range(3)])
    async with running(worker(queue, {"t": handler}, concurrency=5)):
        await async_wait_for(lambda: len(started) == 1, timeout=5)
        await asyncio.sleep(0.2)
        assert len(started) == 1
        await queue.set_group_defaults(concurrency=2)
        await async_wait_for(lambda: len(started) == 2, timeout=5)
        await queue.set_group("g", concurrency=None)  # no limit for this group
        await async_wait_for(lambda: len(started) == 3, timeout=5)
        info = await queue.get_group("g")
        assert info is not None and info.concurrency is None and info.active == 3
        await queue.set_group("g", reset=True)
        info = await queue.get_group("g")
        assert info is not None and info.concurrency == 2 and info.overrides == ()
        release.set()
    assert await queue.groups() == []


def _count_fetches(url: str, sha: str, prefix: str, seconds: float, out: list[int]) -> None:
    """Count this queue's fetch calls Redis runs for ``seconds`` (MONITOR, in a thread)."""
    import redis

    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + seconds
    count = 0
    with client.monitor() as monitor:
        out.append(-1)  # listening
        for command in monitor.listen():
            text = command.get("command", "")
            if sha in text and prefix in text:
                count += 1
            if time.monotonic() > deadline:
                break
    client.close()
    out[0] = count


async def test_a_limited_worker_sleeps_without_fetching_even_when_jobs_arrive(
    queue: Queue, redis_url: str, key_prefix: str
) -> None:
    await queue.set_rate_limit(RateLimit(1, per=2))
    done: list[float] = []
    await queue.add("t")
    async with running(worker(queue, {"t": lambda job: done.append(time.monotonic())})):
        await async_wait_for(lambda: len(done) == 1, timeout=5)
        counted: list[int] = []
        sha = queue.commands.script("fetch").sha
        watcher = asyncio.get_running_loop().run_in_executor(
            None, _count_fetches, redis_url, sha, key_prefix, 1.2, counted
        )
        await async_wait_for(lambda: counted == [-1], timeout=5)
        for _ in range(5):  # each add wakes idle workers: this one is not listening
            await queue.add("t")
            await asyncio.sleep(0.1)
        await watcher
        assert counted == [0]
        await async_wait_for(lambda: len(done) == 2, timeout=5)
    assert done[1] - done[0] >= 1.9


async def test_a_full_group_refuses_only_its_own_add_among_concurrent_ones(queue: Queue) -> None:
    await queue.set_group("small", max_size=1)
    await queue.add("t", group="small")
    results = await asyncio.gather(
        *(queue.add("t", i) for i in range(20)),
        queue.add("t", group="small"),
        *(queue.add("t", i, group="other") for i in range(20)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 1 and isinstance(refused[0], GroupFull)
    counts = await queue.counts()
    assert counts["waiting"] == 41


async def test_a_groups_waiting_jobs_are_listed_in_the_order_they_run(
    queue: Queue, redis_url: str, key_prefix: str
) -> None:
    await queue.add_bulk([{"name": "t", "data": i, "group": "g"} for i in range(4)])
    await queue.add("t", 9, group="g", priority=1)
    assert [j.data for j in await queue.group_jobs("g")] == [9, 0, 1, 2, 3]
    assert [j.data for j in await queue.group_jobs("g", 1, 2)] == [0, 1]
    assert await queue.group_jobs("none") == []
    with SyncQueue("q", url=redis_url, prefix=key_prefix) as sync:
        assert [j.group for j in sync.group_jobs("g", 0, 0)] == ["g"]
