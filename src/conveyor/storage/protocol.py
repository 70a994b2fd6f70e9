"""The contract between the Lua scripts and Python, defined once: return codes, the numbers
both sides compute with, and the shape of the worker scripts' replies.

The Lua side of every constant here is generated: ``lua_constants()`` is written into each
script where ``lua/includes/queue.lua`` says ``-- @protocol`` (by ``scripts.build_source``), so
a script says ``return CODE_LEASE_LOST``, never ``return -1``. Each reply a worker script
gives is parsed here and nowhere else.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, NamedTuple

__all__ = [
    "DATA_LOSS_TTL_SECONDS",
    "LEASE_SEPARATOR",
    "PRIORITY_BAND",
    "Code",
    "FetchReply",
    "FetchedJob",
    "Heartbeat",
    "Lease",
    "LeaseRenewal",
    "LivenessBeat",
    "Reclaim",
    "StalledRecovery",
    "lua_constants",
]


class Code(enum.IntEnum):
    """Every code a script returns, for one job or for the whole call (each value means one
    thing in every script)."""

    #: Done: added, removed, moved, written, the flag changed.
    OK = 1
    NOT_FOUND = 0
    #: The caller's lease token is not the job's (it expired and the job went to another
    #: worker, or the job was removed): nothing was written.
    LEASE_LOST = -1
    #: The job is running (cancel it, or wait until it ends).
    IS_ACTIVE = -2
    #: The job is not in the state the action needs.
    WRONG_STATE = -3
    #: add_job: a job with that id exists; nothing was added.
    EXISTS = -4
    #: pause: the queue already was paused (or running).
    UNCHANGED = -5
    #: fail: the attempt is recorded and the job will run again.
    RETRYING = 2
    #: fail: the job failed for good.
    FAILED = 3
    # -- job schedulers (storage/lua/*_schedule.lua) --
    #: fire_schedule: the tick was skipped, its schedule's previous job is not finished.
    SKIPPED = 4
    #: The schedule's definition changed since the caller read it: read and plan again.
    STALE = -6
    # -- dedup modes (storage/lua/add_deduped.lua) --
    #: add_deduped: the dedup key holds a job; that job was returned, nothing was added.
    DEDUPLICATED = -7
    #: Flow control, add_job: the add would take a group past its max size; nothing added.
    GROUP_FULL = -8


#: Width of one priority band in the wait set's scores: score = (PRIORITY_OFFSET - priority)
#: * PRIORITY_BAND + sequence, so higher priority comes first and FIFO holds within a band.
PRIORITY_BAND = 1 << 40
#: Keeps scores positive for every priority down to -PRIORITY_OFFSET.
PRIORITY_OFFSET = 1000
#: Where the wait list (new jobs of priority 0 without a group, see lua/includes/waiting.lua)
#: stands among the wait set's scores: the last score of priority 0's band. Its jobs run after
#: the band's jobs in the set (back from a retry, a delay, a stall) and before any negative
#: priority, and every reader of the waiting jobs splices the list in at this score.
WAIT_LIST_SCORE = (PRIORITY_OFFSET + 1) * PRIORITY_BAND - 1
#: How long the record of a data loss (see heartbeat.lua) is kept, in seconds.
DATA_LOSS_TTL_SECONDS = 86_400

_NUMBERS = {
    "PRIORITY_BAND": PRIORITY_BAND,
    "PRIORITY_OFFSET": PRIORITY_OFFSET,
    "WAIT_LIST_SCORE": WAIT_LIST_SCORE,
    "DATA_LOSS_TTL_SECONDS": DATA_LOSS_TTL_SECONDS,
}


def lua_constants() -> str:
    """The Lua lines that define every code (``CODE_<NAME>``) and number above, as locals
    (a local costs a script nothing per call; a table would be built on every call)."""
    names = [f"CODE_{code.name}" for code in Code] + list(_NUMBERS)
    values = [str(int(code)) for code in Code] + [str(v) for v in _NUMBERS.values()]
    return f"local {', '.join(names)} = {', '.join(values)}\n"


class FetchedJob(NamedTuple):
    """One job as fetch.lua hands it out (fields at their default are None: they are not
    stored). After id and token, the fields are the job hash's, which fetch.lua reads with
    one HMGET in this order."""

    id: str
    token: str
    name: str | None
    data: str | None
    opts: str | None
    attempts: str | None
    made: str | None
    stalls: str | None
    priority: str | None
    created: str | None
    progress: str | None


_JOB_WIDTH = len(FetchedJob._fields)
# tuple.__new__ straight: FetchedJob._make costs twice as much per job (a Python-level call).
_new_tuple = tuple.__new__


@dataclasses.dataclass(frozen=True, slots=True)
class FetchReply:
    """fetch.lua's reply: ``{header, job fields...}``. The header is a flat list of name, value
    pairs holding only the fields that are not at their default here, so a new field is one
    line in fetch.lua and one field below."""

    jobs: list[FetchedJob]
    #: 1 when the queue is paused (then no job was handed out).
    paused: int = 0
    #: Milliseconds until the earliest delayed job is due (flow control: or a group held back,
    #: or the jobs without a group held by a RateLimited, may run), when fewer jobs were handed
    #: out than asked for; None when there is none (or every slot was filled).
    next_due_ms: int | None = None
    #: 1 when this worker was taken for dead (reclaim_worker.lua): nothing was handed out.
    reclaimed: int = 0
    #: Flow control: milliseconds the queue's rate limit lets no job out.
    limited_ms: int | None = None

    @classmethod
    def parse(cls, reply: list[Any]) -> FetchReply:
        header, width = reply[0], _JOB_WIDTH
        jobs = [_new_tuple(FetchedJob, reply[i : i + width]) for i in range(1, len(reply), width)]
        if not header:
            return cls(jobs)
        return cls(jobs, **dict(zip(header[0::2], header[1::2], strict=True)))


#: Separates the parts of a job's entry in the leases hash (so a worker id cannot hold it).
LEASE_SEPARATOR = "|"


class Lease(NamedTuple):
    """A job's entry in the leases hash, ``"<token>|<started ms>|<worker id>"``: written by
    fetch.lua, read by includes/leases.lua and here."""

    token: str
    started: str
    worker: str

    @classmethod
    def parse(cls, value: str) -> Lease:
        token, started, worker = value.split(LEASE_SEPARATOR, 2)
        return cls(token, started, worker)


class LeaseRenewal(NamedTuple):
    """extend_leases.lua's reply."""

    #: Jobs whose lease this worker no longer holds.
    lost: list[str]
    #: Jobs someone asked to cancel (cancel.lua): the worker stops them.
    cancel: list[str]

    @classmethod
    def parse(cls, reply: list[Any]) -> LeaseRenewal:
        return cls(list(reply[0]), list(reply[1]))


