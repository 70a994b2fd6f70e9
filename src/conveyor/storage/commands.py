"""Redis commands for one queue, built and parsed without I/O.

Every operation is an ``Op``: the commands to send in one round trip (a pipeline when there
are several) and a function that turns their replies into a value, or into a follow-up ``Op``
when the first replies decide what to read next. ``storage.redis`` executes Ops, blocking or
async, so ``Queue`` and ``SyncQueue`` share every line of logic except the ``await``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

import orjson

from .. import serializer
from ..errors import NotReplicated
from ..job import Job, JobContext, JobState
from ..settings import Settings
from .keys import QueueKeys, registry_key
from .protocol import (
    PRIORITY_BAND,
    Code,
    FetchReply,
    Heartbeat,
    LeaseRenewal,
    StalledRecovery,
)
from .resp import evalsha_head
from .scripts import Script, ScriptSettings, script

__all__ = [
    "AddSpec",
    "Command",
    "Op",
    "QueueCommands",
    "ScriptCommand",
    "config_get",
    "info",
    "ping",
    "queue_names",
    "server_time_ms",
    "unblock_client",
    "wait_for_marker",
]

T = TypeVar("T")

# The names these codes had before ``protocol.Code``, which admin code imports from here.
LEASE_LOST = Code.LEASE_LOST
NOT_FOUND = Code.NOT_FOUND
IS_ACTIVE = Code.IS_ACTIVE
WRONG_STATE = Code.WRONG_STATE
#: (a plain int: compared once per job of a bulk add)
_ADDED = int(Code.OK)


# ScriptCommand and Op are built on every call: plain (not frozen) dataclasses, because a frozen
# one's __init__ costs about twice as much.
@dataclasses.dataclass(slots=True)
class ScriptCommand:
    script: Script
    keys: tuple[bytes, ...]
    args: tuple[Any, ...]
    #: The RESP encoding of "EVALSHA <sha> <numkeys> <keys...>": the same for every call of one
    #: script on one queue, so it is encoded once (see ``resp.pack_evalsha``).
    head: bytes

    def evalsha(self) -> tuple[Any, ...]:
        return ("EVALSHA", self.script.sha, len(self.keys), *self.keys, *self.args)

    def eval(self) -> tuple[Any, ...]:
        return ("EVAL", self.script.source, len(self.keys), *self.keys, *self.args)


Command = tuple[Any, ...] | ScriptCommand


@dataclasses.dataclass(slots=True)
class Op(Generic[T]):
    commands: tuple[Command, ...]
    parse: Callable[[list[Any]], T | Op[T]]


def _single(reply: list[Any]) -> Any:
    return reply[0]


class AddSpec(NamedTuple):
    """One job to add, already validated and encoded (a named tuple: a bulk add builds
    thousands, and a frozen dataclass costs four times as much to make)."""

    name: str
    data: str
    opts: str
    attempts: int
    priority: int
    delay_ms: int
    ttl_ms: int
    job_id: str = ""

    def args(self) -> tuple[Any, ...]:
        """The job as add_job reads it; the options are left out when all are defaults."""
        if (
            self.opts == "{}"
            and self.attempts == 1
            and not (self.priority or self.delay_ms or self.ttl_ms)
        ):
            return (self.job_id, self.name, self.data)
        return (
            self.job_id,
            self.name,
            self.data,
            self.opts,
            self.attempts,
            self.priority,
            self.delay_ms,
            self.ttl_ms,
        )


_STATE_SETS = {
    JobState.WAITING: "wait",
    JobState.DELAYED: "delayed",
    JobState.ACTIVE: "active",
    JobState.COMPLETED: "completed",
    JobState.FAILED: "failed",
}


class QueueCommands:
    """Builds the Ops of one queue. Pure: holds key names and settings, never a connection."""

    def __init__(self, settings: Settings, queue: str) -> None:
        self.settings = settings
        self.keys = QueueKeys(settings.prefix, queue)
        self.queue = queue
        s = settings
        self.script_settings: ScriptSettings = tuple(
            (lua_name, int(value))
            for lua_name, value in (
                ("EVENTS_MAX", s.events_max_length),
                ("KEEP_COMPLETED", s.keep_completed),
                ("KEEP_COMPLETED_MS", s.keep_completed_seconds * 1000),
                ("KEEP_FAILED", s.keep_failed),
                ("KEEP_FAILED_MS", s.keep_failed_seconds * 1000),
                ("MAX_LOG_LINES", s.max_log_lines),
                ("METRICS_TTL", s.metrics_retention_seconds),
                ("LEASE_MS", s.lease_ms),
                ("MAX_STALLS", s.max_stalls),
            )
        )
        self._scripts: dict[str, tuple[Script, bytes]] = {}
        # Pre-encoded, so sending a script call does not re-encode a dozen key names each time.
        self._keys = tuple(key.encode() for key in self.keys.script_keys)

    def script(self, name: str) -> Script:
        """The Lua script ``name`` as this queue's settings make it (its source and sha)."""
        return (self._scripts.get(name) or self._load(name))[0]

    def _load(self, name: str) -> tuple[Script, bytes]:
        loaded = script(name, self.script_settings)
        found = self._scripts[name] = (loaded, evalsha_head(loaded.sha, self._keys))
        return found

    def _script(self, name: str, *args: Any) -> ScriptCommand:
        found = self._scripts.get(name) or self._load(name)
        return ScriptCommand(found[0], self._keys, args, found[1])

    def _op(self, name: str, *args: Any, parse: Callable[[Any], T]) -> Op[T]:
        return Op((self._script(name, *args),), lambda replies: parse(replies[0]))

    # -- producer ------------------------------------------------------------------------------

    def _registration(self) -> Command:
        """Records the queue's name, so the dashboard and CLI discover it."""
        return ("SADD", registry_key(self.settings.prefix), self.queue)

    def register(self) -> Op[None]:
        return Op((self._registration(),), lambda _: None)

    def add(
        self, specs: Sequence[AddSpec], context: JobContext | None, *, register: bool = False
    ) -> Op[list[Job]]:
        """Add jobs in one script call; ``register`` also records the queue's name (for the
        dashboard and CLI) in the same round trip. A job whose id existed is read back as
        stored (a second round trip, only then)."""
        if len(specs) == 1:
            command = self._script("add_job", *specs[0].args())
        else:  # one JSON document for the whole batch: a single argument to pack and to send
            command = self._script("add_job", orjson.dumps([spec.args() for spec in specs]))
        commands: tuple[Command, ...] = (command,)
        if register:
            commands = (self._registration(), command)
        replicas = self.settings.wait_replicas
        timeout_ms = int(self.settings.wait_replicas_timeout_seconds * 1000)
        if replicas:
            commands += (("WAIT", replicas, timeout_ms),)

        def parse(replies: list[Any]) -> list[Job] | Op[list[Job]]:
            reply = replies[1 if register else 0]
            if replicas and int(replies[-1]) < replicas:
                ids = ", ".join(str(job_id) for job_id in reply[0:10:2])
                raise NotReplicated(
                    f"jobs {ids}{'...' if len(reply) > 10 else ''} were stored on the master but "
                    f"only {replies[-1]} of {replicas} replicas confirmed them within "
                    f"{timeout_ms} ms; a failover now could lose them"
                )
            jobs, existing = [], []
            for i, spec in enumerate(specs):
                job_id = str(reply[2 * i])
                if reply[2 * i + 1] != _ADDED:
                    existing.append(job_id)
                jobs.append(self._added_job(job_id, spec, context))
            if not existing:
                return jobs

            def merge(replies: list[Any]) -> list[Job]:
                found = {job.id: job for job in self._jobs(replies, existing, context)}
                return [found.get(job.id, job) for job in jobs]

            return Op(self.get_jobs(existing, context).commands, merge)

        return Op(commands, parse)

    def _added_job(self, job_id: str, spec: AddSpec, context: JobContext | None) -> Job:
        job = Job(
            id=job_id,
            name=spec.name,
            data=serializer.decode(spec.data),  # as a worker will see it
            queue=self.queue,
            state=JobState.DELAYED if spec.delay_ms else JobState.WAITING,
            attempts=spec.attempts,
            priority=spec.priority,
            _context=context,
        )
        if spec.opts != "{}":
            job.apply_options(serializer.decode(spec.opts))
        return job

    # -- worker --------------------------------------------------------------------------------

    def fetch(self, worker_id: str, count: int) -> Op[FetchReply]:
        return self._op("fetch", worker_id, count, parse=FetchReply.parse)

    def complete(self, items: Iterable[tuple[str, str, str, int]]) -> Op[list[str]]:
        """Acknowledge finished jobs: (id, lease token, result as JSON text, attempts made
        counting this one) each."""
        return self._op("complete", orjson.dumps(list(items)), parse=list)

    def fail(self, job_id: str, token: str, message: str, record: str, delay_ms: int) -> Op[int]:
        """``Code.RETRYING``, ``Code.FAILED`` or ``Code.LEASE_LOST``."""
        return self._op("fail", job_id, token, message, record, delay_ms, parse=int)

    def extend_leases(self, items: Iterable[tuple[str, str]]) -> Op[LeaseRenewal]:
        """Renew the leases of (id, lease token) pairs."""
        args = [part for item in items for part in item]
        return self._op("extend_leases", len(args) // 2, *args, parse=LeaseRenewal.parse)

    def release(self, items: Iterable[tuple[str, str]]) -> Op[int]:
        args = [part for item in items for part in item]
        return self._op("release", len(args) // 2, *args, parse=int)

    def recover_stalled(self, limit: int = 1000) -> Op[StalledRecovery]:
        return self._op("recover_stalled", limit, parse=StalledRecovery.parse)

    def update_progress(self, job_id: str, token: str, progress: str) -> Op[int]:
        """``Code.OK`` or ``Code.LEASE_LOST`` (as ``append_log``)."""
        return self._op("update_progress", job_id, token, progress, parse=int)

    def append_log(self, job_id: str, token: str, line: str) -> Op[int]:
        return self._op("append_log", job_id, token, line, parse=int)

    def heartbeat(
        self, worker_id: str, info: str, ttl_seconds: float, known_epoch: str = ""
    ) -> Op[Heartbeat]:
        """See heartbeat.lua. ``known_epoch``: the epoch this worker saw last; a different one
        is recorded as a data loss (``data_lost``)."""
        return self._op(
            "heartbeat", worker_id, info, ttl_seconds, known_epoch, parse=Heartbeat.parse
        )

    # -- admin ---------------------------------------------------------------------------------

    def cancel(self, job_id: str) -> Op[str | int]:
        """The state the job was in, or ``Code.NOT_FOUND`` / ``Code.WRONG_STATE``."""
        return self._op("cancel", job_id, parse=lambda r: r if isinstance(r, str) else int(r))

    def remove(self, ids: Sequence[str]) -> Op[list[int]]:
        return self._op("remove", len(ids), *ids, parse=lambda r: [int(x) for x in r])

    def retry(self, ids: Sequence[str]) -> Op[list[int]]:
        return self._op("retry", "ids", len(ids), *ids, parse=lambda r: [int(x) for x in r])

    def retry_all(self, limit: int) -> Op[tuple[int, int]]:
        return self._op("retry", "all", limit, parse=lambda r: (int(r[0]), int(r[1])))

    def promote(self, ids: Sequence[str]) -> Op[list[int]]:
        return self._op("promote", "ids", len(ids), *ids, parse=lambda r: [int(x) for x in r])

    def promote_all(self, limit: int) -> Op[tuple[int, int]]:
        return self._op("promote", "all", limit, parse=lambda r: (int(r[0]), int(r[1])))

    def pause(self, paused: bool) -> Op[bool]:
        """True if the flag changed."""
        return self._op("pause", "1" if paused else "0", parse=lambda r: r == Code.OK)

    def clean(self, state: JobState, age_ms: int, limit: int, cursor: int) -> Op[tuple[int, int]]:
        return self._op(
            "clean", state.value, age_ms, limit, cursor, parse=lambda r: (int(r[0]), int(r[1]))
        )

    def obliterate(self, force: bool, cursor: str) -> Op[tuple[str, int]]:
        return self._op(
            "obliterate", "1" if force else "0", cursor, parse=lambda r: (str(r[0]), int(r[1]))
        )

    def unregister(self) -> Op[None]:
        return Op((("SREM", registry_key(self.settings.prefix), self.queue),), lambda _: None)

    # -- reads ---------------------------------------------------------------------------------

    def counts(self) -> Op[dict[str, int]]:
        k = self.keys
        commands: tuple[Command, ...] = (
            ("ZCARD", k.wait),
            ("ZCARD", k.active),
            ("ZCARD", k.delayed),
            ("ZCARD", k.completed),
            ("ZCARD", k.failed),
            ("HGET", k.meta, "paused"),
        )

        def parse(r: list[Any]) -> dict[str, int]:
            names = ("waiting", "active", "delayed", "completed", "failed")
            counts = {name: int(value) for name, value in zip(names, r, strict=False)}
            counts["paused"] = int(r[5] == "1")
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
                _token, started, worker = str(lease).split("|", 2)
                fields = {**fields, "state": "active", "started": started, "worker": worker}
            jobs.append(Job.from_fields(job_id, self.queue, fields, context))
        return jobs

    def job_outcome(self, job_id: str) -> Op[list[Any]]:
        """state, result, error of a job (for ``wait``)."""
        return Op(
            (("HMGET", self.keys.job(job_id), "state", "result", "error"),),
            _single,
        )

    def job_logs(self, job_id: str, start: int = 0, stop: int = -1) -> Op[list[str]]:
        return Op((("LRANGE", self.keys.logs(job_id), start, stop),), _single)

    def job_errors(self, job_id: str) -> Op[list[str]]:
        return Op((("LRANGE", self.keys.errors(job_id), 0, -1),), _single)

    def job_ids(self, state: JobState, start: int, stop: int, newest_first: bool) -> Op[list[str]]:
        key = getattr(self.keys, _STATE_SETS[state])
        command = ("ZREVRANGE" if newest_first else "ZRANGE", key, start, stop)
        return Op((command,), _single)

    def last_event_id(self) -> Op[str]:
        def parse(r: list[Any]) -> str:
            return str(r[0][0][0]) if r[0] else "0-0"

        return Op((("XREVRANGE", self.keys.events, "+", "-", "COUNT", 1),), parse)

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

    def oldest_waiting_ms(self, max_bands: int = 32) -> Op[int | None]:
        """Age in ms of the job that has waited longest (by when it became runnable), or None.

        The wait set is ordered by priority band, then FIFO: the head of each band is that
        band's oldest job, so a few ZRANGEBYSCORE calls find it without a scan."""
        band = float(PRIORITY_BAND)
        heads: list[str] = []

        def lookup() -> Op[int | None]:
            reads = tuple(("HMGET", self.keys.job(i), "queued", "created") for i in heads)
            commands: tuple[Command, ...] = (("TIME",), *reads)

            def parse(r: list[Any]) -> int | None:
                now = int(r[0][0]) * 1000 + int(r[0][1]) // 1000
                starts = [int(q or c) for q, c in r[1:] if (q or c)]
                return max(now - min(starts), 0) if starts else None

            return Op(commands, parse)

        def step(r: list[Any]) -> int | Op[int | None] | None:
            reply = r[0]
            pairs = _flat_pairs(reply)
            if not pairs:
                return lookup() if heads else None
            job_id, score = str(pairs[0][0]), float(pairs[0][1])
            heads.append(job_id)
            if len(heads) >= max_bands:
                return lookup()
            start = (score // band + 1) * band
            return Op(
                (
                    (
                        "ZRANGEBYSCORE",
                        self.keys.wait,
                        int(start),
                        "+inf",
                        "WITHSCORES",
                        "LIMIT",
                        0,
                        1,
                    ),
                ),
                step,
            )

        return Op((("ZRANGE", self.keys.wait, 0, 0, "WITHSCORES"),), step)

    def workers(self) -> Op[list[tuple[str, int, str | None]]]:
        """Live workers of this queue: (id, last heartbeat ms, info JSON or None)."""

        def parse(r: list[Any]) -> list[tuple[str, int, str | None]] | Op[Any]:
            flat = _flat_pairs(r[0])
            ids = [str(member) for member, _ in flat]
            beats = [int(float(score)) for _, score in flat]
            if not ids:
                return []
            return Op(
                (("MGET", *[self.keys.worker(i) for i in ids]),),
                lambda m: list(zip(ids, beats, m[0], strict=True)),
            )

        return Op((("ZRANGE", self.keys.workers, 0, -1, "WITHSCORES"),), parse)

    def job_fields(self, ids: Sequence[str], fields: Sequence[str]) -> Op[list[list[str | None]]]:
        """Some fields of many jobs (HMGET each) in one round trip."""
        return Op(tuple(("HMGET", self.keys.job(i), *fields) for i in ids), list)

    def state_count(self, state: JobState) -> Op[int]:
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


def _flat_pairs(reply: Any) -> list[tuple[Any, Any]]:
    """(member, score) pairs of a WITHSCORES reply, flat (RESP2) or nested (RESP3)."""
    items = list(reply or [])
    if items and isinstance(items[0], list | tuple):
        return [(a, b) for a, b in items]
    return list(zip(items[0::2], items[1::2], strict=True))


def queue_names(prefix: str) -> Op[list[str]]:
    """Every registered queue name under ``prefix``, sorted."""
    return Op((("SMEMBERS", registry_key(prefix)),), lambda r: sorted(str(x) for x in r[0]))


def server_time_ms() -> Op[int]:
    """Redis server time in ms (the clock scripts use)."""
    return Op((("TIME",),), lambda r: int(r[0][0]) * 1000 + int(r[0][1]) // 1000)


def ping() -> Op[bool]:
    """PING: True when the server answers."""
    return Op((("PING",),), lambda r: bool(r[0]))


def config_get(parameter: str) -> Op[dict[str, Any]]:
    """CONFIG GET of one parameter: ``{parameter: value}`` (on a Cluster, one such mapping per
    node, keyed by node). Servers that disable CONFIG refuse it (``CommandRefused``)."""

    def parse(r: list[Any]) -> dict[str, Any]:
        reply = r[0]
        if isinstance(reply, dict):
            return dict(reply)
        items = list(reply or [])  # a flat [name, value, ...] reply
        return {str(k): v for k, v in zip(items[0::2], items[1::2], strict=True)}

    return Op((("CONFIG", "GET", parameter),), parse)


def info(section: str) -> Op[dict[str, Any]]:
    """INFO of one section, parsed (on a Cluster, one mapping per node, keyed by node)."""
    return Op((("INFO", section),), lambda r: dict(r[0] or {}))


def wait_for_marker(markers: Sequence[str], timeout: float) -> Op[bool]:
    """Block on the queues' marker keys (BZPOPMIN) for at most ``timeout`` seconds: True when a
    marker was popped (an add, a due delayed job, a resume), False when the time ran out."""
    return Op((("BZPOPMIN", *markers, timeout),), lambda r: r[0] is not None)


def unblock_client(client_id: int) -> Op[bool]:
    """CLIENT UNBLOCK: end another connection's blocking read as if it timed out; True when
    that connection was blocked."""
    return Op((("CLIENT", "UNBLOCK", client_id),), lambda r: r[0] == 1)
