"""``Queue``: the async producer and admin API of one queue.

``SyncQueue`` (in ``sync_queue``) is its blocking twin; both run the same procedures and Ops
(``procedures``, ``storage.commands``), so they cannot drift apart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from . import serializer
from .coalescing import AddCoalescer
from .errors import ConfigurationError, ConnectionError, JobError, WaitTimeout
from .events import Event, finished_outcome, is_pending
from .flow_api import AsyncFlowControl
from .job import Job, JobState
from .options import build_spec, default_spec, spec_from_mapping
from .procedures import (
    CHUNK_SIZE,
    Procedure,
    QueueCore,
    cancelled_state,
    clean,
    obliterate,
    parse_state,
    requeue_all,
    single_action,
)
from .scheduling import AsyncScheduling  # job schedulers
from .settings import Settings
from .storage.commands import AddSpec
from .storage.redis import MAX_BLOCK_SECONDS, AsyncRedis
from .storage.resp import DirectClient
from .workflows.api import WorkflowMethods

__all__ = ["Handler", "Queue"]

#: A job handler: ``async def handler(job) -> result`` or a plain function (run in a thread).
Handler = Callable[[Job], Any]
F = TypeVar("F", bound=Handler)
T = TypeVar("T")

#: ``add_bulk`` sends this many jobs per script call when it sends them all at once.
PIPELINED_CHUNK = 100

#: ``job.wait`` re-reads the job this often, whatever the event stream says.
_WAIT_RECHECK_SECONDS = 5.0
#: How far back a wait looks on the stream for the outcome of a job already gone
_WAIT_LOOKBACK = 1000
_FINAL_EVENTS = ("completed", "failed", "removed")

log = logging.getLogger("conveyor.queue")


class Queue(WorkflowMethods, AsyncScheduling, QueueCore, AsyncFlowControl):
    """A named queue in Redis: add jobs, inspect and steer them, register handlers.

    ``Queue("email", url="redis://localhost:6379/0")``. Settings not given come from
    ``CONVEYOR_*`` environment variables, then from the defaults in ``Settings``.
    """

    def __init__(
        self,
        name: str,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__(name, url, settings=settings, **overrides)
        self.handlers: dict[str, Handler] = {}
        self._redis: AsyncRedis | None = None
        self._blocking: AsyncRedis | None = None
        self._adds = AddCoalescer(self._send_adds)

    async def _drive(self, procedure: Procedure[T]) -> T:
        """Run a procedure (see ``procedures``): each Op it yields is one round trip."""
        value: Any = None
        try:
            while True:
                value = await self.redis.run(procedure.send(value))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    @property
    def redis(self) -> AsyncRedis:
        if self._redis is None:
            self._redis = AsyncRedis(self.settings)
        return self._redis

    @property
    def blocking_redis(self) -> AsyncRedis:
        """A separate pool for blocking reads (XREAD BLOCK), so they never starve commands."""
        if self._blocking is None:
            self._blocking = AsyncRedis(self.settings, blocking=True)
        return self._blocking

    async def close(self) -> None:
        for client in (self._redis, self._blocking):
            if client is not None:
                await client.close()
        self._redis = self._blocking = None

    async def __aenter__(self) -> Queue:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- handlers ------------------------------------------------------------------------------

    def handler(self, name: str) -> Callable[[F], F]:
        """Register a handler for jobs called ``name`` (used by ``Worker(queue)``)."""

        def register(fn: F) -> F:
            if name in self.handlers:
                raise ConfigurationError(f"a handler for {name!r} is already registered")
            self.handlers[name] = fn
            return fn

        return register

    # -- producer ------------------------------------------------------------------------------

    async def add(self, name: str, data: Any = None, **options: Any) -> Job:
        """Add one job. Options: attempts, backoff, delay, run_at, priority, job_id, timeout,
        ttl. If ``job_id`` names an existing job, that job is returned and nothing is added."""
        if options:
            return await self._adds.add(build_spec(self.settings, name, data, **options))
        return await self._adds.add(default_spec(self.settings, name, data))

    def _send_adds(
        self, specs: Sequence[AddSpec], replied: Callable[[], bool] | None = None
    ) -> Awaitable[list[Job]]:
        # Not a coroutine itself: one frame less on every add.
        redis = self.redis
        if len(specs) == 1 and redis.direct is not None and self.sends_alone(specs[0]):
            return self._send_alone(specs[0], redis, redis.direct, replied)
        return redis.run(self._add_op(specs, self), replied)

    async def _send_alone(
        self,
        spec: AddSpec,
        redis: AsyncRedis,
        direct: DirectClient,
        replied: Callable[[], bool] | None,
    ) -> list[Job]:
        replies = await direct.execute(self.commands.single_add(spec), 1)
        if replied is not None and replied():
            await asyncio.sleep(0)  # (as in AsyncRedis.run)
        job = self.commands.added(replies[0], spec, self)
        if job is not None:
            return [job]
        return await redis.settle(self.commands.add([spec], self), replies)

    async def add_bulk(self, jobs: Iterable[Mapping[str, Any]]) -> list[Job]:
        """Add many jobs, each ``{"name": ..., "data": ..., **options}``; all are validated
        before any is sent. They go in chunks, one script call each (a chunk is added
        atomically), sent all at once where the connection keeps them in order: if Redis
        refuses one, the error is raised and other chunks may have been added."""
        specs = [spec_from_mapping(self.settings, item) for item in jobs]
        redis = self.redis
        if not redis.keeps_order:  # a pool of connections: one chunk after the other
            chunked = self._add_ops(specs, self, CHUNK_SIZE)
            return [job for op in chunked for job in await redis.run(op)]
        # One task per chunk, started in order: each writes its call before the next task runs,
        # so the chunks reach Redis in order, and the Jobs of one chunk are built while Redis
        # runs the next.
        ops = list(self._add_ops(specs, self, PIPELINED_CHUNK))
        if len(ops) == 1:
            return await redis.run(ops[0])
        chunks = await asyncio.gather(*(redis.run(op) for op in ops))
        return [job for chunk in chunks for job in chunk]

    # -- reading -------------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> Job | None:
        return await self.redis.run(self.commands.get_job(job_id, self))

    async def get_jobs(
        self, state: JobState | str, start: int = 0, stop: int = 49, *, newest_first: bool = True
    ) -> list[Job]:
        """Jobs in one state, by rank (``stop`` inclusive)."""
        ids = await self.redis.run(
            self.commands.job_ids(parse_state(state), start, stop, newest_first)
        )
        return await self.redis.run(self.commands.get_jobs(ids, self)) if ids else []

    async def counts(self) -> dict[str, int]:
        """``{"waiting", "active", "delayed", "completed", "failed", "paused"}`` (paused is 0/1)."""
        return await self.redis.run(self.commands.counts())

    async def is_paused(self) -> bool:
        return await self.redis.run(self.commands.is_paused())

    async def job_logs(self, job_id: str, start: int = 0, stop: int = -1) -> list[str]:
        return await self.redis.run(self.commands.job_logs(job_id, start, stop))

    async def job_attempts(self, job_id: str) -> list[dict[str, Any]]:
        """The record of every failed attempt: attempt, error, traceback, worker, at (ms)."""
        raw = await self.redis.run(self.commands.job_errors(job_id))
        return [serializer.decode(item) for item in raw]

    # -- steering ------------------------------------------------------------------------------

    async def pause(self) -> bool:
        """Stop handing out jobs (running ones finish; adding still works). True if it changed."""
        return await self.redis.run(self.commands.pause(True))

    async def resume(self) -> bool:
        return await self.redis.run(self.commands.pause(False))

    async def cancel(self, job_id: str) -> JobState:
        """Stop a job: one that has not started fails now with reason "cancelled"; a running one
        is stopped by its worker within seconds (async handlers are cancelled; a sync handler's
        thread runs on, but its outcome is recorded as cancelled). Returns the prior state."""
        state = cancelled_state(await self.redis.run(self.commands.cancel(job_id)), job_id)
        await self._settle_job(job_id)  # workflows: its flow or batch learns of it now
        return state

    async def remove(self, job_id: str) -> None:
        """Delete a job that is not running (raises ``InvalidTransition`` for a running one)."""
        await self._drive(single_action(self.commands.remove([job_id]), job_id, "remove", "idle"))
        await self._settle_job(job_id)  # workflows: its flow or batch learns of it now

    async def retry(self, job_id: str) -> None:
        """Put a failed job back in the queue with a fresh budget of attempts."""
        await self._drive(single_action(self.commands.retry([job_id]), job_id, "retry", "failed"))

    async def promote(self, job_id: str) -> None:
        """Run a delayed job now."""
        op = self.commands.promote([job_id])
        await self._drive(single_action(op, job_id, "promote", "delayed"))

    async def retry_all(self) -> int:
        """Retry every failed job; returns how many."""
        return await self._drive(requeue_all(self.commands.retry_all))

    async def promote_all(self) -> int:
        """Run every delayed job now; returns how many."""
        return await self._drive(requeue_all(self.commands.promote_all))

    async def clean(
        self, state: JobState | str, older_than: float = 0.0, limit: int | None = None
    ) -> int:
        """Delete jobs in ``state`` (completed, failed, delayed, waiting) older than
        ``older_than`` seconds, at most ``limit`` of them; returns how many were deleted."""
        return await self._drive(clean(self.commands, state, older_than, limit))

    async def obliterate(self, *, force: bool = False) -> int:
        """Delete the queue and every job in it; returns how many keys were deleted.

        Refuses while jobs are running unless ``force``; their workers then lose their leases."""
        deleted = await self._drive(obliterate(self.commands, force))
        self._registered = False
        return deleted

    # -- events --------------------------------------------------------------------------------

    async def events(self, after: str = "$", block_seconds: float = 5.0) -> AsyncIterator[Event]:
        """Every transition from now on (or after the stream id ``after``), as it happens."""
        last = after
        if last == "$":
            last = await self.redis.run(self.commands.last_event_id())
        while True:
            block = min(block_seconds, MAX_BLOCK_SECONDS)  # the loop makes longer waits
            op = self.commands.read_events(last, 500, int(block * 1000))
            for entry_id, fields in await self.blocking_redis.run(op):
                last = entry_id
                for event in Event.from_entry(entry_id, fields):
                    yield event

    # -- JobContext (for jobs read through this queue) -----------------------------------------

    async def _job_progress(self, job: Job, value: Any) -> None:
        raise JobError(f"job {job.id} is not running in this process; only its worker reports")

    async def _job_log(self, job: Job, line: str) -> None:
        raise JobError(f"job {job.id} is not running in this process; only its worker logs")

    async def _job_wait(self, job: Job, timeout: float | None) -> Any:
        """Wait for the job's completed/failed event on the stream; the job hash is read only
        at the start and every few seconds (in case its event was trimmed off a busy stream)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last = await self.redis.run(self.commands.last_event_id())
        outcome: Any = None
        recheck_at = 0.0  # read the job first
        while True:
            if time.monotonic() >= recheck_at:
                state = await self.redis.run(self.commands.job_result(job.id))
                if state[0] is None:  # gone (keep_completed=0, say): it may have finished
                    outcome = await self._recent_outcome(job.id)  # before the wait began
                if state[0] is not None or is_pending(outcome):
                    outcome = finished_outcome(job.id, *state)
                recheck_at = time.monotonic() + _WAIT_RECHECK_SECONDS
            if not is_pending(outcome):
                return outcome
            remaining = _WAIT_RECHECK_SECONDS if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(f"job {job.id} did not finish within {timeout} s")
            block = max(int(min(remaining, recheck_at - time.monotonic()) * 1000), 1)
            op = self.commands.read_events(last, 1000, block)
            try:
                entries = await self.blocking_redis.run(op)
            except ConnectionError as exc:
                # A waiter rides out a blip (the job hash is re-read when it comes back).
                log.warning("job %s: waiting was interrupted (%s); retrying", job.id, exc)
                await asyncio.sleep(min(0.5, max(remaining, 0.0)))
                recheck_at = 0.0
                continue
            for entry_id, fields in entries:
                last = entry_id
                if fields.get("id") != job.id and job.id not in fields.get("ids", ""):
                    continue  # cheap pre-filter before decoding an entry for many jobs
                for event in Event.from_entry(entry_id, fields):
                    if event.job_id == job.id:
                        outcome = await self._outcome_from_event(event)
                if not is_pending(outcome):
                    return outcome

    async def _recent_outcome(self, job_id: str) -> Any:
        """The outcome a recent event gives the job, or pending if none does."""
        entries = await self.redis.run(self.commands.recent_events(_WAIT_LOOKBACK))
        for entry_id, fields in entries:
            if fields.get("id") != job_id and job_id not in fields.get("ids", ""):
                continue
            for event in Event.from_entry(entry_id, fields):
                if event.job_id == job_id and event.event in _FINAL_EVENTS:
                    return await self._outcome_from_event(event)
        return finished_outcome(job_id, "", None, None)

    async def _outcome_from_event(self, event: Event) -> Any:
        if event.event == "completed":
            if "result" in event.fields:
                return finished_outcome(event.job_id, "completed", event.fields["result"], None)
            op = self.commands.job_result(event.job_id)
            _state, result, error = await self.redis.run(op)
            return finished_outcome(event.job_id, "completed", result, error)
        if event.event == "failed":
            return finished_outcome(event.job_id, "failed", None, event.fields.get("error"))
        if event.event == "removed":
            return finished_outcome(event.job_id, None, None, None)
        return finished_outcome(event.job_id, "", None, None)
