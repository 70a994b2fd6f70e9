"""Adding flows and batches, as procedures (see ``conveyor.procedures``) that ``Queue`` and
``SyncQueue`` both drive.

A flow is added top-down, one ``add_flow.lua`` call per queue and depth, so every job exists
before its children do (a child that finishes at once finds its parent). The first call, on
the root's queue, also records the calls still to make in the queue's owed hash: if the
producer dies half-way, a worker makes them (``settling``); the job ids are chosen here, so a
call made twice adds nothing the second time.
"""

from __future__ import annotations

import collections
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from ..errors import ConfigurationError, JobNotFound, WrongState
from ..job import Job, JobContext, JobState
from ..options import build_spec, spec_from_mapping
from ..procedures import Procedure
from ..settings import Settings
from ..storage.commands import AddSpec, QueueCommands
from ..storage.keys import validate_queue_name
from ..storage.protocol import Code
from .commands import WorkflowCommands, sha1
from .models import Callback, FlowJob

__all__ = ["add_batch", "add_flow", "flow_calls", "run_flow_calls"]

#: The kinds of batch callback, as ``add_batch`` takes them.
CALLBACK_KINDS = {"on_complete": "complete", "on_success": "success", "on_death": "death"}
#: Jobs in one flow, at most (each is one entry of a script's argument).
MAX_FLOW_JOBS = 100_000

#: One add_flow call: (queue, jobs as the script takes them).
FlowCall = tuple[str, list[dict[str, Any]]]


def ref(queue: str, job_id: str) -> str:
    """A job named across queues (queue names cannot hold "|")."""
    return f"{queue}|{job_id}"


def with_options(spec: AddSpec, extra: Mapping[str, Any]) -> AddSpec:
    """The spec with workflow facts added to its stored options (read back as ``Job.parent``,
    ``Job.batch``, and by the worker, which then reports the job's outcome)."""
    opts = {**orjson.loads(spec.opts), **extra}
    return spec._replace(opts=orjson.dumps(opts).decode())


def _full_args(spec: AddSpec, job_id: str) -> list[Any]:
    return [
        job_id,
        spec.name,
        spec.data,
        spec.opts,
        spec.attempts,
        spec.priority,
        spec.delay_ms,
        spec.ttl_ms,
    ]


def flow_calls(settings: Settings, default_queue: str, root: FlowJob) -> tuple[str, list[FlowCall]]:
    """The root's id and the add_flow calls that add the tree, in order (every job after its
    parent). Checks every job before anything is sent."""
    # level: how many queue changes lie between the root and a job; one call per (level, queue)
    calls: dict[tuple[int, str], list[dict[str, Any]]] = {}
    seen: set[tuple[str, str]] = set()
    # (job, its id, chosen by the producer, parent id, level, parent's queue)
    Pending = tuple[FlowJob, str, bool, str | None, int, str]
    if not isinstance(root, FlowJob):
        raise ConfigurationError(f"a flow is made of FlowJob, not {type(root).__name__}")
    root_id = root.options.get("job_id") or uuid.uuid4().hex
    pending: collections.deque[Pending] = collections.deque(
        [(root, root_id, "job_id" in root.options, None, 0, default_queue)]
    )
    while pending:
        node, job_id, chosen, parent, level, parent_queue = pending.popleft()
        if len(seen) >= MAX_FLOW_JOBS:
            raise ConfigurationError(f"a flow holds at most {MAX_FLOW_JOBS} jobs")
        # a job without a queue lives on its parent's (the root on the queue adding it)
        queue = validate_queue_name(node.queue or parent_queue)
        if parent is not None and queue != parent_queue:
            level += 1
        options = {**node.options, "job_id": job_id}
        spec = build_spec(settings, node.name, node.data, **options)
        if (queue, spec.job_id) in seen:
            raise ConfigurationError(f"job id {spec.job_id!r} is used twice in the flow")
        seen.add((queue, spec.job_id))
        entry: dict[str, Any] = {}
        if parent is not None:
            wf = {"p": [parent_queue, parent], "f": node.on_failure}
            entry["wf"] = orjson.dumps(wf).decode()
            spec = with_options(spec, {"parent": {"queue": parent_queue, "id": parent}})
        entry["a"] = _full_args(spec, spec.job_id)
        if chosen:
            entry["chosen"] = 1
        kids = []
        for child in node.children:  # (FlowJob checked its children are FlowJobs)
            child_id = child.options.get("job_id") or uuid.uuid4().hex
            kids.append(ref(validate_queue_name(child.queue or queue), child_id))
            pending.append((child, child_id, "job_id" in child.options, job_id, level, queue))
        if kids:
            entry["k"] = kids
        calls.setdefault((level, queue), []).append(entry)
    # the root's call goes first (it is alone at level 0 on its queue)
    ordered = [(queue, jobs) for (_level, queue), jobs in sorted(calls.items(), key=_by_level)]
    return root_id, ordered


def _by_level(item: tuple[tuple[int, str], Any]) -> int:
    return item[0][0]


