"""The job model: a dataclass and its states. Pure: no I/O happens in this module.

A job's fields split in two. The producer sets ``name``, ``data`` and the options (``attempts``,
``backoff``, ``timeout``, ``ttl``, ``priority``). Conveyor sets the rest as the job moves through
its states: ``state``, ``attempts_made``, ``stalls``, ``progress``, ``result``, ``error``, the
timestamps (milliseconds since the epoch, Redis server time) and ``worker``.

Methods that talk to Redis (``update_progress``, ``log``, ``wait``) go through the queue the job
came from, which the job holds as an opaque ``JobContext``.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from . import serializer
from .backoff import Backoff

__all__ = [
    "CANCELLABLE_STATES",
    "CLEANABLE_STATES",
    "FINISHED_STATES",
    "REQUEUABLE_STATES",
    "Job",
    "JobContext",
    "JobState",
]


class JobState(enum.StrEnum):
    """Where a job is. The order is the one counts, tables and the dashboard's tabs show."""

    WAITING = "waiting"
    ACTIVE = "active"
    DELAYED = "delayed"
    COMPLETED = "completed"
    FAILED = "failed"
    #: workflows: a flow's parent, until its children are done (then it is waiting).
    WAITING_CHILDREN = "waiting-children"


#: A finished job runs again only when someone retries it.
FINISHED_STATES = frozenset({JobState.COMPLETED, JobState.FAILED})
#: States whose jobs ``clean`` and ``remove`` delete: every state but the running one.
CLEANABLE_STATES = frozenset(set(JobState) - {JobState.ACTIVE})
#: States a job can be cancelled in (a running job is stopped first).
CANCELLABLE_STATES = frozenset(
    {JobState.WAITING, JobState.DELAYED, JobState.ACTIVE, JobState.WAITING_CHILDREN}
)
#: States whose jobs go back to waiting all at once: failed ones are retried, delayed ones
#: promoted (``retry_all`` / ``promote_all``).
REQUEUABLE_STATES = frozenset({JobState.FAILED, JobState.DELAYED})


class JobContext(Protocol):
    """What a job needs from its queue to report on itself (implemented by Queue and Worker)."""

    async def _job_progress(self, job: Job, value: Any) -> None: ...
    async def _job_log(self, job: Job, line: str) -> None: ...
    async def _job_wait(self, job: Job, timeout: float | None) -> Any: ...


def _int(raw: str | None, default: int = 0) -> int:
    try:
        return int(raw) if raw else default
    except ValueError:
        return default


def _json(raw: str | None) -> Any:
    if not raw:
        return None
    return serializer.decode(raw)


