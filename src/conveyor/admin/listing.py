"""Pages of jobs, search by name or text, and everything about one job."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from ..errors import ConfigurationError, JobNotFound
from ..job import Job, JobState
from ..limits import MAX_PAGE_SIZE
from ..procedures import parse_state
from ..storage.commands import QueueCommands
from .discovery import QueueDiscovery

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "SCAN_LIMIT",
    "SORT_ORDERS",
    "JobListing",
    "JobPage",
    "summarize_job",
]

#: How a listing can be ordered; the first is the default.
SORT_ORDERS = ("newest", "oldest")
#: Jobs per page of a listing that asks for no size.
DEFAULT_PAGE_SIZE = 20

#: A filtered job listing (name or text search) looks at most this many jobs of the state.
SCAN_LIMIT = 5000
#: Ids a filtered listing reads per round trip.
_SCAN_CHUNK = 500
#: Characters of a job's data shown in a listing.
_PREVIEW = 160


def _preview(value: Any) -> str:
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 1] + "…"


def summarize_job(job: Job) -> dict[str, Any]:
    """A short view of a job for listings."""
    error = (job.error or "").strip().splitlines()
    return {
        "id": job.id,
        "name": job.name,
        "state": job.state.value,
        "priority": job.priority,
        "attempts": job.attempts,
        "attempts_made": job.attempts_made,
        "progress": job.progress,
        "data_preview": _preview(job.data),
        "error": error[-1][:300] if error else None,
        "created_at": job.created_at,
        "run_at": job.run_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


@dataclasses.dataclass(slots=True)
class JobPage:
    jobs: list[dict[str, Any]]
    total: int
    page: int
    size: int
    #: True when a filter was applied and only the newest ``SCAN_LIMIT`` jobs were searched.
    truncated: bool = False
    scanned: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "jobs": self.jobs,
            "total": self.total,
            "page": self.page,
            "size": self.size,
            "pages": max(math.ceil(self.total / self.size), 1),
            "truncated": self.truncated,
            "scanned": self.scanned,
        }


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    """``text`` with ASCII letters lower-cased, others kept: the case folding search.lua
    applies (Lua's string.lower), so every search of the admin model folds alike."""
    return text.translate(_ASCII_LOWER)


def search_fields(needle: str | None) -> tuple[str, ...]:
    """The job hash fields ``job_matches`` reads: the name, and the data for a text search."""
    return ("name", "data") if needle else ("name",)


def job_matches(
    job_id: str, row: list[str | None], job_name: str | None, needle: str | None
) -> bool:
    """Whether a job (its ``search_fields``) has the name ``job_name`` (when given) and holds
    the lower-cased ``needle`` in its id, name or data (when given)."""
    found_name = row[0] or ""
    if job_name and found_name != job_name:
        return False
    if needle is None:
        return True
    data = row[1] if len(row) > 1 else None
    return needle in ascii_lower(f"{job_id}\n{found_name}\n{data or ''}")


class JobListing(QueueDiscovery):
    """Reads of the jobs of one queue."""

    async def list_jobs(
        self,
        name: str,
        state: JobState | str = JobState.WAITING,
        *,
        page: int = 1,
        size: int = DEFAULT_PAGE_SIZE,
        job_name: str | None = None,
        text: str | None = None,
        sort: str = "newest",
    ) -> JobPage:
        """A page of jobs in one state, newest first by default.

        ``job_name`` keeps jobs with exactly that name; ``text`` keeps jobs whose id, name or
        data (JSON text) contains it, case-insensitively. Filtered listings scan the newest
        ``SCAN_LIMIT`` jobs of the state, a chunk per round trip."""
        queue = await self.require(name)
        job_state = parse_state(state)
        if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
            raise ConfigurationError(f"page must be >= 1 and size between 1 and {MAX_PAGE_SIZE}")
        if sort not in SORT_ORDERS:
            raise ConfigurationError("sort must be 'newest' or 'oldest'")
        newest = sort == "newest"
        commands = queue.commands
        total = await self.redis.run(commands.state_count(job_state))
        start = (page - 1) * size
        if not job_name and not text:
            ids = await self.redis.run(commands.job_ids(job_state, start, start + size - 1, newest))
            jobs = await self.redis.run(commands.get_jobs(ids, None)) if ids else []
            return JobPage([summarize_job(j) for j in jobs], total, page, size)
        matches, scanned = await self._scan(commands, job_state, newest, job_name, text)
        ids = matches[start : start + size]
        jobs = await self.redis.run(commands.get_jobs(ids, None)) if ids else []
        return JobPage(
            [summarize_job(j) for j in jobs],
            len(matches),
            page,
            size,
            truncated=total > scanned,
            scanned=scanned,
        )

    async def _scan(
        self,
        commands: QueueCommands,
        state: JobState,
        newest: bool,
        job_name: str | None,
        text: str | None,
    ) -> tuple[list[str], int]:
        needle = ascii_lower(text) if text else None
        fields = search_fields(needle)
        matches: list[str] = []
        scanned = 0
        while scanned < SCAN_LIMIT:
            want = min(_SCAN_CHUNK, SCAN_LIMIT - scanned)
            ids = await self.redis.run(commands.job_ids(state, scanned, scanned + want - 1, newest))
            if not ids:
                break
            rows = await self.redis.run(commands.job_fields(ids, fields))
            matches += [
                job_id
                for job_id, row in zip(ids, rows, strict=True)
                if job_matches(job_id, row, job_name, needle)
            ]
            scanned += len(ids)
            if len(ids) < want:
                break
        return matches, scanned

    async def job_detail(self, name: str, job_id: str) -> dict[str, Any]:
        """Everything about one job: fields, options, attempts with tracebacks, logs, timeline."""
        queue = self.queue(name)
        job = await queue.get_job(job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id!r} in queue {name!r}", job_id)
        attempts = await queue.job_attempts(job_id)
        logs = await queue.job_logs(job_id, -500, -1)
        [[queued]] = await self.redis.run(queue.commands.job_fields([job_id], ("queued",)))
        detail = job.to_dict()
        queued_at = int(queued) if queued else job.created_at
        detail.update(
            attempts=attempts,
            logs=logs,
            queued_at=queued_at,
            wait_ms=(job.started_at - queued_at)
            if job.started_at and queued_at and job.started_at >= queued_at
            else None,
            run_ms=(job.finished_at - job.started_at)
            if job.finished_at and job.started_at and job.finished_at >= job.started_at
            else None,
            timeline=_timeline(job, attempts),
        )
        return detail


def _timeline(job: Job, attempts: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    if job.created_at:
        events.append({"event": "created", "at": job.created_at})
    for attempt in attempts:
        at = attempt.get("at")
        if isinstance(at, int):
            events.append(
                {
                    "event": "attempt failed",
                    "at": at,
                    "detail": f"attempt {attempt.get('attempt')}: {attempt.get('error')}",
                }
            )
    if job.run_at and job.state is JobState.DELAYED:
        events.append({"event": "scheduled", "at": job.run_at})
    if job.started_at:
        events.append({"event": "started", "at": job.started_at, "detail": job.worker})
    if job.finished_at:
        events.append({"event": job.state.value, "at": job.finished_at})
    events.sort(key=lambda e: e["at"])
    return events
