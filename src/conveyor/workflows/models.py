"""The shapes of workflows, pure: ``FlowJob`` trees (with ``chain`` and ``chord`` to build the
common ones), batch ``Callback``s and what reading a batch or a parent's children gives."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..errors import ConfigurationError

__all__ = ["BatchInfo", "Callback", "ChildFailure", "FlowJob", "OnFailure", "chain", "chord"]

#: What a child's failure (for good) does to its parent.
OnFailure = Literal["fail", "ignore", "remove"]
_ON_FAILURE = ("fail", "ignore", "remove")


@dataclasses.dataclass(frozen=True)
class FlowJob:
    """A job of a flow: it runs after its ``children`` are done (they run first, in parallel;
    each may live on another queue: ``queue=None`` is its parent's, or for the root the queue
    that adds the flow). ``options`` are those of ``Queue.add``; ``on_failure``
    says what this job's failure does to its parent: ``"fail"`` (the parent fails at once,
    naming this child), ``"ignore"`` (the parent runs and reads the failure) or ``"remove"``
    (as if this child never was)."""

    name: str
    data: Any = None
    queue: str | None = None
    children: Sequence[FlowJob] = ()
    on_failure: OnFailure = "fail"
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __init__(
        self,
        name: str,
        data: Any = None,
        *,
        queue: str | None = None,
        children: Sequence[FlowJob] = (),
        on_failure: OnFailure = "fail",
        **options: Any,
    ) -> None:
        if on_failure not in _ON_FAILURE:
            raise ConfigurationError(
                f"on_failure must be one of {', '.join(_ON_FAILURE)}, not {on_failure!r}"
            )
        if isinstance(children, FlowJob) or not all(isinstance(c, FlowJob) for c in children):
            raise ConfigurationError("children must be a list of FlowJob")
        set_ = object.__setattr__
        set_(self, "name", name)
        set_(self, "data", data)
        set_(self, "queue", queue)
        set_(self, "children", tuple(children))
        set_(self, "on_failure", on_failure)
        set_(self, "options", dict(options))


@dataclasses.dataclass(frozen=True)
class Callback:
    """A job a batch adds when its condition is met, exactly once: ``name`` on ``queue`` (the
    batch's when None) with data ``{"data": data, "batch": {"id", "total", "completed",
    "failed"}}``. ``options`` are those of ``Queue.add`` (but ``job_id``, which is derived
    from the batch id and the kind of callback)."""

    name: str
    data: Any = None
    queue: str | None = None
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class BatchInfo:
    """A batch as ``get_batch`` reads it. ``completed`` = succeeded, ``failed`` = failed for
    good, ``pending`` = not finished yet; ``state`` is "running", "success" (every job
    succeeded) or "complete" (every job ran, some failed for good)."""

    id: str
    queue: str
    total: int
    pending: int
    completed: int
    failed: int
    state: str
    created_at: int | None = None
    finished_at: int | None = None
    #: Kind ("complete", "success", "death") -> "queue|id" of the callback job it added.
    callbacks: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "queue": self.queue,
            "total": self.total,
            "pending": self.pending,
            "completed": self.completed,
            "failed": self.failed,
            "state": self.state,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "callbacks": dict(self.callbacks),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class ChildFailure:
    """In ``children_results()``: a child with ``on_failure="ignore"`` that failed for good."""

    job_id: str
    queue: str
    error: str


def chain(*steps: FlowJob) -> FlowJob:
    """Each step after the previous one: ``chain(a, b, c)`` runs a, then b, then c (the last
    step is the flow's root; a step's ``children_results()`` hold the previous one's result).
    A step that fails fails the rest of the chain. Steps must not have children of their own
    beyond what ``chain`` gives them."""
    if not steps:
        raise ConfigurationError("chain needs at least one step")
    current: FlowJob | None = None
    for step in steps:
        children = (*step.children, current) if current is not None else step.children
        current = _with_children(step, children)
    assert current is not None
    return current


def chord(header: Sequence[FlowJob], callback: FlowJob) -> FlowJob:
    """The ``header`` jobs in parallel, then ``callback`` with all their results (in its
    ``children_results()``)."""
    if not header:
        raise ConfigurationError("a chord needs at least one job in its header")
    return _with_children(callback, (*callback.children, *header))


def _with_children(job: FlowJob, children: Sequence[FlowJob]) -> FlowJob:
    return FlowJob(
        job.name,
        job.data,
        queue=job.queue,
        children=children,
        on_failure=job.on_failure,
        **job.options,
    )