def run_flow_calls(
    settings: Settings, calls: Sequence[FlowCall], first: bool
) -> Procedure[str | None]:
    """Make the add_flow calls; when ``first`` and a job of the first call exists, its id
    (then nothing was added)."""
    for index, (queue, jobs) in enumerate(calls):
        commands = WorkflowCommands(QueueCommands(settings, queue))
        owed = ""
        if first and index == 0 and len(calls) > 1:
            owed = orjson.dumps({"t": time.time(), "calls": list(calls[1:])}).decode()
        yield commands.base.register()
        added = yield commands.add_flow(jobs, first and index == 0, owed)
        if isinstance(added, str):
            return added
    return None


def add_flow(commands: QueueCommands, root: FlowJob, context: JobContext | None) -> Procedure[Job]:
    """Add a flow; returns the root job (read back: ``WAITING_CHILDREN`` when it has
    children). A root whose ``job_id`` exists is returned as it is, and nothing is added;
    another job of the flow whose ``job_id`` exists raises ``ConfigurationError``."""
    settings = commands.settings
    root_id, calls = flow_calls(settings, commands.queue, root)
    # The first call refuses ids that exist on its queue, atomically; the ids a producer chose
    # for jobs on other queues are checked here first (a job of the flow that exists already
    # would never report to its parent).
    for queue, jobs in calls[1:]:
        chosen = [str(job["a"][0]) for job in jobs if job.get("chosen")]
        if chosen:
            existing = yield WorkflowCommands(QueueCommands(settings, queue)).existing(chosen)
            if existing:
                raise ConfigurationError(f"job {existing[0]!r} exists in {queue!r}; nothing added")
    exists = yield from run_flow_calls(settings, calls, first=True)
    root_queue = calls[0][0]
    if exists is not None and exists != root_id:
        raise ConfigurationError(f"job {exists!r} exists in {root_queue!r}; nothing added")
    if exists is None and len(calls) > 1:
        wf = WorkflowCommands(QueueCommands(settings, root_queue))
        owed = yield wf.owed([f"a:{root_id}"])
        if owed:
            yield wf.owed_done([[f"a:{root_id}", sha1(owed[f"a:{root_id}"])]])
    reader = commands if root_queue == commands.queue else QueueCommands(settings, root_queue)
    job = yield reader.get_job(root_id, context)
    if job is None:  # removed meanwhile: report it as added
        return Job(root_id, root.name, root.data, root_queue, JobState.WAITING_CHILDREN)
    return job  # type: ignore[no-any-return]


def batch_jobs(settings: Settings, batch_id: str, jobs: Iterable[Any]) -> list[list[Any]]:
    """The batch's jobs as add_batch takes them, each checked as ``add_bulk`` checks it."""
    out = []
    for item in jobs:
        if isinstance(item, Mapping) and item.get("queue") not in (None,):
            raise ConfigurationError(
                "the jobs of a batch live on the batch's queue (no 'queue' option)"
            )
        spec = with_options(spec_from_mapping(settings, item), {"batch": batch_id})
        out.append(_full_args(spec, spec.job_id))
    return out


def callback_specs(
    settings: Settings, default_queue: str, callbacks: Mapping[str, Callback | None]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for option, callback in callbacks.items():
        if callback is None:
            continue
        if not isinstance(callback, Callback):
            raise ConfigurationError(f"{option} must be a Callback, not {callback!r}")
        options = dict(callback.options)
        if "job_id" in options:
            raise ConfigurationError("a Callback's job id is derived from its batch's id")
        queue = validate_queue_name(callback.queue or default_queue)
        # checked now, so that a bad callback cannot fail when the batch ends
        spec = build_spec(settings, callback.name, callback.data, **options)
        out[CALLBACK_KINDS[option]] = [queue, callback.name, spec.data, options]
    return out


def add_batch(
    commands: QueueCommands,
    jobs: Iterable[Any],
    callbacks: Mapping[str, Callback | None],
    context: JobContext | None,
    batch_id: str | None = None,
) -> Procedure[Any]:
    """Create the batch with its jobs in one script call; returns (batch id, job ids)."""
    settings = commands.settings
    batch_id = batch_id or uuid.uuid4().hex
    specs = callback_specs(settings, commands.queue, callbacks)
    items = batch_jobs(settings, batch_id, jobs)
    wf = WorkflowCommands(commands)
    yield commands.register()
    reply = yield wf.add_batch(batch_id, False, specs, items)
    check_batch_reply(reply, batch_id)
    return batch_id, [str(x) for x in reply[1:]]


def grow_batch(commands: QueueCommands, batch_id: str, items: list[list[Any]]) -> Procedure[Any]:
    reply = yield WorkflowCommands(commands).add_batch(batch_id, True, {}, items)
    check_batch_reply(reply, batch_id)
    return [str(x) for x in reply[1:]]


def check_batch_reply(reply: list[Any], batch_id: str) -> None:
    code = int(reply[0])
    if code == Code.EXISTS:
        what = f"job {reply[1]}" if len(reply) > 1 else f"batch {batch_id}"
        raise ConfigurationError(f"{what} exists; nothing was added")
    if code == Code.NOT_FOUND:
        raise JobNotFound(f"no batch {batch_id}", batch_id)
    if code == Code.WRONG_STATE:
        raise WrongState(f"batch {batch_id} has finished; it cannot grow", batch_id)
