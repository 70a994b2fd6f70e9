"""Typed events read from a queue's Redis stream, and how a finished job is recognised in them.

Every transition script appends one entry to ``<prefix>:{<queue>}:events`` in the same atomic
step as the state change, so the stream can never disagree with the job states. The stream is
capped (``Settings.events_max_length``), so it is a live feed, not an archive.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import orjson

from . import serializer
from .errors import JobFailed, JobNotFound

__all__ = ["Event", "finished_outcome"]

_NO_VALUE = object()


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """One transition: ``event`` is added, waiting, active, progress, completed, retrying,
    failed, stalled, released, cancelling, removed, paused or resumed; job schedulers add
    skipped (a tick that made no job: ``job_id`` is the job it would have been, the field
    ``schedule`` its schedule), schedule_updated, schedule_paused, schedule_resumed and
    schedule_removed (``job_id`` is the schedule's id); dedup modes add deduplicated."""

    #: Stream entry id ("<ms>-<n>"); pass it as ``after=`` to resume reading from here.
    id: str
    event: str
    job_id: str
    fields: Mapping[str, str]

    @property
    def timestamp_ms(self) -> int:
        return int(self.id.split("-", 1)[0])

    @classmethod
    def from_entry(cls, entry_id: str, fields: Mapping[str, str]) -> list[Event]:
        """The events of one stream entry: one, or one per job of a batched entry (whose
        ``ids`` field lists the jobs). A ``results`` field maps job ids to small results;
        each job's event gets its own as ``result`` (JSON text). Where the entry has a
        ``large`` field (the ids whose result was too large to carry), the results of the
        other jobs not in ``results`` are null; entries of earlier versions carry every
        small result, null included, and no ``large``."""
        name = fields.get("event", "")
        extra = {k: v for k, v in fields.items() if k not in _BATCH_FIELDS}
        if "ids" in fields:
            try:
                ids = [str(i) for i in serializer.decode(fields["ids"])]
            except (ValueError, TypeError):
                return []
        else:
            ids = [fields.get("id", "")]
        results = _results(fields.get("results"))
        large = _large(fields.get("large"))
        events = []
        for job_id in ids:
            own = dict(extra)
            if job_id in results:
                own["result"] = results[job_id]
            elif large is not None and job_id not in large:
                own["result"] = "null"
            events.append(cls(entry_id, name, job_id, own))
        return events


#: An entry's fields that describe its jobs rather than the event of each
_BATCH_FIELDS = ("event", "id", "ids", "results", "large")


def _large(raw: str | None) -> set[str] | None:
    """The ids a ``large`` field lists, or None without one (or unreadable: then no result
    is taken for null)."""
    if raw is None:
        return None
    try:
        ids = serializer.decode(raw)
    except ValueError:
        return None
    return {str(i) for i in ids} if isinstance(ids, list) else None


def _results(raw: str | None) -> dict[str, str]:
    if not raw:
        return {}
    try:
        results = serializer.decode(raw)
    except ValueError:
        return {}
    if not isinstance(results, dict):
        return {}
    return {str(k): orjson.dumps(v).decode() for k, v in results.items()}


def finished_outcome(job_id: str, state: str | None, result: str | None, error: str | None) -> Any:
    """The result of a finished job, ``JobFailed`` for a failed one, or ``_NO_VALUE``.

    Shared by ``Queue`` and ``SyncQueue`` waits, for the job hash and for stream events.
    """
    if state == "completed":
        return serializer.decode(result) if result else None
    if state == "failed":
        raise JobFailed(job_id, error or "unknown error")
    if state is None:
        raise JobNotFound(f"job {job_id} does not exist (removed, or cleaned by retention)", job_id)
    return _NO_VALUE


def is_pending(value: Any) -> bool:
    return value is _NO_VALUE
