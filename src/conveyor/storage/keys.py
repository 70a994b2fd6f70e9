"""Every Redis key name Conveyor uses, built in one place.

All keys of one queue share the Cluster hash tag ``{<queue>}``, so one queue lives in one slot
and every script of that queue runs on one node. The registry of queue names is the only key
outside a queue's slot; scripts never touch it. The dashboard's revoked sessions are keys of
their own too, one per session (revoke_session.lua touches that one key).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re

from ..errors import InvalidQueueName

__all__ = [
    "QUEUE_NAME_PATTERN",
    "QueueKeys",
    "registry_key",
    "revoked_session_key",
    "validate_queue_name",
]

#: A valid queue name, whole (the API document shows it too).
QUEUE_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}"
_QUEUE_NAME_RE = re.compile(QUEUE_NAME_PATTERN)


def validate_queue_name(name: object) -> str:
    """Return ``name`` if it is a valid queue name, else raise ``InvalidQueueName`` saying why."""
    if not isinstance(name, str):
        raise InvalidQueueName(f"queue name must be a string, not {type(name).__name__}")
    if _QUEUE_NAME_RE.fullmatch(name):
        return name
    if not name:
        reason = "it is empty"
    elif len(name) > 128:
        reason = f"it is {len(name)} characters long (at most 128)"
    elif not name[0].isascii() or not name[0].isalnum():
        reason = f"it starts with {name[0]!r} (must start with a letter or digit)"
    else:
        bad = next(c for c in name if not (c.isascii() and (c.isalnum() or c in "_.:-")))
        reason = f"it contains {bad!r}"
    raise InvalidQueueName(
        f"invalid queue name {name[:40]!r}: {reason}; use letters, digits, '_', '.', ':' and '-'"
    )


def registry_key(prefix: str) -> str:
    """Set of all queue names under a prefix (for discovery by the dashboard and CLI)."""
    return f"{prefix}:queues"


def revoked_session_key(prefix: str, session_id: str) -> str:
    """Marks a logged-out dashboard session until its cookie expires (revoke_session.lua). The
    id goes in as a digest, so that a key listing shows no part of a session."""
    digest = hashlib.sha256(session_id.encode()).hexdigest()
    return f"{prefix}:dashboard:revoked:{digest}"


@dataclasses.dataclass(frozen=True, slots=True)
class QueueKeys:
    prefix: str
    queue: str
    base: str = dataclasses.field(init=False)
    wait: str = dataclasses.field(init=False)
    active: str = dataclasses.field(init=False)
    delayed: str = dataclasses.field(init=False)
    completed: str = dataclasses.field(init=False)
    failed: str = dataclasses.field(init=False)
    meta: str = dataclasses.field(init=False)
    events: str = dataclasses.field(init=False)
    marker: str = dataclasses.field(init=False)
    seq: str = dataclasses.field(init=False)
    workers: str = dataclasses.field(init=False)
    leases: str = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        validate_queue_name(self.queue)
        base = f"{self.prefix}:{{{self.queue}}}:"
        set_ = object.__setattr__
        set_(self, "base", base)
        for name in ("wait", "active", "delayed", "completed", "failed", "meta", "events"):
            set_(self, name, base + name)
        for name in ("marker", "seq", "workers", "leases"):
            set_(self, name, base + name)

    @property
    def script_keys(self) -> tuple[str, ...]:
        """The KEYS every script receives, in the order includes/queue.lua expects."""
        return (
            self.base,
            self.wait,
            self.active,
            self.delayed,
            self.completed,
            self.failed,
            self.meta,
            self.events,
            self.marker,
            self.seq,
            self.workers,
            self.leases,
        )

    @property
    def wait_list(self) -> str:
        """New waiting jobs of priority 0 without a group, oldest first (list; with the wait
        set, the waiting jobs: see lua/includes/waiting.lua)."""
        return f"{self.base}wait_list"

    def job(self, job_id: str) -> str:
        return f"{self.base}job:{job_id}"

    def logs(self, job_id: str) -> str:
        return f"{self.base}logs:{job_id}"

    def errors(self, job_id: str) -> str:
        return f"{self.base}errors:{job_id}"

    def worker(self, worker_id: str) -> str:
        return f"{self.base}worker:{worker_id}"

    def metrics(self, hour: int) -> str:
        """Per-minute counters of one hour (hour = minutes since the epoch // 60)."""
        return f"{self.base}metrics:{hour}"

    @property
    def metrics_total(self) -> str:
        """Lifetime counters and duration histograms (hash; for Prometheus)."""
        return f"{self.base}metrics:total"

    @property
    def alive(self) -> str:
        """Worker id -> its last liveness beat, ms (zset; keep_alive.lua, reclaim_worker.lua)."""
        return f"{self.base}alive"

    def reclaimed(self, worker_id: str) -> str:
        """Set while a worker taken for dead has not beaten again (string with a TTL;
        reclaim_worker.lua writes it, fetch.lua leases that worker nothing meanwhile)."""
        return f"{self.base}reclaimed:{worker_id}"

    # -- job schedulers (lua/includes/schedules.lua) --

    @property
    def schedules(self) -> str:
        """Schedule id -> its next run, ms (zset; +inf while paused or ended)."""
        return f"{self.base}schedules"

    def schedule(self, schedule_id: str) -> str:
        """One schedule's definition and record (hash)."""
        return f"{self.base}schedule:{schedule_id}"

    def dedupe(self, key: str) -> str:
        """The job id a dedup key holds (string with a TTL; lua/add_deduped.lua)."""
        return f"{self.base}dedupe:{key}"

    # -- workflows (flows and batches) --

    @property
    def waiting_children(self) -> str:
        """Flow parents waiting for their children (zset, score = creation ms)."""
        return f"{self.base}waiting_children"

    @property
    def owed(self) -> str:
        """Work this queue owes other keys (hash; see ``conveyor.workflows``): "o:<job id>" an
        outcome to report to a parent or batch, "a:<job id>" a flow's adds still to make,
        "c:<batch id>" a batch's callbacks to add."""
        return f"{self.base}owed"

    def batch(self, batch_id: str) -> str:
        """A batch's counters, callbacks and pending job ids (hash)."""
        return f"{self.base}batch:{batch_id}"

    @property
    def data_lost(self) -> str:
        """The record of a data loss noticed on this queue (string with a TTL; heartbeat.lua)."""
        return f"{self.base}data_lost"

    # -- flow control (the scripts build the same names: see lua/includes/groups.lua) --------

    @property
    def flow(self) -> str:
        """Queue-wide flow control: its rate limit, a hold, the group defaults (hash)."""
        return f"{self.base}flow"

    @property
    def rate(self) -> str:
        """Start times in the queue's sliding rate window (zset)."""
        return f"{self.base}rate"

    @property
    def groups_index(self) -> str:
        """Every group with jobs, active jobs or settings, scored by waiting (zset)."""
        return f"{self.base}gindex"

    @property
    def groups_ready(self) -> str:
        return f"{self.base}gready"

    @property
    def groups_sleeping(self) -> str:
        return f"{self.base}gsleep"

    @property
    def groups_active(self) -> str:
        """Id of each active grouped job -> its group (hash)."""
        return f"{self.base}gactive"

    def group(self, group: str) -> str:
        """A group's counts and settings (hash)."""
        return f"{self.base}g:{group}"

    def group_wait(self, group: str) -> str:
        """A group's waiting jobs (zset, scored like the wait set)."""
        return f"{self.base}gw:{group}"

    def group_rate(self, group: str) -> str:
        return f"{self.base}gr:{group}"
