"""``Queue``: the async producer and admin API of one queue.

``SyncQueue`` (in ``sync_queue``) is its blocking twin; both build the same ``Op``s from
``storage.commands`` and interpret replies with the helpers below, so they cannot drift apart.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, TypeVar

from . import serializer
from .errors import ConfigurationError, InvalidTransition, JobError, JobNotFound, WaitTimeout
from .events import Event, finished_outcome, is_pending
from .job import Job, JobState
from .options import build_spec, spec_from_mapping
from .settings import Settings
from .storage.commands import IS_ACTIVE, NOT_FOUND, WRONG_STATE, AddSpec, QueueCommands
from .storage.redis import AsyncRedis

__all__ = ["Handler", "Queue"]

#: A job handler: ``async def handler(job) -> result`` or a plain function (run in a thread).
Handler = Callable[[Job], Any]
F = TypeVar("F", bound=Handler)

_BULK_CHUNK = 1000
_BATCH_LIMIT = 1000


def make_settings(
    url: str | None, settings: Settings | None, overrides: Mapping[str, Any]
) -> Settings:
    """Settings from (in order of precedence) keyword overrides, ``url``, ``settings``, env."""
    base = settings if settings is not None else Settings.from_env()
    changes = dict(overrides)
    if url is not None:
        changes["url"] = url
    return base.replace(**changes) if changes else base


def check_code(code: int, job_id: str, action: str, expected_state: str) -> None:
    """Turn a script's per-job return code into the matching exception."""
    if code == NOT_FOUND:
        raise JobNotFound(f"cannot {action} job {job_id}: no such job", job_id)
    if code == IS_ACTIVE:
        raise InvalidTransition(f"cannot {action} job {job_id}: it is running", job_id)
    if code == WRONG_STATE:
        raise InvalidTransition(f"cannot {action} job {job_id}: it is not {expected_state}", job_id)


def jobs_from_added(
    commands: QueueCommands, specs: list[AddSpec], added: list[tuple[str, bool]], context: Any
) -> tuple[list[Job], list[str]]:
    """Jobs for what add_job reported; also the ids that already existed (to be read back)."""
    jobs, existing = [], []
    for spec, (job_id, was_added) in zip(specs, added, strict=True):
        if not was_added:
            existing.append(job_id)
        jobs.append(
            Job(
                id=job_id,
                name=spec.name,
                data=serializer.decode(spec.data),  # as a worker will see it
                queue=commands.queue,
                state=JobState.DELAYED if spec.delay_ms else JobState.WAITING,
                attempts=spec.attempts,
                priority=spec.priority,
                _context=context,
            )
        )
    return jobs, existing


def cancelled_state(reply: str | int, job_id: str) -> JobState:
    if isinstance(reply, int):
        check_code(reply, job_id, "cancel", "waiting, delayed or active")
        raise AssertionError(f"cancel.lua returned {reply}")  # check_code raised for every code
    return JobState(reply)


def parse_state(state: JobState | str) -> JobState:
    try:
        return JobState(state)
    except ValueError:
        raise ConfigurationError(
            f"unknown job state {state!r}; use one of {', '.join(s.value for s in JobState)}"
        ) from None


