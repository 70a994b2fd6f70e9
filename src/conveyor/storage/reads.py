"""The reads of one queue: counts, jobs, logs, events, metrics, workers (``QueueCommands``
has them all; they live here apart from the state changes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..job import Job, JobContext, JobState
from ..settings import Settings
from .keys import QueueKeys, registry_key
from .ops import Command, Op, ScriptCommand, first_reply, flat_pairs
from .protocol import Lease

__all__ = ["QueueReads"]

T = TypeVar("T")

#: How far the "oldest waiting" read looks: the heads of this many priority bands of the wait
#: set, and the first jobs of this many groups (those with the most waiting). Both bound the
#: read's cost in Redis time on any queue.
OLDEST_BANDS = 32
OLDEST_GROUPS = 100

_STATE_SETS = {
    JobState.WAITING: "wait",
    JobState.DELAYED: "delayed",
    JobState.ACTIVE: "active",
    JobState.COMPLETED: "completed",
    JobState.FAILED: "failed",
    JobState.WAITING_CHILDREN: "waiting_children",  # workflows
}


def _grouped(value: Any) -> int:
    """The flow hash's "waiting" (flow control: jobs with a group wait in their group's set,
    not in the wait set) as a count."""
    return max(int(value or 0), 0)


def _waiting_count(keys: QueueKeys) -> tuple[Command, ...]:
    """The commands whose replies, summed (the last through ``_grouped``), count the waiting
    jobs: the wait set, the wait list (see lua/includes/waiting.lua) and the groups'."""
    return (("ZCARD", keys.wait), ("LLEN", keys.wait_list), ("HGET", keys.flow, "waiting"))


def _count_of(replies: Sequence[Any]) -> int:
    return int(replies[0]) + int(replies[1]) + _grouped(replies[2])


