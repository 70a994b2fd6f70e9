"""Starting the jobs a fetch leased: each runs in its own task (``runner.run_job``) in one of
the worker's slots, and its outcome goes to the acknowledgements' outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from ..backoff import BackoffStrategy
from ..job import Job, JobContext
from ..runner import NO_RETRY, AttemptOutcome, Handlers, run_job
from ..storage.commands import QueueCommands
from ..storage.protocol import FetchReply
from .acks import Acknowledger
from .leased import LeasedJob, LeasedJobs
from .slots import Slots

__all__ = ["JobStarter"]


class JobStarter:
    def __init__(
        self,
        handlers: Handlers,
        strategies: Mapping[str, BackoffStrategy],
        max_result_bytes: int,
        slots: Slots,
        leased: LeasedJobs,
        acks: Acknowledger,
        context: JobContext,
        stopping: asyncio.Event,
    ) -> None:
        self._handlers = handlers
        self._strategies = strategies
        self._max_result_bytes = max_result_bytes
        self._slots = slots
        self._leased = leased
        self._acks = acks
        self._context = context
        self._stopping = stopping

    def start(self, commands: QueueCommands, reply: FetchReply) -> None:
        queue, context, add = commands.queue, self._context, self._leased.add
        self._slots.take(len(reply.jobs))
        for raw in reply.jobs:
            # (from_fetch unpacks any sequence; its annotation says list)
            job = Job.from_fetch(queue, raw, context)
            leased = LeasedJob(commands, job)
            add(leased)
            leased.task = asyncio.create_task(self._run(leased), name=f"conveyor-job-{job.id}")

    async def _run(self, leased: LeasedJob) -> AttemptOutcome:
        try:
            outcome = await run_job(
                leased.job,
                self._handlers,
                max_result_bytes=self._max_result_bytes,
                strategies=self._strategies,
                executor=self._slots.executor,
                on_thread=leased.threads.append,
            )
        except asyncio.CancelledError:
            if not leased.cancelling or self._stopping.is_set():
                raise  # shutdown: the job is handed back, not failed
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            outcome = AttemptOutcome(error="cancelled", retry_delay_ms=NO_RETRY)
        finally:
            self._slots.release_after(leased.threads, leased.job.id)
        self._acks.put(leased, outcome)
        return outcome
