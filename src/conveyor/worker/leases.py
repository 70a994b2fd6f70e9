"""Keeping leases: renew the leases of the jobs this worker runs, publish its heartbeat, hand
back other workers' stalled jobs (all queues in one round trip), stop jobs someone asked to
cancel, and notice when Redis lost a queue's data (its epoch changed)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from ..errors import CommandRefused, ConnectionError
from ..storage.commands import Op, QueueCommands
from ..storage.protocol import Heartbeat, LeaseRenewal, StalledRecovery
from .interfaces import OpRunner
from .leased import LeasedJobs

__all__ = ["LeaseKeeper"]

log = logging.getLogger("conveyor.worker")


class LeaseKeeper:
    def __init__(
        self,
        store: OpRunner,
        queues: list[QueueCommands],
        leased: LeasedJobs,
        worker_id: str,
        lease_seconds: float,
        info: Callable[[], str],
    ) -> None:
        self._store = store
        self._queues = queues
        self._leased = leased
        self._worker_id = worker_id
        self._lease_seconds = lease_seconds
        self._info = info
        self._epochs: dict[str, str] = {}
        #: How often this worker saw a queue's data vanish from Redis (see heartbeat.lua).
        self.data_losses = 0

    @property
    def interval(self) -> float:
        # Renew well inside the lease; at least every 2 s so that cancel requests land quickly.
        return min(self._lease_seconds / 3, 2.0)

    async def keep(self) -> None:
        """Renew leases, publish the heartbeat, recover other workers' stalled jobs."""
        by_queue = self._leased.by_queue(self._queues)
        info = self._info()
        ops: list[Op[Any]] = []
        for commands, items in by_queue.items():
            ops.append(commands.extend_leases(leased.lease for leased in items))
            known = self._epochs.get(commands.queue, "")
            ops.append(commands.heartbeat(self._worker_id, info, self._lease_seconds, known))
            ops.append(commands.recover_stalled())
        replies = iter(await self._store.run_many(ops))
        for commands in by_queue:
            renewal: LeaseRenewal = next(replies)
            heartbeat: Heartbeat = next(replies)
            recovery: StalledRecovery = next(replies)
            self._renewed(commands.queue, renewal)
            if self._check_epoch(commands.queue, heartbeat.epoch):
                # The queue registry was lost with the data: list the queue again so that the
                # dashboard, API and CLI find it (and its recorded data loss).
                await self._store.run(commands.register())
            if recovery.recovered or recovery.failed:
                log.warning(
                    "queue %s: %d stalled jobs handed back, %d failed as stalled",
                    commands.queue,
                    recovery.recovered,
                    recovery.failed,
                )

    def _renewed(self, queue: str, renewal: LeaseRenewal) -> None:
        for job_id in renewal.cancel:
            leased = self._leased.get(queue, job_id)
            if leased is not None and leased.task is not None and not leased.cancelling:
                log.info("job %s in %s: cancel requested; stopping it", job_id, queue)
                leased.cancelling = True
                leased.task.cancel()
        for job_id in renewal.lost:
            leased = self._leased.get(queue, job_id)
            if leased is not None and not leased.lost:
                leased.lost = True
                log.warning(
                    "lost the lease of job %s in %s: another worker may run it; "
                    "this worker's outcome for it will be discarded",
                    job_id,
                    queue,
                )

    def _check_epoch(self, queue: str, epoch: str) -> bool:
        """True (and a loud log) when the queue's epoch changed: Redis lost its data."""
        known = self._epochs.setdefault(queue, epoch)
        if epoch == known:
            return False
        self._epochs[queue] = epoch
        self.data_losses += 1
        log.error(
            "queue %s: Redis lost this queue's data (restarted without persistence, flushed, "
            "failed over to an empty replica, or the queue was obliterated); jobs queued "
            "before may be gone and running jobs cannot be acknowledged",
            queue,
        )
        return True

    async def say_goodbye(self) -> None:
        """Leave the queues' lists of live workers (a heartbeat with no time to live)."""
        with contextlib.suppress(ConnectionError, CommandRefused):
            await self._store.run_many([c.heartbeat(self._worker_id, "", 0) for c in self._queues])
