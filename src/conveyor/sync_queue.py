"""``SyncQueue``: the blocking twin of ``Queue`` for Flask, Django, scripts and threads.

It builds exactly the same Ops as ``Queue`` and interprets replies with the same helpers; only
the I/O differs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from . import serializer
from .errors import InvalidTransition, WaitTimeout
from .events import finished_outcome, is_pending
from .job import Job, JobState
from .options import build_spec, spec_from_mapping
from .queue import cancelled_state, check_code, jobs_from_added, make_settings, parse_state
from .settings import Settings
from .storage.commands import AddSpec, QueueCommands
from .storage.redis import SyncRedis

__all__ = ["SyncQueue"]

_BULK_CHUNK = 1000


class SyncQueue:
    """``SyncQueue("email", url=...)``: add jobs and steer the queue without asyncio."""

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
        self.redis = SyncRedis(self.settings)
        self._registered = False

    def __repr__(self) -> str:
        return f"SyncQueue({self.name!r}, url={self.settings.redacted_url()!r})"

    def close(self) -> None:
        self.redis.close()

    def __enter__(self) -> SyncQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, name: str, data: Any = None, **options: Any) -> Job:
        """Same options as ``Queue.add``."""
        return self._add([build_spec(self.settings, name, data, **options)])[0]

    def add_bulk(self, jobs: Iterable[Mapping[str, Any]]) -> list[Job]:
        specs = [spec_from_mapping(self.settings, item) for item in jobs]
        out: list[Job] = []
        for start in range(0, len(specs), _BULK_CHUNK):
            out.extend(self._add(specs[start : start + _BULK_CHUNK]))
        return out

    def _add(self, specs: list[AddSpec]) -> list[Job]:
        if not self._registered:
            self.redis.run(self.commands.register())
            self._registered = True
        added = self.redis.run(self.commands.add(specs))
        jobs, existing = jobs_from_added(self.commands, specs, added, None)
        if existing:
            found = {j.id: j for j in self.redis.run(self.commands.get_jobs(existing, None))}
            jobs = [found.get(job.id, job) for job in jobs]
        return jobs

    def get_job(self, job_id: str) -> Job | None:
        return self.redis.run(self.commands.get_job(job_id, None))

    def get_jobs(
        self, state: JobState | str, start: int = 0, stop: int = 49, *, newest_first: bool = True
    ) -> list[Job]:
        ids = self.redis.run(self.commands.job_ids(parse_state(state), start, stop, newest_first))
        return self.redis.run(self.commands.get_jobs(ids, None)) if ids else []

    def counts(self) -> dict[str, int]:
        return self.redis.run(self.commands.counts())

    def job_logs(self, job_id: str, start: int = 0, stop: int = -1) -> list[str]:
        return self.redis.run(self.commands.job_logs(job_id, start, stop))

    def job_attempts(self, job_id: str) -> list[dict[str, Any]]:
        return [serializer.decode(x) for x in self.redis.run(self.commands.job_errors(job_id))]

    def pause(self) -> bool:
        return self.redis.run(self.commands.pause(True))

    def resume(self) -> bool:
        return self.redis.run(self.commands.pause(False))

    def cancel(self, job_id: str) -> JobState:
        """Same as ``Queue.cancel``."""
        return cancelled_state(self.redis.run(self.commands.cancel(job_id)), job_id)

    def remove(self, job_id: str) -> None:
        [code] = self.redis.run(self.commands.remove([job_id]))
        check_code(code, job_id, "remove", "idle")

    def retry(self, job_id: str) -> None:
        [code] = self.redis.run(self.commands.retry([job_id]))
        check_code(code, job_id, "retry", "failed")

    def promote(self, job_id: str) -> None:
        [code] = self.redis.run(self.commands.promote([job_id]))
        check_code(code, job_id, "promote", "delayed")

    def clean(
        self, state: JobState | str, older_than: float = 0.0, limit: int | None = None
    ) -> int:
        job_state = parse_state(state)
        if job_state is JobState.ACTIVE:
            raise InvalidTransition("active jobs cannot be cleaned; they are running")
        deleted, cursor = 0, 0
        while cursor >= 0 and (limit is None or deleted < limit):
            batch = 1000 if limit is None else min(1000, limit - deleted)
            op = self.commands.clean(job_state, int(older_than * 1000), batch, cursor)
            count, cursor = self.redis.run(op)
            deleted += count
        return deleted

    def wait(self, job_id: str, timeout: float | None = None, poll: float = 0.05) -> Any:
        """Block until the job finishes: its result, or ``JobFailed``.

        Sync code has no event loop to follow the event stream with, so this re-reads the job
        every ``poll`` seconds; async code should use ``await job.wait()``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            outcome = finished_outcome(job_id, *self.redis.run(self.commands.job_outcome(job_id)))
            if not is_pending(outcome):
                return outcome
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"job {job_id} did not finish within {timeout} s")
            time.sleep(poll)
