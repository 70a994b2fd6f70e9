"""A worker process for the workflow fault tests, configured by environment variables.

Every run of a handler appends ``<kind> <job id> <worker>`` to the file ``CT_LEDGER_FILE``
(outside Redis): "started" and "ran" for jobs, "callback" for batch callbacks. With
``CT_WF_CRASH`` the process SIGKILLs itself at one step of paying what a flow or batch job's
outcome owes (see ``conveyor.workflows.settling``), the first time it gets there:

* ``after_ack``: a job's outcome is recorded (it owes it), nothing of the debt is paid;
* ``before_callback``: a batch's last outcome is counted, its callbacks are owed, none added;
* ``after_callback``: a callback job was added, the batch does not know yet;
* ``after_release``: a parent on another queue was told, the child's queue not yet cleared;
* ``after_grow``: a job added jobs to its batch, then died before it was acknowledged.

Other variables: ``CT_URL``, ``CT_PREFIX``, ``CT_WORKER``, ``CT_QUEUES`` (comma-separated),
``CT_LEASE``, ``CT_ADDS_GRACE``.

``produce_flow()`` is a producer that adds a flow over two queues and SIGKILLs itself after the
first of its add calls (the root's), before the second.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Any

from conveyor import Job, Queue, Unrecoverable, Worker
from conveyor.workflows import ChildFailure, commands, settling
from conveyor.workflows import worker as workflow_worker

URL = os.environ["CT_URL"]
PREFIX = os.environ["CT_PREFIX"]
NAME = os.environ.get("CT_WORKER", "worker")
CRASH = os.environ.get("CT_WF_CRASH", "")
LEDGER = os.environ["CT_LEDGER_FILE"]
LEASE = float(os.environ.get("CT_LEASE", "1"))

queues = [
    Queue(name, url=URL, prefix=PREFIX, lease_seconds=LEASE, liveness_seconds=2.0)
    for name in os.environ.get("CT_QUEUES", "main").split(",")
]


def note(kind: str, job_id: str) -> None:
    with open(LEDGER, "a") as ledger:
        ledger.write(f"{kind} {job_id} {NAME}\n")


def die() -> None:
    note("crash", CRASH)
    os.kill(os.getpid(), signal.SIGKILL)


async def leaf(job: Job) -> Any:
    note("started", job.id)
    if (job.data or {}).get("sleep"):
        await asyncio.sleep(job.data["sleep"])
    note("ran", job.id)
    if (job.data or {}).get("fail"):
        raise Unrecoverable("this leaf fails")
    return (job.data or {}).get("n", 1) * 10


async def gather(job: Job) -> Any:
    note("started", job.id)
    results = await job.children_results()
    note("ran", job.id)
    return sum(v for v in results.values() if not isinstance(v, ChildFailure))


async def grower(job: Job) -> Any:
    note("started", job.id)
    await job.add_to_batch([{"name": "leaf", "data": {"n": k}} for k in range(3)])
    if CRASH == "after_grow":
        die()
    note("ran", job.id)


async def callback(job: Job) -> None:
    note("callback", job.id)


HANDLERS = {"leaf": leaf, "gather": gather, "grower": grower, "callback": callback}


def _install_crash_point() -> None:
    if CRASH == "after_ack":
        settler_after_acks = workflow_worker.Settler.after_acks

        async def after_acks(self: Any, owed: Any) -> None:
            die()
            await settler_after_acks(self, owed)

        workflow_worker.Settler.after_acks = after_acks  # type: ignore[method-assign]
    elif CRASH == "before_callback":
        original = settling.add_callbacks

        def add_callbacks(*args: Any) -> Any:
            die()
            return original(*args)

        settling.add_callbacks = add_callbacks
    elif CRASH == "after_callback":
        callback_added = commands.WorkflowCommands.callback_added

        def crash_callback_added(self: Any, *args: Any) -> Any:
            die()
            return callback_added(self, *args)

        commands.WorkflowCommands.callback_added = crash_callback_added  # type: ignore[method-assign]
    elif CRASH == "after_release":
        owed_done = commands.WorkflowCommands.owed_done

        def crash_owed_done(self: Any, *args: Any) -> Any:
            die()
            return owed_done(self, *args)

        commands.WorkflowCommands.owed_done = crash_owed_done  # type: ignore[method-assign]


def main() -> None:
    logging.basicConfig(level=logging.INFO, format=f"{NAME} %(levelname)s %(message)s")
    _install_crash_point()
    if "CT_ADDS_GRACE" in os.environ:  # how old a flow's adds must be before a sweep makes them
        settling.ADDS_GRACE_SECONDS = float(os.environ["CT_ADDS_GRACE"])
    worker = Worker(queues, HANDLERS, concurrency=int(os.environ.get("CT_CONCURRENCY", "4")))
    asyncio.run(worker.run())


def produce_flow() -> None:
    """Adds main:top <- side:s1, side:s2 and dies between the root's call and the next one."""
    from conveyor import FlowJob

    original = commands.WorkflowCommands.add_flow
    made = 0

    def add_flow(self: Any, *args: Any) -> Any:
        nonlocal made
        made += 1
        if made == 2:  # the root's call was made (its reply read); the children's is next
            note("crash", "producer")
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, *args)

    commands.WorkflowCommands.add_flow = add_flow  # type: ignore[method-assign]
    flow = FlowJob(
        "gather",
        job_id="top",
        children=[FlowJob("leaf", {"n": n}, queue="side", job_id=f"s{n}") for n in (1, 2)],
    )
    asyncio.run(queues[0].add_flow(flow))
