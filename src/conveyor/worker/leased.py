"""The jobs a worker holds a lease on: from the fetch that leased them until their outcome is
acknowledged, or they are handed back. Every part of the worker looks jobs up here."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any

from ..job import Job
from ..runner import AttemptOutcome
from ..storage.commands import QueueCommands

__all__ = ["LeasedJob", "LeasedJobs"]


@dataclasses.dataclass(slots=True, eq=False)
class LeasedJob:
    commands: QueueCommands
    job: Job
    task: asyncio.Task[AttemptOutcome] | None = None
    #: Threads running this job's sync handler (so the slot stays taken while one runs).
    threads: list[concurrent.futures.Future[Any]] = dataclasses.field(default_factory=list)
    #: The lease expired and went to another worker: this worker's outcome will be discarded.
    lost: bool = False
    #: Someone cancelled the job (cancel.lua); its task is being cancelled for that reason,
    #: not because the worker is shutting down.
    cancelling: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.commands.queue, self.job.id)

    @property
    def lease(self) -> tuple[str, str]:
        """(id, lease token), as the lease scripts take them."""
        return (self.job.id, self.job.token or "")


class LeasedJobs:
    """The leased jobs by (queue, id). ``settled`` is set whenever jobs leave (their outcome
    was acknowledged or dropped), which is when a worker near its ``max_jobs`` or draining in
    burst mode may go on."""

    def __init__(self) -> None:
        self._jobs: dict[tuple[str, str], LeasedJob] = {}
        self.settled = asyncio.Event()

    def __len__(self) -> int:
        return len(self._jobs)

    def __iter__(self) -> Iterator[LeasedJob]:
        return iter(list(self._jobs.values()))

    def add(self, leased: LeasedJob) -> None:
        self._jobs[leased.key] = leased

    def get(self, queue: str, job_id: str) -> LeasedJob | None:
        return self._jobs.get((queue, job_id))

    def settle(self, keys: Iterable[tuple[str, str]]) -> None:
        """These jobs are done with on this worker (acknowledged, or their outcome dropped)."""
        jobs = self._jobs
        for key in keys:
            jobs.pop(key, None)
        self.settled.set()

    def clear(self) -> None:
        self._jobs.clear()
        self.settled.set()

    def by_queue(self, queues: list[QueueCommands]) -> dict[QueueCommands, list[LeasedJob]]:
        """The leased jobs of each of ``queues`` (every queue listed, in order)."""
        grouped: dict[QueueCommands, list[LeasedJob]] = {c: [] for c in queues}
        for leased in self._jobs.values():
            grouped[leased.commands].append(leased)
        return grouped
