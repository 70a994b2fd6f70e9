"""Reading workflows: a batch's counts, a parent's children's results."""

from __future__ import annotations

from typing import Any

from .. import serializer
from ..errors import JobNotFound
from ..procedures import Procedure
from ..storage.commands import QueueCommands
from .commands import WorkflowCommands
from .models import BatchInfo, ChildFailure

__all__ = ["children_results", "get_batch"]

_BATCH_FIELDS = (
    "total",
    "pending",
    "completed",
    "failed",
    "state",
    "created",
    "finished",
    "job:complete",
    "job:success",
    "job:death",
)


def _int(raw: str | None) -> int:
    return int(raw) if raw else 0


def get_batch(commands: QueueCommands, batch_id: str) -> Procedure[BatchInfo | None]:
    f = yield WorkflowCommands(commands).batch_fields(batch_id, _BATCH_FIELDS)
    if f[4] is None:
        return None
    callbacks = {
        kind: ref for kind, ref in zip(("complete", "success", "death"), f[7:], strict=True) if ref
    }
    return BatchInfo(
        id=batch_id,
        queue=commands.queue,
        total=_int(f[0]),
        pending=_int(f[1]),
        completed=_int(f[2]),
        failed=_int(f[3]),
        state=str(f[4]),
        created_at=_int(f[5]) or None,
        finished_at=_int(f[6]) or None,
        callbacks=callbacks,
    )


def children_results(commands: QueueCommands, job_id: str) -> Procedure[dict[str, Any]]:
    """``{child id: result}`` of a parent's children that completed, and a ``ChildFailure``
    for each that failed with ``on_failure="ignore"`` (removed ones are not listed)."""
    fields = yield WorkflowCommands(commands).children_fields(job_id)
    if not fields:
        raise JobNotFound(f"no job {job_id} in {commands.queue}", job_id)
    out: dict[str, Any] = {}
    for field, value in fields.items():
        kind, _, ref = field.partition(":")
        if kind not in ("r", "x") or "|" not in ref:
            continue
        queue, _, child_id = ref.partition("|")
        if kind == "r":
            out[child_id] = serializer.decode(value)
        else:
            out[child_id] = ChildFailure(child_id, queue, str(serializer.decode(value)))
    return out