@dataclasses.dataclass(slots=True, eq=False)
class Job:
    id: str
    name: str
    data: Any
    queue: str
    state: JobState = JobState.WAITING
    attempts: int = 1
    backoff: Backoff | None = None
    timeout: float | None = None
    ttl: float | None = None
    priority: int = 0
    attempts_made: int = 0
    stalls: int = 0
    progress: Any = None
    result: Any = None
    error: str | None = None
    created_at: int | None = None
    run_at: int | None = None
    started_at: int | None = None
    finished_at: int | None = None
    worker: str | None = None
    #: Flow control: the group the job belongs to (see ``flow_control``), or None.
    group: str | None = None
    #: Fencing token of the current lease; only set on a job handed to a worker.
    token: str | None = None
    #: Set when the stored job could not be decoded; the fields above are best effort then.
    decode_error: str | None = None
    #: ecosystem (OpenTelemetry): the producer's trace context, as stored in the job's opts.
    trace: Any = None
    #: Set on the job ``add`` returned when it deduplicated (``dedupe=``): the add found this
    #: existing job and added nothing.
    deduplicated: bool = False
    # workflows (see conveyor.workflows): a flow's parent {"queue", "id"}, children
    # [{"queue", "id"}], and the id of the batch the job is in
    parent: dict[str, str] | None = None
    children: list[dict[str, str]] | None = None
    batch: str | None = None
    _context: JobContext | None = dataclasses.field(default=None, repr=False)

    @property
    def attempt(self) -> int:
        """Number of the attempt in progress (or next to run), 1-based."""
        return self.attempts_made + 1

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED_STATES

    async def update_progress(self, value: Any) -> None:
        """Record progress (a number or any JSON value); visible to the dashboard and events."""
        await self._require_context()._job_progress(self, value)
        self.progress = value

    async def log(self, line: str) -> None:
        """Append a line to the job's log (the oldest lines are dropped past the cap)."""
        await self._require_context()._job_log(self, str(line))

    async def wait(self, timeout: float | None = None) -> Any:
        """Wait until the job finishes: its result, or ``JobFailed`` with the reason."""
        return await self._require_context()._job_wait(self, timeout)

    async def children_results(self) -> dict[str, Any]:
        """In a flow parent's handler: ``{child id: result}`` (see ``conveyor.workflows``)."""
        return await self._workflow_context("_job_children_results")(self)  # type: ignore[no-any-return]

    async def add_to_batch(
        self, jobs: Sequence[Mapping[str, Any]] | str, data: Any = None, **options: Any
    ) -> list[str]:
        """In a batch job's handler: add jobs to its batch, as ``add_bulk`` takes them (or one,
        as ``add`` does: ``add_to_batch("name", data, **options)``); the batch is not complete
        before they finish. Returns their ids."""
        if isinstance(jobs, str):
            jobs = [{"name": jobs, "data": data, **options}]
        return await self._workflow_context("_job_add_to_batch")(self, jobs)  # type: ignore[no-any-return]

    def _workflow_context(self, method: str) -> Any:
        found = getattr(self._require_context(), method, None)
        if found is None:
            raise RuntimeError(f"this job's context cannot do {method.removeprefix('_job_')}")
        return found

    def _require_context(self) -> JobContext:
        if self._context is None:
            raise RuntimeError("this Job is not bound to a queue; get it from Queue.get_job()")
        return self._context

    def apply_options(self, options: Mapping[str, Any]) -> None:
        """Take timeout, ttl and backoff from options as stored (the job's ``opts`` JSON)."""
        self.timeout = options.get("timeout")
        self.ttl = options.get("ttl")
        self.trace = options.get("trace")  # ecosystem: OpenTelemetry
        if options.get("backoff"):
            self.backoff = Backoff.from_stored(options["backoff"])
        self.group = options.get("group")  # flow control (kept in opts: a fetch reads it)
        if "parent" in options or "batch" in options:  # workflows
            self.parent = options.get("parent")
            self.batch = options.get("batch")

    def options(self) -> dict[str, Any]:
        """The options the producer chose, as stored."""
        return {
            "attempts": self.attempts,
            "backoff": self.backoff.to_dict() if self.backoff else None,
            "timeout": self.timeout,
            "ttl": self.ttl,
            "priority": self.priority,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view of the job (used by the CLI and the HTTP API)."""
        return {
            "id": self.id,
            "queue": self.queue,
            "name": self.name,
            "data": self.data,
            "state": self.state.value,
            "options": self.options(),
            "attempts_made": self.attempts_made,
            "stalls": self.stalls,
            "progress": self.progress,
            "result": self.result,
            "error": self.error,
            "created_at": self.created_at,
            "run_at": self.run_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "worker": self.worker,
            "group": self.group,
            "decode_error": self.decode_error,
            "parent": self.parent,  # workflows
            "children": self.children,
            "batch": self.batch,
        }

    @classmethod
    def from_fetch(cls, queue: str, raw: Sequence[Any], context: JobContext | None) -> Job:
        """A job as ``fetch.lua`` hands it out (the worker's hot path: no field-by-field
        checks); anything malformed falls back to ``from_fields``, which says what is wrong."""
        job_id, token, name, data, opts, attempts, made, stalls, priority, created, progress = raw
        try:
            if name is None:
                raise ValueError("no name")
            job = cls(
                id=job_id,
                name=name,
                data=serializer.decode(data),
                queue=queue,
                state=JobState.ACTIVE,
                attempts=int(attempts or 1),  # fields at their default are not stored
                priority=int(priority or 0),
                attempts_made=int(made or 0),
                stalls=int(stalls or 0),
                progress=serializer.decode(progress) if progress else None,
                created_at=int(created),
                _context=context,
            )
            if opts is not None and opts != "{}":
                job.apply_options(serializer.decode(opts))
        except (ValueError, TypeError, AttributeError):
            names = ("name", "data", "opts", "attempts", "made", "stalls", "priority", "created")
            fields = {k: v for k, v in zip(names, raw[2:], strict=False) if v is not None}
            job = cls.from_fields(job_id, queue, {**fields, "state": "active"}, context)
        job.token = token
        return job

    @classmethod
    def from_fields(
        cls,
        job_id: str,
        queue: str,
        fields: Mapping[str, str],
        context: JobContext | None = None,
    ) -> Job:
        """Build a job from its Redis hash. Never raises: undecodable parts set ``decode_error``."""
        problems: list[str] = []

        def field_json(name: str) -> Any:
            try:
                return _json(fields.get(name))
            except ValueError as exc:
                problems.append(f"field {name!r} is not valid JSON ({exc})")
                return fields.get(name)

        opts = field_json("opts")
        if not isinstance(opts, dict):
            if opts is not None:
                problems.append("field 'opts' is not a JSON object")
            opts = {}
        backoff = None
        if opts.get("backoff"):
            try:
                backoff = Backoff.from_stored(opts["backoff"])
            except (ValueError, AttributeError) as exc:
                problems.append(str(exc))
        raw_state = fields.get("state", "")
        try:
            state = JobState(raw_state)
        except ValueError:
            problems.append(f"unknown state {raw_state!r}")
            state = JobState.FAILED
        if "name" not in fields:
            problems.append("field 'name' is missing")
        if "data" not in fields:
            problems.append("field 'data' is missing")
        job = cls(
            id=job_id,
            name=fields.get("name", ""),
            data=field_json("data"),
            queue=queue,
            state=state,
            attempts=_int(fields.get("attempts"), 1),
            backoff=backoff,
            timeout=opts.get("timeout"),
            ttl=opts.get("ttl"),
            priority=_int(fields.get("priority")),
            attempts_made=_int(fields.get("made")),
            stalls=_int(fields.get("stalls")),
            progress=field_json("progress"),
            result=field_json("result"),
            error=fields.get("error") or None,
            created_at=_int(fields.get("created")) or None,
            run_at=_int(fields.get("run_at")) or None,
            started_at=_int(fields.get("started")) or None,
            finished_at=_int(fields.get("finished")) or None,
            worker=fields.get("worker") or None,
            group=fields.get("group") or None,  # flow control
            token=None,
            decode_error="; ".join(problems) or None,
            trace=opts.get("trace"),  # ecosystem: OpenTelemetry
            _context=context,
        )
        if "parent" in opts or "batch" in opts:  # workflows
            job.parent, job.batch = opts.get("parent"), opts.get("batch")
        if "kids" in fields:
            kids = field_json("kids")
            job.children = [dict(zip(("queue", "id"), k.split("|", 1), strict=False)) for k in kids]
        return job
