"""Acknowledgements: the outbox of finished attempts, sent together.

Everything that finished while the previous flush was in flight goes in the next round trip:
one complete.lua call per queue for the completed jobs, one fail.lua call per failed one. A
flush that Redis refuses is retried job by job, so one bad outcome cannot hold back the rest;
one that cannot reach Redis is kept and sent again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from ..errors import CommandRefused, ConnectionError
from ..runner import AttemptOutcome
from ..storage.commands import Op, QueueCommands
from ..storage.flow import FlowCommands
from ..storage.protocol import Code
from ..workflows.worker import debts, flag_owing, owes
from .interfaces import OpRunner
from .leased import LeasedJob, LeasedJobs

if TYPE_CHECKING:
    from ..workflows.worker import Settler

__all__ = ["Acknowledger", "FinishedAttempt"]

log = logging.getLogger("conveyor.worker")

#: A leased job whose attempt ended, with what it came to, waiting to be acknowledged (a plain
#: tuple: one is made per job).
FinishedAttempt = tuple[LeasedJob, AttemptOutcome]


def _log_fields(leased: LeasedJob, outcome: AttemptOutcome) -> dict[str, Any]:
    """Structured fields of a per-job log record (see ``conveyor.logs``)."""
    job = leased.job
    return {
        "queue": job.queue,
        "job_id": job.id,
        "job_name": job.name,
        "attempt": job.attempt,
        "duration_ms": outcome.duration_ms,
    }


class Acknowledger:
    def __init__(self, store: OpRunner, leased: LeasedJobs, worker_id: str) -> None:
        self._store = store
        self._leased = leased
        self._worker_id = worker_id
        self._outbox: list[FinishedAttempt] = []
        self._ready = asyncio.Event()
        self._finished = False
        # One flush at a time, so that shutdown never hands back a job whose completion is
        # still on its way to Redis.
        self._lock = asyncio.Lock()
        #: Attempts recorded (completed or failed), and of those the failed ones.
        self.processed = 0
        self.failed = 0
        #: Outcomes refused because the lease was lost (LEASE_LOST): another worker owns the job
        #: (its lease expired, or this worker was taken for dead). Counted, never silent.
        self.lost = 0
        #: workflows: pays what the outcomes of flow and batch jobs owe (None: not wired).
        self.settler: Settler | None = None

    def put(self, leased: LeasedJob, outcome: AttemptOutcome) -> None:
        self._outbox.append((leased, outcome))
        self._ready.set()

    def __len__(self) -> int:
        return len(self._outbox)

    async def run(self) -> None:
        """Flush whenever something finished, until ``stop()``."""
        while not self._finished:
            await self._ready.wait()
            self._ready.clear()
            await self.flush()

    def stop(self) -> None:
        """End ``run`` after the flush in progress (cancelling it mid-command could leave an
        acknowledgement half-sent)."""
        self._finished = True
        self._ready.set()

    async def flush(self, deadline: float | None = None) -> None:
        """Send every finished outcome; on a connection error keep them and try again (until
        ``deadline``, if given: then their leases expire and the jobs run again elsewhere)."""
        async with self._lock:
            failures = 0
            while self._outbox:
                flush, self._outbox = self._outbox, []
                try:
                    await self._send(flush)
                    failures = 0
                except CommandRefused as exc:
                    # Not an outage: Redis refused a script call. Record the outcomes one by one
                    # so that a single bad one cannot hold back the others.
                    await self._send_one_by_one(flush, exc)
                except ConnectionError as exc:
                    self._outbox = flush + self._outbox
                    failures += 1
                    delay = min(0.1 * 2**failures, 5.0)
                    if deadline is not None and time.monotonic() + delay > deadline:
                        log.error(
                            "gave up recording %d outcomes (%s); those jobs will run again",
                            len(self._outbox),
                            exc,
                        )
                        return
                    log.warning("could not record %d outcomes (%s); retrying", len(flush), exc)
                    await asyncio.sleep(delay)
            if deadline is not None and self.settler is not None:
                await self.settler.drain()  # shutting down: pay what the last outcomes owe

    async def _send_one_by_one(
        self, flush: list[FinishedAttempt], first_error: CommandRefused
    ) -> None:
        for item in flush:
            try:
                await self._send([item])
            except CommandRefused as exc:
                leased = item[0]
                log.error(
                    "Redis refused to record the outcome of job %s in %s (%s); dropping it: the "
                    "job runs again once its lease expires",
                    leased.job.id,
                    leased.commands.queue,
                    exc,
                )
                self._leased.settle([leased.key])
            except ConnectionError:
                self._outbox.append(item)
        if len(flush) > 1:
            log.warning(
                "a flush of outcomes was refused (%s); recorded them one by one", first_error
            )

    async def _send(self, flush: list[FinishedAttempt]) -> None:
        ops: list[Op[Any]] = []
        owing = self.settler is not None and any(owes(r.job) for r, _o in flush)  # workflows
        completed: dict[QueueCommands, list[FinishedAttempt]] = {}
        failed: list[FinishedAttempt] = []
        for leased, outcome in flush:
            if outcome.completed:
                completed.setdefault(leased.commands, []).append((leased, outcome))
            else:
                failed.append((leased, outcome))
        for commands, items in completed.items():
            acks: list[tuple[Any, ...]] = [
                (r.job.id, r.job.token or "", o.result or "null", r.job.attempt) for r, o in items
            ]
            if owing:
                acks = flag_owing(acks, items)
            ops.append(commands.complete(acks))
        for leased, outcome in failed:
            job = leased.job
            if outcome.hold_ms is not None:  # flow control: RateLimited, no attempt used
                flow = FlowCommands(leased.commands)
                ops.append(flow.rate_limited(job.id, job.token or "", outcome.hold_ms))
                continue
            record = outcome.attempt_record(job, self._worker_id)
            ops.append(
                leased.commands.fail(
                    job.id, job.token or "", outcome.error or "", record, outcome.retry_delay_ms
                )
            )
        replies = await self._store.run_many(ops)
        lost: set[tuple[str, str]] = set()
        for (commands, _items), reply in zip(completed.items(), replies, strict=False):
            lost.update((commands.queue, job_id) for job_id in reply)
        for (leased, _outcome), reply in zip(failed, replies[len(completed) :], strict=True):
            if reply == Code.LEASE_LOST:
                lost.add(leased.key)
        settled = []
        for leased, outcome in flush:
            key = leased.key
            settled.append(key)
            if key in lost:
                self.lost += 1
                log.warning(
                    "lease of job %s in %s was lost before it finished; its outcome was discarded "
                    "(another worker owns the job now)",
                    leased.job.id,
                    leased.commands.queue,
                )
            elif outcome.hold_ms is not None:
                log.info(
                    "job %s (%s) was rate limited; held for %d ms",
                    leased.job.id,
                    leased.job.name,
                    outcome.hold_ms,
                    extra=_log_fields(leased, outcome),
                )
            elif outcome.completed:
                self.processed += 1
                if log.isEnabledFor(logging.DEBUG):
                    log.debug(
                        "job %s (%s) completed",
                        leased.job.id,
                        leased.job.name,
                        extra=_log_fields(leased, outcome),
                    )
            else:
                self.processed += 1
                self.failed += 1
                log.info(
                    "job %s (%s) failed: %s",
                    leased.job.id,
                    leased.job.name,
                    outcome.error,
                    extra=_log_fields(leased, outcome),
                )
        self._leased.settle(settled)
        if owing and self.settler is not None:  # workflows: pay what these outcomes owe
            self.settler.submit(debts(completed, failed, replies[len(completed) :], lost))
