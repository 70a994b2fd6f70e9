"""The workflow methods of ``Queue`` and ``SyncQueue`` (mixins: each queue class inherits
one), and what a running job's context needs for ``children_results`` and ``add_to_batch``."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import CommandRefused, ConfigurationError, ConnectionError, JobError
from ..job import Job
from ..procedures import Procedure
from ..settings import Settings
from ..storage.commands import QueueCommands
from .adding import add_batch, add_flow, batch_jobs, grow_batch
from .models import BatchInfo, Callback, FlowJob
from .reading import children_results, get_batch
from .settling import settle

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["SyncWorkflowMethods", "WorkflowMethods", "add_to_batch_procedure"]

T = TypeVar("T")

log = logging.getLogger("conveyor.queue")


def _batch_procedure(
    commands: QueueCommands,
    jobs: Iterable[Mapping[str, Any]],
    callbacks: Mapping[str, Callback | None],
    batch_id: str | None,
) -> Procedure[BatchInfo]:
    new_id, _ids = yield from add_batch(commands, jobs, callbacks, None, batch_id)
    # an empty batch owes its callbacks at once: pay them now (a sweep would, later)
    yield from settle(commands.settings, commands.queue, [f"c:{new_id}"])
    info = yield from get_batch(commands, new_id)
    assert info is not None
    return info


def add_to_batch_procedure(
    settings: Settings, job: Job, jobs: Iterable[Mapping[str, Any]], first_index: int
) -> Procedure[list[str]]:
    """The jobs a running job adds to its own batch. Their ids, unless chosen, are derived
    from the job's id and their rank among the jobs it added in this run, so a run repeated
    after a crash adds none of them twice."""
    if not job.batch:
        raise JobError(f"job {job.id} is not in a batch", job.id)
    named = []
    for index, item in enumerate(jobs, start=first_index):
        item = dict(item)
        if not item.get("job_id") and not (item.get("options") or {}).get("job_id"):
            item["job_id"] = f"{job.id}.{index}"
        named.append(item)
    commands = QueueCommands(settings, job.queue)
    items = batch_jobs(settings, job.batch, named)
    return (yield from grow_batch(commands, job.batch, items))  # type: ignore[no-any-return]


class _Shared:
    commands: QueueCommands
    settings: Settings
    name: str


class WorkflowMethods(_Shared):
    """Flows and batches on an async ``Queue``."""

    if TYPE_CHECKING:
        _drive: Callable[[Procedure[Any]], Awaitable[Any]]

    async def add_flow(self, flow: FlowJob) -> Job:
        """Add a tree of jobs: each job runs after its children (on any queue) are done, and
        reads their results with ``await job.children_results()``. Returns the root job,
        ``JobState.WAITING_CHILDREN`` while it has children to wait for."""
        return await self._drive(add_flow(self.commands, flow, self))  # type: ignore[arg-type,no-any-return]

    async def add_batch(
        self,
        jobs: Iterable[Mapping[str, Any]],
        *,
        on_complete: Callback | None = None,
        on_success: Callback | None = None,
        on_death: Callback | None = None,
        batch_id: str | None = None,
    ) -> BatchInfo:
        """Add jobs (``{"name", "data", **options}`` each, as ``add_bulk``) together with a
        batch, atomically. ``on_complete`` is added once every job ran to an outcome,
        ``on_success`` once all succeeded, ``on_death`` once at the first job that failed for
        good; each exactly once."""
        callbacks = _callbacks(on_complete, on_success, on_death)
        return await self._drive(_batch_procedure(self.commands, jobs, callbacks, batch_id))  # type: ignore[no-any-return]

    async def get_batch(self, batch_id: str) -> BatchInfo | None:
        return await self._drive(get_batch(self.commands, batch_id))  # type: ignore[no-any-return]

    async def settle_workflows(self) -> int:
        """Pay what this queue owes to flows and batches now (workers do it on their own)."""
        return await self._drive(settle(self.settings, self.name, None))  # type: ignore[no-any-return]

    async def _settle_job(self, job_id: str) -> None:
        """After a job was cancelled or removed: pay what that owes at once (its children that
        have not run go, its parent or batch is told); a sweep would, later."""
        try:
            await self._drive(settle(self.settings, self.name, _job_debts(job_id)))
        except (ConnectionError, CommandRefused) as exc:
            log.warning("job %s: its flow or batch will learn of it later (%s)", job_id, exc)

    # JobContext, for jobs read through this queue
    async def _job_children_results(self, job: Job) -> dict[str, Any]:
        return await self._drive(children_results(self.commands, job.id))  # type: ignore[no-any-return]

    async def _job_add_to_batch(self, job: Job, jobs: Iterable[Mapping[str, Any]]) -> list[str]:
        raise JobError(f"job {job.id} is not running in this process; only its handler adds")


class SyncWorkflowMethods(_Shared):
    """Flows and batches on a ``SyncQueue`` (the same, blocking)."""

    if TYPE_CHECKING:
        _drive: Callable[[Procedure[Any]], Any]

    def add_flow(self, flow: FlowJob) -> Job:
        return self._drive(add_flow(self.commands, flow, None))  # type: ignore[no-any-return]

    def add_batch(
        self,
        jobs: Iterable[Mapping[str, Any]],
        *,
        on_complete: Callback | None = None,
        on_success: Callback | None = None,
        on_death: Callback | None = None,
        batch_id: str | None = None,
    ) -> BatchInfo:
        callbacks = _callbacks(on_complete, on_success, on_death)
        return self._drive(_batch_procedure(self.commands, jobs, callbacks, batch_id))  # type: ignore[no-any-return]

    def get_batch(self, batch_id: str) -> BatchInfo | None:
        return self._drive(get_batch(self.commands, batch_id))  # type: ignore[no-any-return]

    def settle_workflows(self) -> int:
        return self._drive(settle(self.settings, self.name, None))  # type: ignore[no-any-return]

    def _settle_job(self, job_id: str) -> None:
        try:
            self._drive(settle(self.settings, self.name, _job_debts(job_id)))
        except (ConnectionError, CommandRefused) as exc:
            log.warning("job %s: its flow or batch will learn of it later (%s)", job_id, exc)


def _job_debts(job_id: str) -> list[str]:
    """What cancelling or removing a job may leave owed: its children to remove, its outcome."""
    return [f"k:{job_id}", f"o:{job_id}"]


def _callbacks(
    on_complete: Callback | None, on_success: Callback | None, on_death: Callback | None
) -> dict[str, Callback | None]:
    for option, value in (
        ("on_complete", on_complete),
        ("on_success", on_success),
        ("on_death", on_death),
    ):
        if value is not None and not isinstance(value, Callback):
            raise ConfigurationError(f"{option} must be a Callback, not {type(value).__name__}")
    return {"on_complete": on_complete, "on_success": on_success, "on_death": on_death}
