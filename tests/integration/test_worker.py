"""A worker in-process against a real Redis: results, failures, retries, leases, timeouts."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from tests.support.conveyor_helpers import running, worker
from tests.support.waiting import async_wait_for

from conveyor import Backoff, Job, JobFailed, JobState, Queue, Retry, Unrecoverable, Worker
from conveyor.errors import ConfigurationError, InvalidTransition, JobNotFound, WaitTimeout
from conveyor.storage.protocol import PRIORITY_BAND, PRIORITY_OFFSET


async def blocked_clients(queue: Queue, command: str, n: int) -> bool:
    """True once ``n`` clients are blocked in ``command`` (waits in position, idle workers)."""
    listing = await queue.redis.command("CLIENT", "LIST")
    clients = [
        dict(f.split("=", 1) for f in line.split() if "=" in f) for line in listing.splitlines()
    ]
    return sum(1 for c in clients if c.get("cmd") == command and "b" in c.get("flags", "")) >= n


async def test_a_handler_result_progress_and_log_are_stored(queue: Queue) -> None:
    @queue.handler("send")
    async def send(job: Job) -> dict[str, Any]:
        await job.update_progress({"step": "connect", "pct": 50})
        await job.log("connected")
        await job.log("sent")
        return {"sent": job.data["to"]}

    async with running(worker(queue, {})):
        job = await queue.add("send", {"to": "a@b.c"})
        assert await job.wait(timeout=10) == {"sent": "a@b.c"}
    done = await queue.get_job(job.id)
    assert done is not None and done.state is JobState.COMPLETED
    assert done.progress == {"step": "connect", "pct": 50}
    assert done.attempts_made == 1 and done.worker
    assert done.started_at and done.finished_at and done.finished_at >= done.started_at
    assert await queue.job_logs(job.id) == ["connected", "sent"]


async def test_sync_handlers_run_in_threads(queue: Queue) -> None:
    import threading

    main_thread = threading.get_ident()

    def blocking(job: Job) -> int:
        assert threading.get_ident() != main_thread
        time.sleep(0.05)
        return int(job.data) * 2

    async with running(worker(queue, {"double": blocking}, concurrency=4)):
        jobs = await queue.add_bulk({"name": "double", "data": i} for i in range(8))
        started = time.monotonic()
        results = await asyncio.gather(*(j.wait(10) for j in jobs))
    assert results == [i * 2 for i in range(8)]
    assert time.monotonic() - started < 8 * 0.05 * 2  # four threads really ran at once


async def test_failure_records_each_attempt_then_fails(queue: Queue) -> None:
    calls = 0

    async def flaky(job: Job) -> None:
        nonlocal calls
        calls += 1
        raise ValueError(f"smtp refused (call {calls})")

    async with running(worker(queue, {"flaky": flaky})):
        job = await queue.add("flaky", attempts=3)
        with pytest.raises(JobFailed, match=r"ValueError: smtp refused \(call 3\)") as info:
            await job.wait(timeout=10)
    assert info.value.job_id == job.id
    failed = await queue.get_job(job.id)
    assert failed is not None and failed.state is JobState.FAILED
    assert failed.attempts_made == 3
    attempts = await queue.job_attempts(job.id)
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert "Traceback" in attempts[0]["traceback"] and "flaky" in attempts[0]["traceback"]
    assert "smtp refused (call 1)" in attempts[0]["error"]


async def test_retries_follow_the_backoff_schedule(queue: Queue) -> None:
    starts: list[float] = []

    async def flaky(job: Job) -> str:
        starts.append(time.monotonic())
        if len(starts) < 4:
            raise RuntimeError("not yet")
        return "ok"

    async with running(worker(queue, {"flaky": flaky})):
        job = await queue.add("flaky", attempts=4, backoff=Backoff.exponential(0.2))
        assert await job.wait(timeout=15) == "ok"
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    for gap, expected in zip(gaps, [0.2, 0.4, 0.8], strict=True):
        assert expected - 0.02 <= gap <= expected + 0.35, (gaps, expected)


async def test_custom_backoff_strategy_registered_on_the_worker(queue: Queue) -> None:
    starts: list[float] = []

    async def flaky(job: Job) -> None:
        starts.append(time.monotonic())
        raise RuntimeError("nope")

    strategies = {"quarter": lambda attempt, error: 0.25}
    async with running(worker(queue, {"flaky": flaky}, backoff_strategies=strategies)):
        job = await queue.add("flaky", attempts=2, backoff=Backoff.custom("quarter"))
        with pytest.raises(JobFailed):
            await job.wait(timeout=10)
    assert 0.23 <= starts[1] - starts[0] <= 0.6


async def test_retry_and_unrecoverable_control_flow(queue: Queue) -> None:
    seen: list[int] = []

    async def asks_retry(job: Job) -> str:
        seen.append(job.attempt)
        if job.attempt == 1:
            raise Retry(delay=0.1, reason="rate limited")
        return "second time lucky"

    async def gives_up(job: Job) -> None:
        raise Unrecoverable("invalid address")

    async with running(worker(queue, {"retry": asks_retry, "give-up": gives_up})):
        lucky = await queue.add("retry", attempts=2)
        doomed = await queue.add("give-up", attempts=10)
        assert await lucky.wait(timeout=10) == "second time lucky"
        with pytest.raises(JobFailed, match="invalid address"):
            await doomed.wait(timeout=10)
    assert seen == [1, 2]
    assert (await queue.get_job(doomed.id)).attempts_made == 1  # type: ignore[union-attr]


async def test_unknown_job_name_fails_that_job_and_the_worker_goes_on(queue: Queue) -> None:
    async def ok(job: Job) -> str:
        return "fine"

    async with running(worker(queue, {"ok": ok})):
        stray = await queue.add("nobody-handles-this", attempts=5)
        good = await queue.add("ok")
        with pytest.raises(JobFailed, match="no handler for job name 'nobody-handles-this'"):
            await stray.wait(timeout=10)
        assert await good.wait(timeout=10) == "fine"
    assert (await queue.get_job(stray.id)).attempts_made == 1  # type: ignore[union-attr]


async def test_malformed_job_in_redis_fails_with_a_reason(queue: Queue, redis_url: str) -> None:
    async def ok(job: Job) -> str:
        return "fine"

    garbage = await queue.add("ok", {"fine": True})
    client = aioredis.Redis.from_url(redis_url)
    await client.hset(queue.commands.keys.job(garbage.id), "data", b"\xff{not json")
    await client.aclose()
    async with running(worker(queue, {"ok": ok})):
        after = await queue.add("ok")
        with pytest.raises(JobFailed, match="malformed job in Redis: field 'data' is not valid"):
            await garbage.wait(timeout=10)
        assert await after.wait(timeout=10) == "fine"


async def test_unserialisable_result_fails_the_job_clearly(queue: Queue) -> None:
    async def odd(job: Job) -> object:
        return object()

    async with running(worker(queue, {"odd": odd})):
        job = await queue.add("odd")
        with pytest.raises(JobFailed, match="result is not JSON-serialisable"):
            await job.wait(timeout=10)


async def test_timeout_cancels_an_async_job(queue: Queue) -> None:
    cancelled = asyncio.Event()

    async def slow(job: Job) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with running(worker(queue, {"slow": slow})):
        job = await queue.add("slow", timeout=0.2)
        with pytest.raises(JobFailed, match=r"timeout: the job ran longer than 0.2 s"):
            await job.wait(timeout=10)
    assert cancelled.is_set()


async def test_ttl_expires_jobs_that_did_not_start_in_time(queue: Queue) -> None:
    job = await queue.add("late", ttl=0.05)
    await asyncio.sleep(0.1)  # the ttl must pass before any worker exists; this is the setup

    async def late(job: Job) -> None:
        raise AssertionError("an expired job must not run")

    async with running(worker(queue, {"late": late})):
        with pytest.raises(JobFailed, match="expired"):
            await job.wait(timeout=10)


async def test_delayed_jobs_run_on_time_in_order(make_queue: Callable[..., Queue]) -> None:
    # idle_wake_seconds is long: only the due time of the next delayed job can wake the worker.
    queue = make_queue(idle_wake_seconds=30)
    started: dict[str, float] = {}

    async def mark(job: Job) -> None:
        started[job.data] = time.monotonic()

    async with running(worker(queue, {"mark": mark})):
        t0 = time.monotonic()
        later = await queue.add("mark", "later", delay=0.6)
        sooner = await queue.add("mark", "sooner", delay=0.3)
        await asyncio.gather(later.wait(10), sooner.wait(10))
    assert 0.28 <= started["sooner"] - t0 <= 0.6
    assert 0.58 <= started["later"] - t0 <= 0.9


async def test_an_idle_worker_wakes_on_add_without_polling(
    make_queue: Callable[..., Queue],
) -> None:
    # idle_wake_seconds is long: only the marker key can wake the worker in time.
    queue = make_queue(idle_wake_seconds=60)

    async def ok(job: Job) -> str:
        return "awake"

    async with running(worker(queue, {"ok": ok})):
        await async_wait_for(lambda: blocked_clients(queue, "bzpopmin", 1), timeout=5)
        for _ in range(3):
            job = await queue.add("ok")
            assert await job.wait(timeout=2) == "awake"


async def test_an_idle_worker_fetches_once_per_wake(make_redis: Callable[..., Any]) -> None:
    """The fetch queued behind the idle wait is all a wake costs: when it finds the queue
    drained, the worker goes back to waiting without a second (empty) fetch."""
    server = make_redis()
    queue = Queue("q", url=server.url, idle_wake_seconds=60)

    async def ok(job: Job) -> str:
        return "ok"

    fetch_sha = queue.commands.script("fetch").sha
    try:
        async with running(worker(queue, {"ok": ok})):
            await async_wait_for(lambda: blocked_clients(queue, "bzpopmin", 1), timeout=5)
            # Every command from here on goes to the slow log, with its arguments (the sha).
            await queue.redis.command("CONFIG", "SET", "slowlog-max-len", "10000")
            await queue.redis.command("CONFIG", "SET", "slowlog-log-slower-than", "0")
            await queue.redis.command("SLOWLOG", "RESET")
            for _ in range(10):
                job = await queue.add("ok")
                assert await job.wait(timeout=2) == "ok"
                await async_wait_for(lambda: blocked_clients(queue, "bzpopmin", 1), timeout=5)
            entries = await queue.redis.command("SLOWLOG", "GET", "-1")
    finally:
        await queue.close()
    # An entry is [id, time, duration, [command, args...], client address, client name].
    fetches = sum(1 for entry in entries if entry[3][:2] == ["EVALSHA", fetch_sha])
    assert fetches == 10  # one per job; two before (the wait's, then an empty one)


async def test_an_idle_worker_with_fewer_slots_than_queues_wakes_for_the_last_queue(
    make_queue: Callable[..., Queue],
) -> None:
    """With one slot, the fetch queued behind the idle wait asks only the first queue. An add
    to the second wakes the worker (its marker) while that fetch finds the first one empty:
    the worker must still ask the second queue, not go back to waiting (60 s here)."""
    first, second = make_queue("first", idle_wake_seconds=60), make_queue("second")

    async def ok(job: Job) -> str:
        return job.queue

    async with running(worker([first, second], {"ok": ok}, concurrency=1)):
        for queue in (second, first, second):
            await async_wait_for(lambda: blocked_clients(first, "bzpopmin", 1), timeout=5)
            job = await queue.add("ok")
            assert await job.wait(timeout=5) == queue.name


async def test_a_fetch_queued_behind_the_idle_wait_is_handed_back_when_the_worker_stops(
    make_queue: Callable[..., Queue],
) -> None:
    """The idle wait has a fetch queued behind it on its connection. Stopping ends the wait
    and that fetch then runs: a job it leases must go back to waiting, not stay leased."""
    queue = make_queue(idle_wake_seconds=60)
    ran: list[str] = []

    async def ok(job: Job) -> None:
        ran.append(job.id)

    job = await queue.add("ok", delay=3600)
    keys = queue.commands.keys
    async with running(worker(queue, {"ok": ok})):
        await async_wait_for(lambda: blocked_clients(queue, "bzpopmin", 1), timeout=5)
        # Make the job runnable behind the worker's back: no marker, so nothing wakes it.
        # (its wait score as add_job gives it: priority 0, its id its sequence number)
        score = PRIORITY_OFFSET * PRIORITY_BAND + int(job.id)
        await queue.redis.command("ZREM", keys.delayed, job.id)
        await queue.redis.command("ZADD", keys.wait, score, job.id)
    assert ran == []
    stored = await queue.get_job(job.id)
    assert stored is not None and stored.state is JobState.WAITING
    assert await queue.redis.command("HLEN", keys.leases) == 0
    assert await queue.redis.command("ZCARD", keys.active) == 0
    async with running(worker(queue, {"ok": ok})):
        assert await job.wait(timeout=5) is None
    assert ran == [job.id]


async def test_priority_order_is_respected_by_a_single_slot_worker(queue: Queue) -> None:
    order: list[str] = []

    async def mark(job: Job) -> None:
        order.append(job.data)

    await queue.add("mark", "low", priority=-1)
    await queue.add("mark", "normal")
    await queue.add("mark", "urgent", priority=5)
    async with running(worker(queue, {"mark": mark}, concurrency=1)):
        await async_wait_for(lambda: len(order) == 3, timeout=10)
    assert order == ["urgent", "normal", "low"]


async def test_paused_queue_hands_out_nothing_until_resumed(queue: Queue) -> None:
    async def ok(job: Job) -> str:
        return "ran"

    await queue.pause()
    async with running(worker(queue, {"ok": ok})):
        job = await queue.add("ok")
        # The worker woke for the add, found the queue paused and went back to sleep.
        await async_wait_for(lambda: blocked_clients(queue, "bzpopmin", 1), timeout=5)
        assert (await queue.get_job(job.id)).state is JobState.WAITING  # type: ignore[union-attr]
        await queue.resume()
        assert await job.wait(timeout=5) == "ran"


async def test_manual_retry_of_a_failed_job_gives_it_fresh_attempts(queue: Queue) -> None:
    fail = True

    async def sometimes(job: Job) -> str:
        if fail:
            raise RuntimeError("down")
        return "up"

    async with running(worker(queue, {"s": sometimes})):
        job = await queue.add("s", attempts=2)
        with pytest.raises(JobFailed):
            await job.wait(timeout=10)
        fail = False
        await queue.retry(job.id)
        assert await job.wait(timeout=10) == "up"
    assert len(await queue.job_attempts(job.id)) == 2  # history of the failed attempts is kept


async def test_leases_are_renewed_for_long_jobs(make_queue: Callable[..., Queue]) -> None:
    queue = make_queue(lease_seconds=0.3)
    runs = 0

    async def long(job: Job) -> str:
        nonlocal runs
        runs += 1
        await asyncio.sleep(1.2)  # four lease periods
        return "done"

    async with running(worker(queue, {"long": long})):
        job = await queue.add("long")
        assert await job.wait(timeout=10) == "done"
    done = await queue.get_job(job.id)
    assert runs == 1 and done is not None and done.stalls == 0


async def test_retention_keeps_only_the_newest_completed_jobs(
    make_queue: Callable[..., Queue],
) -> None:
    queue = make_queue(keep_completed=5, keep_failed=0)

    async def ok(job: Job) -> int:
        if job.data < 0:
            raise RuntimeError("negative")
        return int(job.data)

    await queue.pause()  # start waiting before the jobs run: keep_failed=0 deletes `bad` at once
    jobs = await queue.add_bulk({"name": "ok", "data": i} for i in range(20))
    bad = await queue.add("ok", -1)
    waits = asyncio.gather(jobs[-1].wait(timeout=10), bad.wait(timeout=10), return_exceptions=True)
    await async_wait_for(lambda: blocked_clients(queue, "xread", 2), timeout=5)
    async with running(worker(queue, {"ok": ok}, concurrency=1)):
        await queue.resume()
        last, failure = await waits
    assert last == 19
    assert isinstance(failure, JobFailed) and "negative" in failure.reason
    counts = await queue.counts()
    assert counts["completed"] == 5 and counts["failed"] == 0
    assert await queue.get_job(jobs[0].id) is None
    assert await queue.get_job(bad.id) is None
    kept = await queue.get_jobs("completed")
    assert sorted(j.data for j in kept) == [15, 16, 17, 18, 19]


async def test_stalled_jobs_fail_after_max_stalls(make_queue: Callable[..., Queue]) -> None:
    # A job leased by a "worker" that never renews: recovery hands it back max_stalls times.
    queue = make_queue(lease_seconds=0.2, max_stalls=1)
    job = await queue.add("ghost")
    from conveyor.storage.redis import AsyncRedis

    store = AsyncRedis(queue.settings)
    try:
        for expected_stalls in (1, 2):
            fetched = await store.run(queue.commands.fetch("ghost-worker", 1))
            assert [raw[0] for raw in fetched.jobs] == [job.id]

            async def recovered(stalls: int = expected_stalls) -> bool:
                await store.run(queue.commands.recover_stalled())
                current = await queue.get_job(job.id)
                return current is not None and current.stalls == stalls

            await async_wait_for(recovered, timeout=5, interval=0.05)
    finally:
        await store.close()
    with pytest.raises(JobFailed, match="stalled: its lease expired 2 times"):
        await job.wait(timeout=2)


async def test_stale_owner_cannot_overwrite_the_new_owners_outcome(
    make_queue: Callable[..., Queue],
) -> None:
    queue = make_queue(lease_seconds=0.2)
    job = await queue.add("contested")
    from conveyor.storage.redis import AsyncRedis

    store = AsyncRedis(queue.settings)
    try:
        first = await store.run(queue.commands.fetch("old-owner", 1))
        old_token = first.jobs[0][1]

        async def recovered() -> bool:
            await store.run(queue.commands.recover_stalled())
            return (await queue.counts())["waiting"] == 1

        await async_wait_for(recovered, timeout=5, interval=0.05)
        second = await store.run(queue.commands.fetch("new-owner", 1))
        new_token = second.jobs[0][1]
        assert new_token != old_token
        stale = queue.commands
        assert await store.run(stale.complete([(job.id, old_token, '"old"', 1)])) == [job.id]
        assert await store.run(stale.fail(job.id, old_token, "old", "{}", 0)) == -1
        assert await store.run(stale.update_progress(job.id, old_token, "99")) == -1
        assert await store.run(stale.complete([(job.id, new_token, '"new"', 1)])) == []
    finally:
        await store.close()
    assert await job.wait(timeout=2) == "new"


async def test_refuses_to_start_on_an_evicting_redis(make_redis: Callable[..., Any]) -> None:
    server = make_redis(maxmemory="100mb", maxmemory_policy="allkeys-lru")
    queue = Queue("q", url=server.url)
    from conveyor.errors import UnsafeRedisConfig

    with pytest.raises(UnsafeRedisConfig, match="maxmemory-policy is 'allkeys-lru'"):
        await Worker(queue, {}).run(install_signal_handlers=False)
    async with running(Worker(queue, {}, allow_evicting_redis=True)):
        pass
    await queue.close()


async def test_wait_returns_large_results_and_results_of_jobs_already_trimmed(
    make_queue: Callable[..., Queue],
) -> None:
    queue = make_queue(keep_completed=0)
    big = {"rows": ["x" * 100] * 50}  # over the 1 KiB carried in events

    async def echo(job: Job) -> Any:
        return big if job.data == "big" else job.data

    async with running(worker(queue, {"echo": echo})):
        small_job = await queue.add("echo", {"n": 1})
        assert await small_job.wait(timeout=10) == {"n": 1}
        # A null result is not written out in the event: it says whose result is large.
        none_job = await queue.add("echo", None)
        assert await none_job.wait(timeout=10) is None
    # keep_completed=0: the job is gone, the event carried its small result.
    assert await queue.get_job(small_job.id) is None
    assert await queue.get_job(none_job.id) is None
    kept = make_queue("kept")
    async with running(worker(kept, {"echo": echo})):
        big_job = await kept.add("echo", "big")
        assert await big_job.wait(timeout=10) == big


async def test_wait_finds_the_outcome_of_a_job_gone_before_the_wait_began(
    make_queue: Callable[..., Queue],
) -> None:
    queue = make_queue(keep_completed=0, keep_failed=0)

    async def echo(job: Job) -> Any:
        if job.data == "fail":
            raise Unrecoverable("no")
        return job.data

    async with running(worker(queue, {"echo": echo})):
        jobs = [await queue.add("echo", d) for d in ({"n": 1}, None, "fail")]
        for job in jobs:  # finished and removed by retention before anyone waits
            await async_wait_for(lambda job=job: _gone(queue, job.id), timeout=10)
    assert await jobs[0].wait(timeout=1) == {"n": 1}
    assert await jobs[1].wait(timeout=1) is None
    with pytest.raises(JobFailed, match="no"):
        await jobs[2].wait(timeout=1)


async def _gone(queue: Queue, job_id: str) -> bool:
    return await queue.get_job(job_id) is None


async def test_cancel_fails_a_waiting_job_and_stops_a_running_one(queue: Queue) -> None:
    started = asyncio.Event()

    async def slow(job: Job) -> None:
        started.set()
        await asyncio.sleep(60)

    waiting = await queue.add("slow", delay=3600)
    assert await queue.cancel(waiting.id) is JobState.DELAYED
    with pytest.raises(JobFailed, match="cancelled"):
        await waiting.wait(timeout=1)
    with pytest.raises(InvalidTransition, match="cannot cancel"):
        await queue.cancel(waiting.id)
    with pytest.raises(JobNotFound):
        await queue.cancel("no-such-job")

    async with running(worker(queue, {"slow": slow})):
        job = await queue.add("slow", attempts=3)
        await asyncio.wait_for(started.wait(), 10)
        assert await queue.cancel(job.id) is JobState.ACTIVE
        with pytest.raises(JobFailed, match="cancelled"):
            await job.wait(timeout=10)
    done = await queue.get_job(job.id)
    assert done is not None and done.attempts_made == 1  # no retry after a cancel
    # A cancelled job retried by hand runs normally (the request does not stick to it).
    await queue.retry(job.id)
    started.clear()

    async def quick(job: Job) -> str:
        return "ran"

    async with running(worker(queue, {"slow": quick})):
        assert await job.wait(timeout=10) == "ran"


async def test_a_handlers_own_cancelled_error_or_system_exit_fails_just_that_attempt(
    queue: Queue,
) -> None:
    async def awaits_a_cancelled_future(job: Job) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.cancel()
        await future

    def exits(job: Job) -> None:
        raise SystemExit(3)

    async def fine(job: Job) -> str:
        return "still here"

    handlers = {"cancelled": awaits_a_cancelled_future, "exit": exits, "fine": fine}
    async with running(worker(queue, handlers)):
        first = await queue.add("cancelled")
        second = await queue.add("exit")
        with pytest.raises(JobFailed, match="CancelledError"):
            await first.wait(timeout=10)
        with pytest.raises(JobFailed, match="SystemExit: 3"):
            await second.wait(timeout=10)
        assert await (await queue.add("fine")).wait(timeout=10) == "still here"
    assert (await queue.counts())["active"] == 0


async def test_a_timed_out_sync_handler_keeps_its_slot_until_its_thread_returns(
    queue: Queue,
) -> None:
    import threading

    release = threading.Event()
    order: list[str] = []

    def stuck(job: Job) -> None:
        order.append("stuck started")
        release.wait(10)
        order.append("stuck thread returned")

    def quick(job: Job) -> None:
        order.append("quick ran")

    async with running(worker(queue, {"stuck": stuck, "quick": quick}, concurrency=1)):
        blocked = await queue.add("stuck", timeout=0.2)
        with pytest.raises(JobFailed, match="timeout"):
            await blocked.wait(timeout=10)
        follower = await queue.add("quick")
        # One slot, still held by the thread: the next job must not start (and time out) yet.
        assert await queue.get_job(follower.id) is not None
        with pytest.raises(WaitTimeout):
            await follower.wait(timeout=0.5)
        release.set()
        await follower.wait(timeout=10)
    assert order == ["stuck started", "stuck thread returned", "quick ran"]


async def test_a_worker_runs_once(queue: Queue) -> None:
    one = worker(queue, {})
    async with running(one):
        pass
    with pytest.raises(ConfigurationError, match="runs once"):
        await one.run(install_signal_handlers=False)


def test_a_worker_refuses_queues_of_different_redis_servers(redis_url: str) -> None:
    with pytest.raises(ConfigurationError, match="another Redis or prefix"):
        Worker([Queue("a", url=redis_url), Queue("b", url="redis://127.0.0.1:1/0")], {})


async def test_ttl_is_about_starting_in_time_not_about_retries(queue: Queue) -> None:
    attempts = 0

    async def flaky(job: Job) -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            await asyncio.sleep(0.8)  # outlives the ttl, then fails: the retry must still run
            raise RuntimeError("first try fails")
        return "second try"

    async def ready(job: Job) -> None:
        pass

    async with running(worker(queue, {"flaky": flaky, "ready": ready})):
        # The worker is up and fetching first, so the ttls below time the jobs, not its start
        # (which took longer than a 0.2 s ttl once on a loaded CI machine).
        await (await queue.add("ready")).wait(timeout=10)
        job = await queue.add("flaky", attempts=2, ttl=0.5, backoff=Backoff.fixed(0.1))
        assert await job.wait(timeout=10) == "second try"
        # A delayed job's ttl counts from its run-at time, not from the add.
        later = await queue.add("flaky", delay=0.6, ttl=0.5)
        assert await later.wait(timeout=10) == "second try"


async def test_a_cancel_request_survives_the_job_being_handed_back(queue: Queue) -> None:
    started = asyncio.Event()

    async def slow(job: Job) -> None:
        started.set()
        await asyncio.sleep(60)

    async with running(worker(queue, {"slow": slow}, shutdown_grace=0)):
        job = await queue.add("slow", attempts=3)
        await asyncio.wait_for(started.wait(), 10)
        # The worker is told to stop right after the cancel request, most likely before its
        # next lease renewal could stop the job itself.
        assert await queue.cancel(job.id) is JobState.ACTIVE
    # Handed back at shutdown, or stopped by the worker: either way it fails as cancelled.
    with pytest.raises(JobFailed, match="cancelled"):
        await job.wait(timeout=5)
    assert (await queue.counts())["waiting"] == 0


async def test_progress_after_losing_the_lease_raises_lease_lost(queue: Queue) -> None:
    from conveyor.errors import LeaseLost

    go_on = asyncio.Event()
    raised: list[BaseException] = []

    async def handler(job: Job) -> None:
        await go_on.wait()
        try:
            await job.update_progress(50)
        except LeaseLost as exc:
            raised.append(exc)
            raise

    async with running(worker(queue, {"h": handler})):
        job = await queue.add("h")
        await async_wait_for(lambda: _is_active(queue, job.id), timeout=10)
        # What recover_stalled does to a lease that expired: the lease ends, the job waits.
        await queue.redis.command("HDEL", queue.commands.keys.leases, job.id)
        go_on.set()
        await async_wait_for(lambda: raised, timeout=10)
    assert "lease was lost" in str(raised[0])


async def _is_active(queue: Queue, job_id: str) -> bool:
    job = await queue.get_job(job_id)
    return job is not None and job.state is JobState.ACTIVE


async def test_warns_when_redis_keeps_nothing_on_disk(
    queue: Queue, caplog: pytest.LogCaptureFixture
) -> None:
    # The session's redis-server runs without AOF and without RDB snapshots.
    with caplog.at_level("WARNING", logger="conveyor.worker"):
        async with running(worker(queue, {})):
            pass
    assert any("persistence is off" in r.getMessage() for r in caplog.records)


async def test_no_persistence_warning_with_aof(make_redis: Callable[..., Any], caplog: Any) -> None:
    server = make_redis(appendonly=True)
    queue = Queue("q", url=server.url)
    with caplog.at_level("WARNING", logger="conveyor.worker"):
        async with running(Worker(queue, {})):
            pass
    await queue.close()
    assert not any("persistence is off" in r.getMessage() for r in caplog.records)


async def test_jobs_behind_expired_ones_run_without_waiting_for_the_idle_wake(
    make_queue: Callable[..., Queue],
) -> None:
    queue = make_queue(idle_wake_seconds=60)
    expired = [await queue.add("ok", ttl=0.01) for _ in range(3)]
    await asyncio.sleep(0.05)  # setup: the ttl must pass before a worker exists
    fresh = await queue.add("ok")

    async def ok(job: Job) -> str:
        return "ran"

    async with running(worker(queue, {"ok": ok}, concurrency=1)):
        assert await fresh.wait(timeout=3) == "ran"
    for job in expired:
        with pytest.raises(JobFailed, match="expired"):
            await job.wait(timeout=1)


async def test_a_dead_workers_jobs_are_reclaimed_once_and_its_late_fetch_leases_nothing(
    make_queue: Callable[..., Queue],
) -> None:
    # liveness 0.4 s: a beat is 50 ms, the grace 100 ms (the default's ratios).
    queue = make_queue(liveness_seconds=0.4)
    jobs = await queue.add_bulk([{"name": "held"}, {"name": "held"}])
    commands, run = queue.commands, queue.redis.run
    await run(commands.keep_alive("doomed", "first"))
    fetched = await run(commands.fetch("doomed", 2))
    assert len(fetched.jobs) == 2
    assert (await run(commands.keep_alive("watcher", "first"))).gap_ms is None
    # Every worker silent alike (as when Redis itself stalls): nobody is late.
    await asyncio.sleep(0.5)
    beat = await run(commands.keep_alive("watcher", "again"))
    assert beat.late == [] and beat.gap_ms is not None and beat.gap_ms >= 500
    await run(commands.keep_alive("doomed", "again"))
    # Then only "doomed" falls silent, for longer than the liveness period.
    for _ in range(10):
        await asyncio.sleep(0.05)
        beat = await run(commands.keep_alive("watcher", "again"))
    late = dict(beat.late)
    assert set(late) == {"doomed"} and late["doomed"] >= 400
    # Two watchers reclaiming at once: the jobs go back once.
    first, second = await queue.redis.run_many(
        [commands.reclaim_worker("doomed", 400), commands.reclaim_worker("doomed", 400)]
    )
    assert (first.reclaimed, first.recovered, first.failed) == (True, 2, 0)
    assert not second.reclaimed
    counts = await queue.counts()
    assert (counts["waiting"], counts["active"]) == (2, 0)
    for job in jobs:
        back = await queue.get_job(job.id)
        assert back is not None and back.stalls == 1
    # A fetch the dead worker had in flight leases it nothing (and the jobs stay waiting) ...
    assert (await run(commands.fetch("doomed", 2))).reclaimed
    assert (await queue.counts())["waiting"] == 2
    # ... until it beats again: it learns it was taken for dead, and may work again.
    assert (await run(commands.keep_alive("doomed", "again"))).revived
    assert len((await run(commands.fetch("doomed", 2))).jobs) == 2
    meta = await queue.redis.command("HGETALL", commands.keys.meta)
    assert meta["reclaimed_workers"] == "1" and meta["revived_workers"] == "1"


async def test_a_worker_that_beat_recently_is_not_reclaimed(
    make_queue: Callable[..., Queue],
) -> None:
    queue = make_queue(liveness_seconds=0.4)
    await queue.add("held")
    await queue.redis.run(queue.commands.keep_alive("busy", "first"))
    await queue.redis.run(queue.commands.fetch("busy", 1))
    reclaim = await queue.redis.run(queue.commands.reclaim_worker("busy", 400))
    assert not reclaim.reclaimed
    assert (await queue.counts())["active"] == 1
