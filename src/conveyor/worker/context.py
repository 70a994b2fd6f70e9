"""What a running job's handler can do through its job: report progress, write log lines,
wait for another job. Progress and logs are written under the job's lease."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import serializer
from ..errors import ConfigurationError, LeaseLost
from ..job import Job
from ..queue import Queue
from ..settings import Settings
from ..storage.commands import QueueCommands
from ..storage.protocol import Code
from ..workflows.worker import WorkflowJobContext
from .interfaces import OpRunner
from .leased import LeasedJobs

__all__ = ["LeasedJobContext"]

#: Longer log lines are cut (a log is for reading, not for payloads).
MAX_LOG_LINE = 10_000


class LeasedJobContext(WorkflowJobContext):
    """The ``JobContext`` of the jobs a worker runs (``children_results`` and
    ``add_to_batch`` come from ``workflows``)."""

    def __init__(
        self, store: OpRunner, leased: LeasedJobs, queues: Sequence[Queue], settings: Settings
    ) -> None:
        super().__init__(store, settings, self._runs)
        self._store = store
        self._leased = leased
        self._queues = queues
        self._settings = settings

    def _runs(self, job: Job) -> bool:
        leased = self._leased.get(job.queue, job.id)
        return leased is not None and leased.job.token == job.token

    def _commands_for(self, job: Job) -> QueueCommands:
        leased = self._leased.get(job.queue, job.id)
        if leased is None:
            raise ConfigurationError(f"job {job.id} is not running on this worker")
        return leased.commands

    async def _job_progress(self, job: Job, value: Any) -> None:
        encoded = serializer.encode(value, self._settings.max_payload_bytes, what="progress")
        op = self._commands_for(job).update_progress(job.id, job.token or "", encoded)
        _check_lease(job, await self._store.run(op))

    async def _job_log(self, job: Job, line: str) -> None:
        op = self._commands_for(job).append_log(job.id, job.token or "", line[:MAX_LOG_LINE])
        _check_lease(job, await self._store.run(op))

    async def _job_wait(self, job: Job, timeout: float | None) -> Any:
        queue = next(q for q in self._queues if q.name == job.queue)
        return await queue._job_wait(job, timeout)


def _check_lease(job: Job, reply: Code) -> None:
    if reply == Code.LEASE_LOST:
        # Tell the handler: another worker owns the job now, so its work here is moot.
        raise LeaseLost(
            f"job {job.id}: this worker's lease was lost (it expired and the job was handed "
            "to another worker, or the job was removed); progress and logs are not recorded",
            job.id,
        )
