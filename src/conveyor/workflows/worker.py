"""What a worker does for workflows: after acknowledging jobs of flows and batches it pays
the debts their outcomes left (``Settler.after_acks``), and from time to time it pays
whatever its queues still owe, which is how a debt left by a killed process is paid
(``Settler.sweep``). See ``settling``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import CommandRefused, ConnectionError
from ..procedures import Procedure
from ..settings import Settings
from ..storage.commands import QueueCommands
from ..storage.protocol import Code
from .api import add_to_batch_procedure
from .reading import children_results
from .settling import settle

if TYPE_CHECKING:
    from ..job import Job
    from ..worker.acks import Acknowledger
    from ..worker.duties import Duty
    from ..worker.interfaces import OpRunner
    from ..worker.leased import LeasedJobs

__all__ = [
    "SWEEP_SECONDS",
    "Settler",
    "WorkflowJobContext",
    "debts",
    "drive",
    "flag_owing",
    "owes",
    "workflow_duty",
]

T = TypeVar("T")

#: How often a worker pays what its queues still owe (debts left by killed processes).
SWEEP_SECONDS = 2.0
#: Pages of debts (500 entries each) a sweep pays per queue at most, before the next duty.
SWEEP_PAGES = 20
#: Running jobs whose count of jobs added to their batch is kept (for their derived ids):
#: past this many, those of jobs no longer running are dropped.
_ADDED_KEPT = 1000

log = logging.getLogger("conveyor.worker")


async def drive(store: OpRunner, procedure: Procedure[T]) -> T:
    value: Any = None
    try:
        while True:
            value = await store.run(procedure.send(value))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def owes(job: Job) -> bool:
    """The job's outcome is owed to a parent or a batch (complete.lua records it then)."""
    return job.parent is not None or job.batch is not None


def flag_owing(acks: list[tuple[Any, ...]], items: Sequence[Any]) -> list[tuple[Any, ...]]:
    """complete.lua's items, with the flag that makes it record what a flow or batch job's
    outcome owes (``items``: the (leased job, outcome) of each)."""
    pairs = zip(acks, items, strict=True)
    return [(*ack, 1) if owes(leased.job) else ack for ack, (leased, _o) in pairs]


def debts(
    completed: Mapping[QueueCommands, Sequence[Any]],
    failed: Sequence[Any],
    fail_replies: Sequence[Any],
    lost: set[tuple[str, str]],
) -> dict[str, list[str]]:
    """{queue: job ids} whose outcomes, just recorded, owe something: the completed flow and
    batch jobs whose lease held, and those that failed for good."""
    owed: dict[str, list[str]] = {}
    for commands, items in completed.items():
        for leased, _outcome in items:
            if owes(leased.job) and (commands.queue, leased.job.id) not in lost:
                owed.setdefault(commands.queue, []).append(leased.job.id)
    for (leased, _outcome), reply in zip(failed, fail_replies, strict=True):
        if reply == Code.FAILED and owes(leased.job):
            owed.setdefault(leased.commands.queue, []).append(leased.job.id)
    return owed


class Settler:
    """Pays debts in a task of its own, so that acknowledgements never wait for it."""

    def __init__(
        self,
        store: OpRunner,
        settings: Settings,
        queues: Sequence[str],
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._queues = list(queues)
        self._pending: dict[str, list[str]] = {}
        self._task: asyncio.Task[None] | None = None
        #: Told when the debts submitted are paid (a burst worker then looks for the parents
        #: they released before it stops).
        self._on_idle = on_idle

        #: Debts were paid since the fetch loop last asked (``take_fresh``): they may have
        #: released a parent after that loop's last fetch.
        self._fresh = False

    @property
    def busy(self) -> bool:
        return bool(self._pending) or (self._task is not None and not self._task.done())

    def holds_work(self) -> bool:
        """Debts are being paid, or were since the fetch loop last looked: a burst worker
        fetches once more before it stops (a parent released meanwhile is its work)."""
        return self.busy or self._fresh

    def take_fresh(self) -> bool:
        fresh, self._fresh = self._fresh, False
        return fresh

    def submit(self, owed: Mapping[str, list[str]]) -> None:
        """Pay these debts ({queue: job ids}) soon; they are already safe in Redis."""
        for queue, ids in owed.items():
            self._pending.setdefault(queue, []).extend(ids)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._pay_pending(), name="conveyor-workflows")

    async def _pay_pending(self) -> None:
        while self._pending:
            owed, self._pending = self._pending, {}
            try:
                await self.after_acks(owed)
            except Exception:  # a bug: the debts stay owed, and the sweep retries them
                log.exception("paying %d workflow debts failed", sum(map(len, owed.values())))
        self._task = None
        self._fresh = True
        if self._on_idle is not None:
            self._on_idle()

    async def drain(self) -> None:
        """Until the debts submitted so far are paid (or given up on: the sweep pays them)."""
        if self._task is not None:
            await self._task

    async def after_acks(self, owed: Mapping[str, list[str]]) -> None:
        """Pay what the outcomes just recorded owe: {queue: job ids}. A failure is logged;
        the sweep pays it later."""
        for queue, ids in owed.items():
            try:
                await drive(self._store, settle(self._settings, queue, [f"o:{i}" for i in ids]))
            except (ConnectionError, CommandRefused) as exc:
                log.warning("could not report %d workflow outcomes yet (%s)", len(ids), exc)

    async def sweep(self) -> None:
        for queue in self._queues:
            for _page in range(SWEEP_PAGES):
                if await drive(self._store, settle(self._settings, queue, None)) < 500:
                    break  # not a full page: nothing more for now


def workflow_duty(
    acks: Acknowledger,
    store: OpRunner,
    settings: Settings,
    queues: Sequence[QueueCommands],
    leased: LeasedJobs,
) -> Duty:
    """Wires workflows into a worker: its acknowledgements pay what they owe, and a duty
    sweeps its queues for what is left."""
    from ..worker.duties import Duty

    settler = Settler(store, settings, [c.queue for c in queues], leased.settled.set)
    acks.settler = settler
    return Duty("workflows", settler.sweep, SWEEP_SECONDS)


class WorkflowJobContext:
    """The workflow part of a running job's context (``worker.context``)."""

    def __init__(self, store: OpRunner, settings: Settings, running: Callable[[Job], bool]) -> None:
        self._store = store
        self._settings = settings
        #: Whether a job (its lease token included) still runs on this worker.
        self._running = running
        #: Jobs added to its batch by each running job so far (for their derived ids).
        self._added: dict[tuple[str, str, str], tuple[Job, int]] = {}

    async def _job_children_results(self, job: Job) -> dict[str, Any]:
        commands = QueueCommands(self._settings, job.queue)
        return await drive(self._store, children_results(commands, job.id))

    async def _job_add_to_batch(self, job: Job, jobs: Iterable[Mapping[str, Any]]) -> list[str]:
        key = (job.queue, job.id, job.token or "")
        items = list(jobs)
        first = self._added.get(key, (job, 0))[1]
        procedure = add_to_batch_procedure(self._settings, job, items, first)
        ids = await drive(self._store, procedure)
        self._added[key] = (job, first + len(items))
        if len(self._added) > _ADDED_KEPT:  # drop the counts of jobs no longer running here
            for old_key, (old_job, _count) in list(self._added.items()):
                if not self._running(old_job):
                    del self._added[old_key]
        return ids
