"""``SyncQueue``: the blocking twin of ``Queue`` for Flask, Django, scripts and threads.

It runs exactly the same procedures and Ops as ``Queue`` (``procedures``,
``storage.commands``); only the I/O differs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from . import serializer
from .errors import WaitTimeout
from .events import finished_outcome, is_pending
from .flow_api import SyncFlowControl
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
from .scheduling import SyncScheduling  # job schedulers
from .storage.redis import SyncRedis
from .workflows.api import SyncWorkflowMethods

__all__ = ["SyncQueue"]

T = TypeVar("T")


class SyncQueue(SyncWorkflowMethods, SyncScheduling, QueueCore, SyncFlowControl):
    """``SyncQueue("email", url=...)``: add jobs and steer the queue without asyncio."""

    _redis: SyncRedis | None = None
    #: Guards the first use from several threads at once, which would otherwise each make a
    #: client, all but one left for the garbage collector to close. One lock for every queue:
    #: first uses are rare.
    _creating = threading.Lock()

    @property
    def redis(self) -> SyncRedis:
        if self._redis is None:
            with self._creating:
                if self._redis is None:
                    self._redis = SyncRedis(self.settings)
        return self._redis

    def _drive(self, procedure: Procedure[T]) -> T:
        value: Any = None
        try:
            while True:
                value = self.redis.run(procedure.send(value))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
            self._redis = None

    def __enter__(self) -> SyncQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, name: str, data: Any = None, **options: Any) -> Job:
        """Same options as ``Queue.add``."""
        if options:
            spec = build_spec(self.settings, name, data, **options)
        else:
            spec = default_spec(self.settings, name, data)
        redis = self.redis
        if redis.direct is not None and self.sends_alone(spec):
            # (As Queue._send_alone: the commonest add without its Op.)
            replies = redis.direct.execute(self.commands.single_add(spec), 1)
            job = self.commands.added(replies[0], spec, None)
            if job is not None:
                return job
            return redis.settle(self.commands.add([spec], None), replies)[0]
        return redis.run(self._add_op([spec], None))[0]

    def add_bulk(self, jobs: Iterable[Mapping[str, Any]]) -> list[Job]:
        """Same as ``Queue.add_bulk``; chunks of 1000, one round trip each."""
        specs = [spec_from_mapping(self.settings, item) for item in jobs]
        return [job for op in self._add_ops(specs, None, CHUNK_SIZE) for job in self.redis.run(op)]

    def get_job(self, job_id: str) -> Job | None:
        return self.redis.run(self.commands.get_job(job_id, None))

    def get_jobs(
        self, state: JobState | str, start: int = 0, stop: int = 49, *, newest_first: bool = True
    ) -> list[Job]:
        ids = self.redis.run(self.commands.job_ids(parse_state(state), start, stop, newest_first))
        return self.redis.run(self.commands.get_jobs(ids, None))

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
        state = cancelled_state(self.redis.run(self.commands.cancel(job_id)), job_id)
        self._settle_job(job_id)  # workflows: its flow or batch learns of it now
        return state

    def remove(self, job_id: str) -> None:
        self._drive(single_action(self.commands.remove([job_id]), job_id, "remove", "idle"))
        self._settle_job(job_id)  # workflows: its flow or batch learns of it now

    def retry(self, job_id: str) -> None:
        self._drive(single_action(self.commands.retry([job_id]), job_id, "retry", "failed"))

    def promote(self, job_id: str) -> None:
        self._drive(single_action(self.commands.promote([job_id]), job_id, "promote", "delayed"))

    def retry_all(self) -> int:
        return self._drive(requeue_all(self.commands.retry_all))

    def promote_all(self) -> int:
        return self._drive(requeue_all(self.commands.promote_all))

    def clean(
        self, state: JobState | str, older_than: float = 0.0, limit: int | None = None
    ) -> int:
        return self._drive(clean(self.commands, state, older_than, limit))

    def obliterate(self, *, force: bool = False) -> int:
        deleted = self._drive(obliterate(self.commands, force))
        self._registered = False
        return deleted

    def wait(self, job_id: str, timeout: float | None = None, poll: float = 0.05) -> Any:
        """Block until the job finishes: its result, or ``JobFailed``.

        Sync code has no event loop to follow the event stream with, so this re-reads the job
        every ``poll`` seconds; async code should use ``await job.wait()``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            outcome = finished_outcome(job_id, *self.redis.run(self.commands.job_result(job_id)))
            if not is_pending(outcome):
                return outcome
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"job {job_id} did not finish within {timeout} s")
            time.sleep(poll)
