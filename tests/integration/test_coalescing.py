"""Concurrent single adds share script calls, and each keeps its own outcome."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import statistics
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest
import redis
from tests.support.redis_server import RedisServer

from conveyor import ConveyorError, Job, Queue, SyncQueue
from conveyor.errors import ConfigurationError
from conveyor.storage.commands import AddSpec


@pytest.fixture
async def private(make_redis: Callable[..., RedisServer]) -> AsyncIterator[tuple[Queue, str]]:
    """A queue on a Redis of its own (the tests count that server's script calls), with the
    add script loaded and the queue registered by one first add."""
    url = make_redis().url
    queue = Queue("q", url=url)
    await queue.add("warm", {})
    yield queue, url
    await queue.close()


def script_calls(url: str) -> int:
    """How many EVALSHA/EVAL calls the server has run (INFO commandstats)."""
    stats = redis.Redis.from_url(url).info("commandstats")
    return sum(
        int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval")
    )


async def test_concurrent_adds_share_calls(private: tuple[Queue, str]) -> None:
    queue, url = private
    before = script_calls(url)
    jobs = await asyncio.gather(*(queue.add("email", {"n": n}) for n in range(200)))
    calls = script_calls(url) - before
    assert [job.data for job in jobs] == [{"n": n} for n in range(200)]
    assert len({job.id for job in jobs}) == 200
    assert (await queue.counts())["waiting"] == 201
    # The first goes out alone; the rest queue behind it and go in calls of at most 100.
    assert calls <= 5, calls
    stored = await queue.get_jobs("waiting", 0, 300)
    assert sorted(job.data["n"] for job in stored if job.name == "email") == list(range(200))


async def test_the_next_call_leaves_before_the_last_ones_callers_are_woken(
    private: tuple[Queue, str],
) -> None:
    """Producers adding in a loop: Redis runs each call while the client reads the replies of
    the one before and its callers make their next adds (each call leaves before the one
    before it has returned its jobs), and the callers fall into two halves of about 50."""
    queue, _ = private
    coalescer = queue._adds
    send = coalescer._send
    log: list[tuple[str, int]] = []

    def logged(specs: Sequence[AddSpec], replied: Callable[[], bool]) -> Awaitable[list[Job]]:
        async def call() -> list[Job]:
            number = len(log)
            log.append(("sent", len(specs)))
            jobs = await send(specs, replied)
            log.append(("done", number))
            return jobs

        return call()

    coalescer._send = logged

    async def producer(k: int) -> None:
        for n in range(20):
            await queue.add("email", {"k": k, "n": n})

    await asyncio.gather(*(producer(k) for k in range(100)))
    assert (await queue.counts())["waiting"] == 2001
    sent = [i for i, (what, _) in enumerate(log) if what == "sent"]
    done_at = {number: i for i, (what, number) in enumerate(log) if what == "done"}
    overlapped = sum(done_at[before] > after for before, after in itertools.pairwise(sent))
    assert overlapped >= len(sent) // 2, log
    sizes = [size for what, size in log if what == "sent"]
    assert max(sizes) <= 51 and statistics.median(sizes) >= 20, sizes


async def test_a_lone_add_is_one_call(private: tuple[Queue, str]) -> None:
    queue, url = private
    before = script_calls(url)
    for n in range(5):
        await queue.add("email", {"n": n})
    assert script_calls(url) - before == 5


async def test_each_add_is_validated_on_its_own(queue: Queue) -> None:
    results = await asyncio.gather(
        queue.add("ok", {"n": 1}),
        queue.add("bad", {"n": 2}, attempts=0),
        queue.add("ok", {"n": 3}),
        return_exceptions=True,
    )
    assert isinstance(results[0], Job) and isinstance(results[2], Job)
    assert isinstance(results[1], ConfigurationError)
    assert "attempts" in str(results[1])
    assert (await queue.counts())["waiting"] == 2


async def test_same_job_id_in_one_call(queue: Queue) -> None:
    _, second, third = await asyncio.gather(
        queue.add("warm", {}),
        queue.add("sync", {"v": 1}, job_id="user-7"),
        queue.add("sync", {"v": 2}, job_id="user-7"),
    )
    assert second.id == third.id == "user-7"
    assert third.data == {"v": 1}  # the stored job, not the refused one
    assert (await queue.counts())["waiting"] == 2


async def test_an_add_cancelled_in_line_is_not_added(private: tuple[Queue, str]) -> None:
    queue, url = private
    admin = redis.Redis.from_url(url)
    admin.execute_command("CLIENT", "PAUSE", "300", "WRITE")  # holds the first call in flight
    first = asyncio.create_task(queue.add("first", {}))
    await asyncio.sleep(0.05)
    queued = asyncio.create_task(queue.add("cancelled", {}))
    kept = asyncio.create_task(queue.add("kept", {}))
    await asyncio.sleep(0.05)
    queued.cancel()
    await first
    await kept
    with pytest.raises(asyncio.CancelledError):
        await queued
    names = {job.name for job in await queue.get_jobs("waiting", 0, 10)}
    assert names == {"warm", "first", "kept"}


async def test_adds_cancelled_at_every_point_leave_the_line_working(queue: Queue) -> None:
    """Timeouts around adds (as a web app puts them) cancel adds queued, in flight and just
    answered: afterwards nothing is counted as under way, every add that returned is stored,
    and the next adds go out at once."""
    returned: list[str] = []
    timeouts = itertools.cycle([1e-5, 1e-4, 1e-3, 5.0])

    async def producer(k: int) -> None:
        for n in range(100):
            with contextlib.suppress(TimeoutError):
                job = await asyncio.wait_for(queue.add("email", {"k": k, "n": n}), next(timeouts))
                returned.append(job.id)

    await asyncio.gather(*(producer(k) for k in range(50)))
    coalescer = queue._adds
    assert (coalescer._in_flight, coalescer._adding, coalescer._pending) == (0, 0, [])
    assert returned
    stored = {job.id for job in await queue.get_jobs("waiting", 0, -1)}
    assert set(returned) <= stored
    jobs = await asyncio.wait_for(
        asyncio.gather(*(queue.add("after", {"n": n}) for n in range(200))), 10
    )
    assert [job.data for job in jobs] == [{"n": n} for n in range(200)]


async def test_a_refused_call_fails_every_add_in_it(private: tuple[Queue, str]) -> None:
    queue, url = private
    admin = redis.Redis.from_url(url)
    admin.config_set("maxmemory", "1")
    try:
        results = await asyncio.gather(
            *(queue.add("email", {"n": n}) for n in range(10)), return_exceptions=True
        )
    finally:
        admin.config_set("maxmemory", "0")
    assert all(isinstance(result, ConveyorError) for result in results), results
    assert all("OOM" in str(result) or "memory" in str(result) for result in results)
    assert (await queue.counts())["waiting"] == 1
    # The line is free again: the next add goes out.
    assert (await queue.add("after", {})).name == "after"


def test_sync_adds_from_many_threads_each_get_their_own_job(
    make_redis: Callable[..., RedisServer],
) -> None:
    """SyncQueue does not coalesce (see conveyor.coalescing), but 16 threads on one SyncQueue
    still each get their own jobs and their own errors."""
    queue = SyncQueue("q", url=make_redis().url)
    results: dict[int, Job] = {}
    errors: list[BaseException] = []

    def produce(thread: int) -> None:
        try:
            for n in range(50):
                results[thread * 100 + n] = queue.add("email", {"t": thread, "n": n})
            try:
                queue.add("bad", {}, priority="high")
            except ConfigurationError:
                pass
            else:
                errors.append(AssertionError("a bad add was accepted"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(results) == 800
    assert all(job.data == {"t": key // 100, "n": key % 100} for key, job in results.items())
    assert queue.counts()["waiting"] == 800
    queue.close()