class Queue:
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
        self.settings = make_settings(url, settings, overrides)
        self.commands = QueueCommands(self.settings, name)
        self.name = name
        self.handlers: dict[str, Handler] = {}
        self._redis: AsyncRedis | None = None
        self._blocking: AsyncRedis | None = None
        self._registered = False

    def __repr__(self) -> str:
        return f"Queue({self.name!r}, url={self.settings.redacted_url()!r})"

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
        return (await self._add([build_spec(self.settings, name, data, **options)]))[0]

    async def add_bulk(self, jobs: Iterable[Mapping[str, Any]]) -> list[Job]:
        """Add many jobs, each ``{"name": ..., "data": ..., **options}``; all are validated
        before any is sent, and each chunk of 1000 goes in one round trip."""
        specs = [spec_from_mapping(self.settings, item) for item in jobs]
        out: list[Job] = []
        for start in range(0, len(specs), _BULK_CHUNK):
            out.extend(await self._add(specs[start : start + _BULK_CHUNK]))
        return out

    async def _add(self, specs: list[AddSpec]) -> list[Job]:
        if not self._registered:
            await self.redis.run(self.commands.register())
            self._registered = True
        added = await self.redis.run(self.commands.add(specs))
        jobs, existing = jobs_from_added(self.commands, specs, added, self)
        if existing:
            found = {j.id: j for j in await self.redis.run(self.commands.get_jobs(existing, self))}
            jobs = [found.get(job.id, job) for job in jobs]
        return jobs

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
        return cancelled_state(await self.redis.run(self.commands.cancel(job_id)), job_id)

    async def remove(self, job_id: str) -> None:
        """Delete a job that is not running (raises ``InvalidTransition`` for a running one)."""
        [code] = await self.redis.run(self.commands.remove([job_id]))
        check_code(code, job_id, "remove", "idle")

    async def retry(self, job_id: str) -> None:
        """Put a failed job back in the queue with a fresh budget of attempts."""
        [code] = await self.redis.run(self.commands.retry([job_id]))
        check_code(code, job_id, "retry", "failed")

    async def promote(self, job_id: str) -> None:
        """Run a delayed job now."""
        [code] = await self.redis.run(self.commands.promote([job_id]))
        check_code(code, job_id, "promote", "delayed")

    async def retry_all(self) -> int:
        """Retry every failed job; returns how many."""
        total, remaining = 0, 1
        while remaining:
            done, remaining = await self.redis.run(self.commands.retry_all(_BATCH_LIMIT))
            total += done
            if not done:
                break
        return total

    async def promote_all(self) -> int:
        total, remaining = 0, 1
        while remaining:
            done, remaining = await self.redis.run(self.commands.promote_all(_BATCH_LIMIT))
            total += done
            if not done:
                break
        return total

    async def clean(
        self, state: JobState | str, older_than: float = 0.0, limit: int | None = None
    ) -> int:
        """Delete jobs in ``state`` (completed, failed, delayed, waiting) older than
        ``older_than`` seconds, at most ``limit`` of them; returns how many were deleted."""
        job_state = parse_state(state)
        if job_state is JobState.ACTIVE:
            raise InvalidTransition("active jobs cannot be cleaned; they are running")
        deleted, cursor = 0, 0
        while cursor >= 0 and (limit is None or deleted < limit):
            batch = _BATCH_LIMIT if limit is None else min(_BATCH_LIMIT, limit - deleted)
            op = self.commands.clean(job_state, int(older_than * 1000), batch, cursor)
            count, cursor = await self.redis.run(op)
            deleted += count
        return deleted

    async def obliterate(self, *, force: bool = False) -> int:
        """Delete the queue and every job in it; returns how many keys were deleted.

        Refuses while jobs are running unless ``force``; their workers then lose their leases."""
        cursor, deleted = "0", 0
        while True:
            reply, count = await self.redis.run(self.commands.obliterate(force, cursor))
            if reply == "active":
                raise InvalidTransition(
                    f"queue {self.name!r} has {count} running jobs; stop the workers or use force"
                )
            deleted += count
            cursor = reply
            if cursor == "0":
                break
        await self.redis.run(self.commands.unregister())
        self._registered = False
        return deleted

    # -- events --------------------------------------------------------------------------------

    async def events(self, after: str = "$", block_seconds: float = 5.0) -> AsyncIterator[Event]:
        """Every transition from now on (or after the stream id ``after``), as it happens."""
        last = after
        if last == "$":
            last = await self.redis.run(self.commands.last_event_id())
        while True:
            op = self.commands.read_events(last, 500, int(block_seconds * 1000))
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
        """Wait for the job's completed/failed event: no polling of the job hash."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last = await self.redis.run(self.commands.last_event_id())
        outcome = finished_outcome(job.id, *await self.redis.run(self.commands.job_outcome(job.id)))
        while is_pending(outcome):
            remaining = 5.0 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(f"job {job.id} did not finish within {timeout} s")
            block = max(int(min(remaining, 5.0) * 1000), 1)
            op = self.commands.read_events(last, 1000, block)
            entries = await self.blocking_redis.run(op)
            if not entries:
                # A quiet window: re-read the job once in case its event was trimmed away.
                outcome = finished_outcome(
                    job.id, *await self.redis.run(self.commands.job_outcome(job.id))
                )
                continue
            for entry_id, fields in entries:
                last = entry_id
                if fields.get("id") != job.id and job.id not in fields.get("ids", ""):
                    continue  # cheap pre-filter before decoding a batched entry
                for event in Event.from_entry(entry_id, fields):
                    if event.job_id == job.id:
                        outcome = await self._outcome_from_event(event)
                if not is_pending(outcome):
                    break
        return outcome

    async def _outcome_from_event(self, event: Event) -> Any:
        if event.event == "completed":
            if "result" in event.fields:
                return finished_outcome(event.job_id, "completed", event.fields["result"], None)
            op = self.commands.job_outcome(event.job_id)
            _state, result, error = await self.redis.run(op)
            return finished_outcome(event.job_id, "completed", result, error)
        if event.event == "failed":
            return finished_outcome(event.job_id, "failed", None, event.fields.get("error"))
        if event.event == "removed":
            return finished_outcome(event.job_id, None, None, None)
        return finished_outcome(event.job_id, "", None, None)
