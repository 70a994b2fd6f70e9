"""What you need to test your own jobs: a drain helper and an inline mode.

Both run your handlers through the production code (``Worker``, the runner, the Lua scripts)
against a real Redis: a test sees the same validation, serialization, retries, timeouts and
stored outcomes as production. Nothing about Redis is faked; point your queues at a test
Redis (a per-test key ``prefix`` keeps tests apart).

``drain``: run what is queued, in this process, then look at the outcomes::

    await queue.add("send", {"to": "a@b.c"})
    [job] = await drain(queue)                  # a burst-mode Worker, until nothing is left
    assert job.state is JobState.COMPLETED and job.result == {"sent": True}

``inline``: inside the block, every ``queue.add``/``add_bulk`` runs its jobs before it returns
(like Celery's eager mode, but through Redis), so code under test that enqueues needs no
worker::

    async with inline(queue):
        job = await signup(email="a@b.c")       # calls queue.add(...) somewhere inside
        assert job.state is JobState.COMPLETED

A job scheduled for later (``delay``, ``run_at``, a retry's backoff) stays delayed unless you
pass ``run_delayed=True``, which promotes delayed jobs and runs them too, round after round, so
a test of "fails twice, then succeeds" does not wait out the backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

from .backoff import BackoffStrategy
from .errors import WaitTimeout
from .events import Event
from .job import Job
from .queue import Handler, Queue
from .worker import Worker

__all__ = ["drain", "inline"]

#: A worker stopped by a drain's timeout gives running jobs this long before handing them back.
_STOP_GRACE_SECONDS = 1.0
_EVENTS_PER_READ = 1000


async def drain(
    queues: Queue | Sequence[Queue],
    handlers: Mapping[str, Handler] | None = None,
    *,
    run_delayed: bool = False,
    max_jobs: int | None = None,
    timeout: float = 30.0,
    concurrency: int = 1,
    backoff_strategies: Mapping[str, BackoffStrategy] | None = None,
    allow_evicting_redis: bool = False,
) -> list[Job]:
    """Run the jobs of ``queues`` in this process until none is left to run; return them.

    A burst-mode ``Worker`` (the production one) fetches and runs jobs until the queues have
    nothing runnable, with ``handlers`` plus those registered with ``@queue.handler``. The
    result lists each job this call ran once, in the order they started, re-read from Redis
    with its final state, result, error and attempts (a job deleted meanwhile, e.g. by a
    retention of 0, is left out).

    ``run_delayed``: also run delayed jobs (scheduled ones and retries waiting out their
    backoff), promoting them round after round until no job is left delayed or waiting.
    ``max_jobs``: stop after running this many. ``concurrency`` 1 (the default) runs jobs one
    at a time in queue order (priority, then FIFO), which keeps tests deterministic.

    Raises ``WaitTimeout`` when the jobs are not done within ``timeout`` seconds (the worker is
    stopped first; jobs still running are handed back to the queue), and whatever the worker
    raises (e.g. ``UnsafeRedisConfig`` for an evicting Redis).
    """
    queue_list = [queues] if isinstance(queues, Queue) else list(queues)
    if not queue_list:
        raise ValueError("drain needs at least one queue")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    starts = {q.name: await q.redis.run(q.commands.last_event_id()) for q in queue_list}
    worker_ids: set[str] = set()
    ran = 0
    while max_jobs is None or ran < max_jobs:
        worker = Worker(
            queue_list,
            handlers,
            concurrency=concurrency,
            backoff_strategies=backoff_strategies,
            shutdown_grace=_STOP_GRACE_SECONDS,
            burst=True,
            max_jobs=None if max_jobs is None else max_jobs - ran,
            allow_evicting_redis=allow_evicting_redis,
        )
        worker_ids.add(worker.id)
        await _run_burst(worker, deadline, timeout)
        ran += worker.processed
        if not run_delayed:
            break
        promoted = 0
        for queue in queue_list:
            promoted += await queue.promote_all()
        if not promoted:
            break
    return await _jobs_started_by(queue_list, starts, worker_ids)


async def _run_burst(worker: Worker, deadline: float, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(worker.run(install_signal_handlers=False), name="conveyor-drain")
    try:
        done, _ = await asyncio.wait({task}, timeout=max(deadline - loop.time(), 0.0))
    finally:
        if not task.done():  # timed out, or the caller was cancelled: stop the worker cleanly
            await worker.close()
            await asyncio.wait({task})
    if not done:
        with contextlib.suppress(Exception):
            task.result()
        raise WaitTimeout(f"the queues were not drained within {timeout} s")
    task.result()  # the worker's own error, if any


async def _jobs_started_by(
    queues: Iterable[Queue], starts: Mapping[str, str], worker_ids: set[str]
) -> list[Job]:
    """The jobs the given workers started (their "active" events), as stored now."""
    found: list[tuple[tuple[int, int], Queue, str]] = []
    for queue in queues:
        after = starts[queue.name]
        seen: set[str] = set()
        while True:
            entries = await queue.redis.run(
                queue.commands.read_events(after, _EVENTS_PER_READ, None)
            )
            for entry_id, fields in entries:
                after = entry_id
                for event in Event.from_entry(entry_id, fields):
                    if event.event != "active" or event.fields.get("worker") not in worker_ids:
                        continue
                    if event.job_id not in seen:
                        seen.add(event.job_id)
                        found.append((_order(entry_id), queue, event.job_id))
            if len(entries) < _EVENTS_PER_READ:
                break
    found.sort(key=lambda item: item[0])
    stored: dict[tuple[str, str], Job] = {}
    for queue in {id(q): q for _, q, _ in found}.values():
        ids = [job_id for _, q, job_id in found if q is queue]
        for job in await queue.redis.run(queue.commands.get_jobs(ids, queue)):
            stored[(queue.name, job.id)] = job
    keys = [(q.name, job_id) for _, q, job_id in found]
    return [stored[key] for key in keys if key in stored]


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@contextlib.asynccontextmanager
async def inline(
    queue: Queue,
    handlers: Mapping[str, Handler] | None = None,
    *,
    run_delayed: bool = False,
    timeout: float = 30.0,
    backoff_strategies: Mapping[str, BackoffStrategy] | None = None,
) -> AsyncIterator[Queue]:
    """Within the block, ``queue.add`` and ``queue.add_bulk`` run the jobs they add before
    they return, and return them as stored afterwards (state, result, error, attempts).

    Each add stores its jobs in Redis as always, then ``drain``s the queue with a burst-mode
    Worker, so the jobs go through the production code end to end. A handler that adds
    more jobs to the same queue gets them back still waiting; the running drain runs them
    before the outer ``add`` returns. Delayed jobs stay delayed unless ``run_delayed``.
    The queue behaves normally again after the block. Yields the queue."""
    draining = False

    async def run(jobs: list[Job]) -> list[Job]:
        nonlocal draining
        if draining:  # added by a handler: the drain in progress will run it
            return jobs
        draining = True
        try:
            await drain(
                queue,
                handlers,
                run_delayed=run_delayed,
                timeout=timeout,
                backoff_strategies=backoff_strategies,
            )
        finally:
            draining = False
        stored = {
            job.id: job
            for job in await queue.redis.run(queue.commands.get_jobs([j.id for j in jobs], queue))
        }
        return [stored.get(job.id, job) for job in jobs]

    plain_add, plain_add_bulk = queue.add, queue.add_bulk
    # What the instance itself held (an enclosing inline block's wrappers), restored after.
    own = {name: queue.__dict__[name] for name in ("add", "add_bulk") if name in queue.__dict__}

    async def add(name: str, data: Any = None, **options: Any) -> Job:
        [job] = await run([await plain_add(name, data, **options)])
        return job

    async def add_bulk(jobs: Iterable[Mapping[str, Any]]) -> list[Job]:
        return await run(await plain_add_bulk(jobs))

    queue.add = add  # type: ignore[method-assign]
    queue.add_bulk = add_bulk  # type: ignore[method-assign]
    try:
        yield queue
    finally:
        for name in ("add", "add_bulk"):
            if name in own:
                setattr(queue, name, own[name])
            else:
                delattr(queue, name)
