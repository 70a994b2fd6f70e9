"""The read/admin model behind the CLI, the JSON API and the dashboard (never used by workers).

``Admin`` discovers queues from Redis, reads counts, jobs, workers and metrics, and steers jobs
through ``Queue``'s methods. Every state change still happens in a Lua script; this module only
reads with plain commands (``Op``s from ``storage.commands``) and calls the Queue API.

Metrics come from what the scripts record at each transition (``includes/queue.lua``):
per-minute counters (``completed``, ``failed``, ``retried``) and per-minute histograms of wait
and run time in log-scale buckets of a factor sqrt(2). Percentiles are estimated from those
buckets (geometric interpolation inside the bucket), so they are accurate to a few percent.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson

from .errors import ConfigurationError, InvalidTransition, JobNotFound
from .job import Job, JobState
from .procedures import check_code, make_settings, parse_state
from .queue import Queue
from .settings import Settings
from .storage.commands import (
    IS_ACTIVE,
    NOT_FOUND,
    WRONG_STATE,
    Op,
    QueueCommands,
    ping,
    queue_names,
    server_time_ms,
)
from .storage.keys import validate_queue_name
from .storage.redis import AsyncRedis

__all__ = [
    "RANGES",
    "Admin",
    "JobPage",
    "bucket_bounds",
    "percentile",
    "summarize_job",
]

#: Chart ranges: name -> (minutes covered, minutes per point).
RANGES: dict[str, tuple[int, int]] = {
    "1h": (60, 1),
    "6h": (360, 5),
    "24h": (1440, 15),
    "7d": (7 * 1440, 60),
}
#: A filtered job listing (name or text search) looks at most this many jobs of the state.
SCAN_LIMIT = 5000
_SCAN_CHUNK = 500
_MAX_BUCKET = 60
_PREVIEW = 160
#: Counter names the scripts record per minute.
COUNTERS = ("completed", "failed", "retried")
DURATIONS = ("wait", "run")
BULK_ACTIONS = ("retry", "remove", "promote", "cancel")
#: Ids per script call in ``Admin.bulk``.
BULK_CHUNK = 500
#: The multi-id Op of each bulk action, and the state it expects a job to be in.
_MULTI_ID_OPS: dict[str, tuple[Callable[[QueueCommands, Sequence[str]], Op[list[int]]], str]] = {
    "retry": (QueueCommands.retry, "failed"),
    "remove": (QueueCommands.remove, "idle"),
    "promote": (QueueCommands.promote, "delayed"),
}
#: The health check looks at most this many queues for a recorded data loss.
HEALTH_QUEUE_LIMIT = 1000
#: A data loss noticed here is recorded for this long (as workers do, see heartbeat.lua).
DATA_LOSS_SECONDS = 86400


def bucket_bounds(bucket: int) -> tuple[float, float]:
    """The [low, high) range in ms of a duration bucket (see includes/queue.lua)."""
    if bucket <= 0:
        return 0.0, 1.0
    return 2.0 ** ((bucket - 1) / 2), 2.0 ** (bucket / 2)


def percentile(histogram: Mapping[int, int], q: float) -> float | None:
    """Estimate the ``q`` quantile (0..1) in ms from bucket counts; None when empty."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for bucket in sorted(histogram):
        count = histogram[bucket]
        if count <= 0:
            continue
        if seen + count >= rank:
            low, high = bucket_bounds(bucket)
            frac = min(max((rank - seen) / count, 0.0), 1.0)
            if low <= 0:
                return round(high * frac, 3)
            return round(low * float((high / low) ** frac), 3)
        seen += count
    return round(bucket_bounds(max(histogram))[1], 3)


def _percentiles(histogram: Mapping[int, int]) -> dict[str, Any]:
    return {
        "count": sum(histogram.values()),
        "p50": percentile(histogram, 0.50),
        "p95": percentile(histogram, 0.95),
        "p99": percentile(histogram, 0.99),
    }


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