class Heartbeat(NamedTuple):
    """heartbeat.lua's reply."""

    live_workers: int
    #: The queue's epoch: a new one under a running worker means Redis lost the queue's data.
    epoch: str

    @classmethod
    def parse(cls, reply: list[Any]) -> Heartbeat:
        return cls(int(reply[0]), str(reply[1]))


class StalledRecovery(NamedTuple):
    """recover_stalled.lua's reply."""

    #: Jobs whose lease had expired, handed back to waiting.
    recovered: int
    #: Jobs failed as stalled (past their stall limit), or cancelled.
    failed: int

    @classmethod
    def parse(cls, reply: list[Any]) -> StalledRecovery:
        return cls(int(reply[0]), int(reply[1]))


class LivenessBeat(NamedTuple):
    """keep_alive.lua's reply."""

    #: This worker's entry was gone: it was reclaimed while alive (or Redis lost data).
    revived: bool
    #: (worker id, ms since its last beat) of the workers whose beats are late.
    late: list[tuple[str, int]]
    #: ms since this worker's own previous beat; None on its first.
    gap_ms: int | None

    @classmethod
    def parse(cls, reply: list[Any]) -> LivenessBeat:
        late = reply[1]
        pairs = zip(late[0::2], late[1::2], strict=True)
        late_ms = [(str(worker), int(ms)) for worker, ms in pairs]
        return cls(bool(reply[0]), late_ms, None if reply[2] is None else int(reply[2]))


class Reclaim(NamedTuple):
    """reclaim_worker.lua's reply."""

    #: False when the worker beat again meanwhile, or another worker reclaimed it first.
    reclaimed: bool
    #: Its jobs handed back to waiting.
    recovered: int
    #: Its jobs failed as stalled (past their stall limit), or cancelled.
    failed: int

    @classmethod
    def parse(cls, reply: list[Any]) -> Reclaim:
        if reply[0] != Code.OK:
            return cls(False, 0, 0)
        return cls(True, int(reply[1]), int(reply[2]))