class QueueReads:
    """The read Ops of one queue (a part of ``QueueCommands``)."""

    settings: Settings
    keys: QueueKeys
    queue: str
    _script: Callable[..., ScriptCommand]  # QueueCommands': a call of one of the queue's scripts

    def _op(self, name: str, *args: Any, parse: Callable[[Any], T]) -> Op[T]:
        """One call of script ``name``, its reply given to ``parse``."""
        return Op((self._script(name, *args),), lambda replies: parse(replies[0]))

    def counts(self) -> Op[dict[str, int]]:
        others = [state for state in JobState if state is not JobState.WAITING]
        commands: tuple[Command, ...] = (
            *_waiting_count(self.keys),
            *(("ZCARD", getattr(self.keys, _STATE_SETS[state])) for state in others),
            ("HGET", self.keys.meta, "paused"),
        )

        def parse(r: list[Any]) -> dict[str, int]:
            counts = {state.value: 0 for state in JobState}
            counts[JobState.WAITING.value] = _count_of(r[:3])
            listed = zip(others, r[3:-1], strict=True)
            counts.update((state.value, int(value)) for state, value in listed)
            counts["paused"] = int(r[-1] == "1")
            return counts

        return Op(commands, parse)

    def is_paused(self) -> Op[bool]:
        return Op((("HGET", self.keys.meta, "paused"),), lambda r: r[0] == "1")

    def get_job(self, job_id: str, context: JobContext | None) -> Op[Job | None]:
        def parse(r: list[Any]) -> Job | None:
            jobs = self._jobs(r, [job_id], context)
            return jobs[0] if jobs else None

        return Op(self.get_jobs([job_id], context).commands, parse)

    def get_jobs(self, ids: Sequence[str], context: JobContext | None) -> Op[list[Job]]:
        """The jobs that exist among ``ids`` (one round trip: their hashes and leases)."""
        if not ids:
            return Op((), lambda _: [])
        commands: tuple[Command, ...] = (
            ("HMGET", self.keys.leases, *ids),
            *(("HGETALL", self.keys.job(i)) for i in ids),
        )
        return Op(commands, lambda r: self._jobs(r, ids, context))

    def _jobs(
        self, replies: list[Any], ids: Sequence[str], context: JobContext | None
    ) -> list[Job]:
        # A leased job's hash still holds the state it had before; its lease says "active".
        jobs = []
        for job_id, lease, fields in zip(ids, replies[0], replies[1:], strict=True):
            if not fields:
                continue
            if lease:
                held = Lease.parse(str(lease))
                fields = {
                    **fields,
                    "state": "active",
                    "started": held.started,
                    "worker": held.worker,
                }
            jobs.append(Job.from_fields(job_id, self.queue, fields, context))
        return jobs

    def job_result(self, job_id: str) -> Op[list[Any]]:
        """state, result, error of a job (for ``wait``)."""
        return Op(
            (("HMGET", self.keys.job(job_id), "state", "result", "error"),),
            first_reply,
        )

    def job_logs(self, job_id: str, start: int = 0, stop: int = -1) -> Op[list[str]]:
        return Op((("LRANGE", self.keys.logs(job_id), start, stop),), first_reply)

    def job_errors(self, job_id: str) -> Op[list[str]]:
        return Op((("LRANGE", self.keys.errors(job_id), 0, -1),), first_reply)

    def job_ids(self, state: JobState, start: int, stop: int, newest_first: bool) -> Op[list[str]]:
        """The ids ranked ``start``..``stop`` of a state's listing; the waiting one holds the
        jobs waiting in groups too (list_waiting.lua)."""
        if state is JobState.WAITING:
            return self._op("list_waiting", start, stop, "1" if newest_first else "0", parse=list)
        key = getattr(self.keys, _STATE_SETS[state])
        command = ("ZREVRANGE" if newest_first else "ZRANGE", key, start, stop)
        return Op((command,), first_reply)

    def last_event_id(self) -> Op[str]:
        def parse(r: list[Any]) -> str:
            return str(r[0][0][0]) if r[0] else "0-0"

        return Op((("XREVRANGE", self.keys.events, "+", "-", "COUNT", 1),), parse)

    def recent_events(self, count: int) -> Op[list[Any]]:
        """The newest ``count`` entries, newest first."""
        return Op((("XREVRANGE", self.keys.events, "+", "-", "COUNT", count),), first_reply)

    def read_events(self, after: str, count: int, block_ms: int | None) -> Op[list[Any]]:
        command: tuple[Any, ...] = ("XREAD", "COUNT", count)
        if block_ms is not None:
            command += ("BLOCK", block_ms)
        command += ("STREAMS", self.keys.events, after)

        def parse(r: list[Any]) -> list[Any]:
            return list(r[0][0][1]) if r[0] else []

        return Op((command,), parse)

    # -- reads for the admin model (dashboard, API, CLI) ---------------------------------------

    def metrics_hours(self, hours: Sequence[int]) -> Op[list[dict[str, str]]]:
        """The per-minute metric hashes of the given hours (minutes since the epoch // 60)."""
        return Op(
            tuple(("HGETALL", self.keys.metrics(h)) for h in hours),
            lambda r: [dict(x) if x else {} for x in r],
        )

    def metrics_totals(self) -> Op[dict[str, str]]:
        """Lifetime counters and duration histograms (for Prometheus)."""
        return Op((("HGETALL", self.keys.metrics_total),), lambda r: dict(r[0] or {}))

    def oldest_waiting_ms(
        self, max_bands: int = OLDEST_BANDS, max_groups: int = OLDEST_GROUPS
    ) -> Op[int | None]:
        """Age in ms of the job that has waited longest (by when it became runnable), or None:
        the head of each priority band of the wait set and the first job of each group (up to
        ``max_groups`` groups, those with the most waiting; oldest_waiting.lua)."""

        def parse(r: list[Any]) -> int | None:
            return max(int(r[0]) - int(r[1]), 0) if r else None

        return self._op("oldest_waiting", max_bands, max_groups, parse=parse)

    def workers(self) -> Op[list[tuple[str, int, str | None]]]:
        """Live workers of this queue: (id, last heartbeat ms, info JSON or None)."""

        def parse(r: list[Any]) -> list[tuple[str, int, str | None]] | Op[Any]:
            flat = flat_pairs(r[0])
            ids = [str(member) for member, _ in flat]
            beats = [int(float(score)) for _, score in flat]
            if not ids:
                return []
            return Op(
                (("MGET", *[self.keys.worker(i) for i in ids]),),
                lambda m: list(zip(ids, beats, m[0], strict=True)),
            )

        return Op((("ZRANGE", self.keys.workers, 0, -1, "WITHSCORES"),), parse)

    def running(self) -> Op[list[dict[str, Any]]]:
        """The jobs leased now, each ``{"queue", "id", "name", "worker", "since"}`` (``since``:
        the lease's start, ms), oldest first: the leases hash, then the jobs' names. The hash
        holds one entry per job running, so its size is bounded by the workers' slots."""

        def parse(r: list[Any]) -> list[dict[str, Any]] | Op[list[dict[str, Any]]]:
            leases = []
            for job_id, value in dict(r[0] or {}).items():
                try:
                    lease = Lease.parse(str(value))
                    leases.append((str(job_id), lease.worker, int(lease.started)))
                except ValueError:  # a malformed entry is skipped here, not fatal to a view
                    continue
            if not leases:
                return []
            leases.sort(key=lambda entry: entry[2])

            def named(names: list[Any]) -> list[dict[str, Any]]:
                return [
                    {"queue": self.queue, "id": i, "name": n, "worker": w, "since": since}
                    for (i, w, since), (n,) in zip(leases, names, strict=True)
                ]

            return Op(tuple(("HMGET", self.keys.job(i), "name") for i, _, _ in leases), named)

        return Op((("HGETALL", self.keys.leases),), parse)

    def job_fields(self, ids: Sequence[str], fields: Sequence[str]) -> Op[list[list[str | None]]]:
        """Some fields of many jobs (HMGET each) in one round trip."""
        return Op(tuple(("HMGET", self.keys.job(i), *fields) for i in ids), list)

    def state_count(self, state: JobState) -> Op[int]:
        """The length of ``job_ids``' listing (as ``counts`` gives it)."""
        if state is JobState.WAITING:
            return Op(_waiting_count(self.keys), _count_of)
        return Op((("ZCARD", getattr(self.keys, _STATE_SETS[state])),), lambda r: int(r[0]))

    def data_loss(self) -> Op[tuple[str | None, str | None]]:
        """(the queue's epoch, the JSON record of a data loss noticed in the last day or None);
        see heartbeat.lua."""
        return Op(
            (("HGET", self.keys.meta, "epoch"), ("GET", self.keys.data_lost)),
            lambda r: (r[0], r[1]),
        )

    def record_data_loss(self, record: str | bytes, ttl_seconds: int) -> Op[None]:
        """Record a data loss noticed outside a worker (as heartbeat.lua does), for a while."""
        return Op((("SET", self.keys.data_lost, record, "EX", ttl_seconds),), lambda _: None)

    def clear_data_loss(self) -> Op[bool]:
        """Forget the recorded data loss; True if there was one."""
        return Op((("DEL", self.keys.data_lost),), lambda r: bool(r[0]))

    def is_registered(self) -> Op[bool]:
        return Op(
            (("SISMEMBER", registry_key(self.settings.prefix), self.queue),),
            lambda r: bool(r[0]),
        )