@dataclasses.dataclass(slots=True)
class _Series:
    """Counters and duration histograms accumulated over minutes."""

    counters: dict[str, int] = dataclasses.field(default_factory=dict)
    hist: dict[str, dict[int, int]] = dataclasses.field(
        default_factory=lambda: {kind: {} for kind in DURATIONS}
    )

    def add(self, name: str, value: int) -> None:
        kind, _, bucket = name.partition(":")
        if bucket and kind in self.hist:
            try:
                b = int(bucket)
            except ValueError:
                return
            self.hist[kind][b] = self.hist[kind].get(b, 0) + value
        else:
            self.counters[name] = self.counters.get(name, 0) + value

    def merge(self, other: _Series) -> None:
        for name, value in other.counters.items():
            self.counters[name] = self.counters.get(name, 0) + value
        for kind, hist in other.hist.items():
            mine = self.hist[kind]
            for b, count in hist.items():
                mine[b] = mine.get(b, 0) + count


def _parse_hour(fields: Mapping[str, str], into: dict[int, _Series]) -> None:
    for field, raw in fields.items():
        minute_text, _, name = field.partition(":")
        try:
            minute, value = int(minute_text), int(raw)
        except ValueError:
            continue
        into.setdefault(minute, _Series()).add(name, value)


class Admin:
    """Read and steer every queue under one key prefix.

    ``Admin(url="redis://...", prefix="conveyor")``; ``await admin.close()`` when done.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        **overrides: Any,
    ) -> None:
        self.settings = make_settings(url, settings, overrides)
        self.redis = AsyncRedis(self.settings)
        self._queues: dict[str, Queue] = {}
        #: The epoch of each queue last seen by ``data_losses`` (see heartbeat.lua).
        self._epochs: dict[str, str] = {}

    async def close(self) -> None:
        for queue in self._queues.values():
            await queue.close()
        self._queues.clear()
        await self.redis.close()

    async def __aenter__(self) -> Admin:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- discovery -----------------------------------------------------------------------------

    def queue(self, name: str) -> Queue:
        """The Queue object for ``name`` (validated; not necessarily registered)."""
        validate_queue_name(name)
        queue = self._queues.get(name)
        if queue is None:
            if len(self._queues) > 1000:  # names come from requests: keep the cache bounded
                self._queues.clear()
            queue = self._queues[name] = Queue(name, settings=self.settings)
        return queue

    def _commands(self, name: str) -> QueueCommands:
        return self.queue(name).commands

    async def queue_names(self) -> list[str]:
        return await self.redis.run(queue_names(self.settings.prefix))

    async def exists(self, name: str) -> bool:
        return await self.redis.run(self._commands(name).is_registered())

    async def require(self, name: str) -> Queue:
        """The queue, or ``JobNotFound``-like ``LookupError`` when it is not registered."""
        if not await self.exists(name):
            raise QueueNotFound(f"no queue named {name!r} under prefix {self.settings.prefix!r}")
        return self.queue(name)

    async def ping(self) -> bool:
        return await self.redis.run(ping())

    async def data_losses(self) -> list[dict[str, Any]]:
        """Queues whose data Redis lost in the last day: restarted without persistence, flushed,
        failed over to an empty replica, or obliterated under running workers.

        A worker records the loss when the queue's epoch changes under it (heartbeat.lua); this
        Admin also remembers every epoch it has seen and records a change itself, so the health
        check says so even when no worker is running. Each entry: queue, noticed_at (ms),
        previous_epoch, epoch, noticed_by (a worker id, or "api")."""
        registered = await self.queue_names()
        names = sorted(set(registered) | set(self._epochs))[:HEALTH_QUEUE_LIMIT]
        if not names:
            return []
        queue_commands = [self._commands(name) for name in names]
        now, *states = await self.redis.run_many(
            [server_time_ms(), *(c.data_loss() for c in queue_commands)]
        )
        losses: list[dict[str, Any]] = []
        records: list[Op[None]] = []
        for name, commands, (epoch, lost) in zip(names, queue_commands, states, strict=True):
            known = self._epochs.get(name)
            if lost:
                losses.append({"queue": name, **orjson.loads(lost)})
            elif known and epoch != known:
                record = {
                    "noticed_at": now,
                    "previous_epoch": known,
                    "epoch": epoch,
                    "noticed_by": "api",
                }
                losses.append({"queue": name, **record})
                records.append(commands.record_data_loss(orjson.dumps(record), DATA_LOSS_SECONDS))
            # "" = seen without an epoch; the queue stays watched (its registry entry may be
            # gone with the data) but cannot raise a second alarm until an epoch is set again.
            self._epochs[name] = epoch or ""
        if records:
            await self.redis.run_many(records)
        return losses

    async def acknowledge_data_loss(self, name: str) -> bool:
        """Forget a recorded data loss of queue ``name`` (the health check turns green)."""
        return await self.redis.run(self._commands(name).clear_data_loss())

    # -- overview ------------------------------------------------------------------------------

    async def overview(self, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Every queue (or the named ones, registered or not) with counts, paused flag, live
        workers and oldest-waiting age (one round trip after the registry read)."""
        names = await self.queue_names() if names is None else list(names)
        ops: list[Any] = []
        for name in names:
            commands = self._commands(name)
            ops += [commands.counts(), commands.workers(), commands.oldest_waiting_ms()]
        values = await self.redis.run_many(ops) if ops else []
        out = []
        for i, name in enumerate(names):
            counts, workers, oldest = values[i * 3 : i * 3 + 3]
            paused = bool(counts.pop("paused", 0))
            live = [w for w in workers if w[2]]
            out.append(
                {
                    "name": name,
                    "counts": counts,
                    "paused": paused,
                    "workers": len(live),
                    "busy": sum(_worker_info(w)["busy"] for w in live),
                    "oldest_waiting_ms": oldest,
                }
            )
        return out

    async def queue_info(self, name: str) -> dict[str, Any]:
        """Counts, paused flag, workers and a metrics summary of the last hour."""
        queue = await self.require(name)
        counts, workers, oldest = await self.redis.run_many(
            [queue.commands.counts(), queue.commands.workers(), queue.commands.oldest_waiting_ms()]
        )
        paused = bool(counts.pop("paused", 0))
        metrics = await self.metrics([name], "1h")
        return {
            "name": name,
            "counts": counts,
            "paused": paused,
            "workers": [_worker_info(w) for w in workers if w[2]],
            "oldest_waiting_ms": oldest,
            "metrics": metrics["summary"],
        }

    # -- jobs ----------------------------------------------------------------------------------

    async def list_jobs(
        self,
        name: str,
        state: JobState | str = JobState.WAITING,
        *,
        page: int = 1,
        size: int = 20,
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
        if page < 1 or not 1 <= size <= 200:
            raise ConfigurationError("page must be >= 1 and size between 1 and 200")
        if sort not in ("newest", "oldest"):
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
        needle = text.lower() if text else None
        fields = ("name", "data") if needle else ("name",)
        matches: list[str] = []
        scanned = 0
        while scanned < SCAN_LIMIT:
            want = min(_SCAN_CHUNK, SCAN_LIMIT - scanned)
            ids = await self.redis.run(commands.job_ids(state, scanned, scanned + want - 1, newest))
            if not ids:
                break
            rows = await self.redis.run(commands.job_fields(ids, fields))
            for job_id, row in zip(ids, rows, strict=True):
                found_name = row[0] or ""
                if job_name and found_name != job_name:
                    continue
                if needle is not None:
                    haystack = f"{job_id}\n{found_name}\n{row[1] or ''}".lower()
                    if needle not in haystack:
                        continue
                matches.append(job_id)
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

    # -- actions -------------------------------------------------------------------------------

    async def add(self, name: str, job_name: str, data: Any, options: Mapping[str, Any]) -> Job:
        jobs = await self.queue(name).add_bulk([{"name": job_name, "data": data, **options}])
        return jobs[0]

    async def cancel(self, name: str, job_id: str) -> str:
        """Cancel a job (see ``Queue.cancel``); returns the state it had."""
        return (await self.queue(name).cancel(job_id)).value

    async def act(self, name: str, action: str, job_id: str) -> None:
        queue = self.queue(name)
        if action == "retry":
            await queue.retry(job_id)
        elif action == "promote":
            await queue.promote(job_id)
        elif action == "remove":
            await queue.remove(job_id)
        elif action == "cancel":
            await self.cancel(name, job_id)
        else:
            raise ConfigurationError(f"unknown action {action!r}; use one of {BULK_ACTIONS}")

    async def bulk(self, name: str, action: str, ids: Sequence[str]) -> dict[str, Any]:
        """Apply ``action`` to each id; per-id outcome (``ok`` or the error code/message).

        retry, remove and promote go out ``BULK_CHUNK`` ids per script call (one round trip
        per chunk); cancel goes per id (``Queue.cancel``). A repeated id is acted on once."""
        if action not in BULK_ACTIONS:
            raise ConfigurationError(f"unknown action {action!r}; use one of {BULK_ACTIONS}")
        unique = list(dict.fromkeys(ids))
        results: dict[str, Any] = {}
        if action == "cancel":
            for job_id in unique:
                try:
                    await self.cancel(name, job_id)
                except (JobNotFound, InvalidTransition) as exc:
                    results[job_id] = _failure(exc)
                else:
                    results[job_id] = {"ok": True}
        else:
            commands = self._commands(name)
            build, expected = _MULTI_ID_OPS[action]
            for start in range(0, len(unique), BULK_CHUNK):
                chunk = unique[start : start + BULK_CHUNK]
                codes = await self.redis.run(build(commands, chunk))
                for job_id, code in zip(chunk, codes, strict=True):
                    results[job_id] = _bulk_result(code, job_id, action, expected)
        done = sum(1 for result in results.values() if result["ok"])
        return {"action": action, "done": done, "results": results}

    async def retry_all(self, name: str, state: str = "failed") -> int:
        queue = await self.require(name)
        if state == "failed":
            return await queue.retry_all()
        if state == "delayed":
            return await queue.promote_all()
        raise InvalidTransition(f"retry-all works on failed (or delayed) jobs, not {state!r}")

    async def clean(self, name: str, state: str, older_than: float = 0.0) -> int:
        queue = await self.require(name)
        return await queue.clean(state, older_than)

    # -- workers -------------------------------------------------------------------------------

    async def workers(self) -> list[dict[str, Any]]:
        """Every live worker (deduplicated across queues), with its last heartbeat."""
        names = await self.queue_names()
        replies = await self.redis.run_many([self._commands(n).workers() for n in names])
        seen: dict[str, dict[str, Any]] = {}
        for entries in replies:
            for entry in entries:
                if not entry[2]:
                    continue
                info = _worker_info(entry)
                known = seen.get(info["id"])
                if known is None or info["last_heartbeat"] > known["last_heartbeat"]:
                    seen[info["id"]] = info
        return sorted(seen.values(), key=lambda w: (w["host"], w["pid"], w["id"]))

    # -- metrics -------------------------------------------------------------------------------

    async def metrics(self, names: Sequence[str] | None, range_name: str = "1h") -> dict[str, Any]:
        """Time series and percentiles for a chart range, summed over ``names`` (None: all)."""
        if range_name not in RANGES:
            raise ConfigurationError(f"range must be one of {', '.join(RANGES)}")
        span, step = RANGES[range_name]
        if names is None:
            names = await self.queue_names()
        now = await self.redis.run(server_time_ms())
        last_minute = now // 60000
        first_minute = last_minute - span + 1
        # Align points to the step so a chart does not shift its buckets at every poll.
        first_point = first_minute - first_minute % step
        hours = list(range(first_point // 60, last_minute // 60 + 1))
        ops = [self._commands(n).metrics_hours(hours) for n in names]
        minutes: dict[int, _Series] = {}
        for per_queue in await self.redis.run_many(ops) if ops else []:
            for fields in per_queue:
                _parse_hour(fields, minutes)
        points = list(range(first_point, last_minute + 1, step))
        series: dict[str, list[Any]] = {name: [] for name in COUNTERS}
        for kind in DURATIONS:
            for label in ("p50", "p95", "p99"):
                series[f"{kind}_{label}"] = []
        total = _Series()
        for point in points:
            bucket = _Series()
            for minute in range(max(point, first_minute), min(point + step, last_minute + 1)):
                if minute in minutes:
                    bucket.merge(minutes[minute])
            total.merge(bucket)
            for name in COUNTERS:
                series[name].append(bucket.counters.get(name, 0))
            for kind in DURATIONS:
                for label, quantile in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
                    series[f"{kind}_{label}"].append(percentile(bucket.hist[kind], quantile))
        summary: dict[str, Any] = {name: total.counters.get(name, 0) for name in COUNTERS}
        for kind in DURATIONS:
            summary[kind] = _percentiles(total.hist[kind])
        summary["per_minute"] = round(summary["completed"] / span, 3)
        return {
            "range": range_name,
            "step_seconds": step * 60,
            "now": now,
            "timestamps": [p * 60 for p in points],
            "series": series,
            "summary": summary,
        }

    async def throughput(
        self, names: Sequence[str] | None = None, minutes: int = 5
    ) -> dict[str, dict[str, int]]:
        """Per queue (default: all): jobs completed, failed and retried in the last ``minutes``
        minutes, the current one included, from the per-minute counters."""
        if not 1 <= minutes <= 24 * 60:
            raise ConfigurationError("minutes must be between 1 and 1440")
        names = await self.queue_names() if names is None else list(names)
        if not names:
            return {}
        last_minute = await self.redis.run(server_time_ms()) // 60000
        wanted = range(last_minute - minutes + 1, last_minute + 1)
        hours = sorted({minute // 60 for minute in wanted})
        replies = await self.redis.run_many([self._commands(n).metrics_hours(hours) for n in names])
        out: dict[str, dict[str, int]] = {}
        for name, per_hour in zip(names, replies, strict=True):
            by_minute: dict[int, _Series] = {}
            for fields in per_hour:
                _parse_hour(fields, by_minute)
            total = _Series()
            for minute in wanted:
                if minute in by_minute:
                    total.merge(by_minute[minute])
            out[name] = {counter: total.counters.get(counter, 0) for counter in COUNTERS}
        return out

    async def prometheus_snapshot(self) -> list[dict[str, Any]]:
        """Per queue: counts, paused, workers, oldest age, lifetime totals and histograms."""
        names = await self.queue_names()
        ops: list[Any] = []
        for name in names:
            commands = self._commands(name)
            ops += [
                commands.counts(),
                commands.workers(),
                commands.oldest_waiting_ms(),
                commands.metrics_totals(),
            ]
        values = await self.redis.run_many(ops) if ops else []
        out = []
        for i, name in enumerate(names):
            counts, workers, oldest, totals = values[i * 4 : i * 4 + 4]
            series = _Series()
            sums: dict[str, int] = {}
            for field, raw in totals.items():
                try:
                    value = int(raw)
                except ValueError:
                    continue
                if field.endswith("_ms") and field[:-3] in DURATIONS:
                    sums[field[:-3]] = value
                else:
                    series.add(field, value)
            out.append(
                {
                    "name": name,
                    "counts": counts,
                    "workers": sum(1 for w in workers if w[2]),
                    "oldest_waiting_ms": oldest,
                    "counters": series.counters,
                    "histograms": series.hist,
                    "sums_ms": sums,
                }
            )
        return out


def _failure(exc: JobNotFound | InvalidTransition) -> dict[str, Any]:
    code = "job_not_found" if isinstance(exc, JobNotFound) else "wrong_state"
    return {"ok": False, "code": code, "message": str(exc)}


def _bulk_result(code: int, job_id: str, action: str, expected: str) -> dict[str, Any]:
    """A multi-id script's per-id code (1 ok, 0 not found, -2 active, -3 wrong state)."""
    if code == 1:
        return {"ok": True}
    if code not in (NOT_FOUND, IS_ACTIVE, WRONG_STATE):
        return {"ok": False, "code": "error", "message": f"unexpected reply {code} for {job_id}"}
    try:
        check_code(code, job_id, action, expected)
    except (JobNotFound, InvalidTransition) as exc:
        return _failure(exc)
    raise AssertionError(f"check_code accepted code {code}")


class QueueNotFound(LookupError):
    """The queue name is valid but no queue of that name is registered."""


def _worker_info(entry: tuple[str, int, str | None]) -> dict[str, Any]:
    worker_id, beat, raw = entry
    try:
        info = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        info = {}
    if not isinstance(info, dict):
        info = {}
    return {
        "id": str(info.get("id") or worker_id),
        "host": str(info.get("host") or ""),
        "pid": int(info.get("pid") or 0),
        "queues": [str(q) for q in info.get("queues") or []],
        "concurrency": int(info.get("concurrency") or 0),
        "busy": int(info.get("busy") or 0),
        "processed": int(info.get("processed") or 0),
        "failed": int(info.get("failed") or 0),
        "started_at": info.get("started_at"),
        "version": info.get("version"),
        "last_heartbeat": beat,
    }


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
