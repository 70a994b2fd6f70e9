"""``QueueCommands``: the Ops (see ``ops``) of one queue, the one facade producers, workers
and the admin model build their Redis calls with. The state changes are here, as script
calls; the reads are in ``reads``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import orjson

from .. import serializer
from ..errors import NotReplicated
from ..job import Job, JobContext, JobState
from ..settings import Settings
from .dedupe_commands import dedupe_add
from .flow import group_full
from .keys import QueueKeys, registry_key
from .ops import (
    Command,
    Op,
    ScriptCommand,
    client_names,
    config_get,
    info,
    ping,
    queue_names,
    server_time_ms,
    unblock_client,
    wait_for_marker,
)
from .protocol import (
    Code,
    FetchReply,
    Heartbeat,
    LeaseRenewal,
    LivenessBeat,
    Reclaim,
    StalledRecovery,
)
from .reads import QueueReads
from .resp import evalsha_head, pack_evalsha
from .scripts import Script, ScriptSettings, script

__all__ = [
    "AddSpec",
    "Command",
    "Op",
    "QueueCommands",
    "ScriptCommand",
    "SearchCursor",
    "SearchSlice",
    "client_names",
    "config_get",
    "info",
    "ping",
    "queue_names",
    "server_time_ms",
    "unblock_client",
    "wait_for_marker",
]


# The names these codes had before ``protocol.Code``, which admin code imports from here.
LEASE_LOST = Code.LEASE_LOST
NOT_FOUND = Code.NOT_FOUND
IS_ACTIVE = Code.IS_ACTIVE
WRONG_STATE = Code.WRONG_STATE
#: (plain ints: compared once per job of a bulk add, and against a job id on every add)
_ADDED = int(Code.OK)
_GROUP_FULL = int(Code.GROUP_FULL)


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
    #: Dedup modes: ``(mode, key, window ms, key ttl ms)`` (see ``conveyor.dedupe``), or None.
    dedupe: tuple[str, str, int, int] | None = None
    #: Flow control: the job's group ("" for none).
    group: str = ""

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
            *((self.group,) if self.group else ()),
        )


class SearchCursor(NamedTuple):
    """Where a search stands: a score in a sorted set and how many members at that score were
    read; for waiting past the wait set (flow control), the group and its place in the walk
    over the groups, a waiting count and a skip (search.lua)."""

    score: str
    skip: int
    group: str = ""
    group_count: int = 0
    group_skip: int = 0


class SearchSlice(NamedTuple):
    """search.lua's reply: members read, whether the end was reached, the cursor after the
    last one read, and the matching ids in order."""

    read: int
    end: bool
    cursor: SearchCursor
    ids: list[str]


class QueueCommands(QueueReads):
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
                ("ALIVE_TTL_MS", s.liveness_ms),
                ("ALIVE_GRACE_MS", s.liveness_grace_ms),
                ("ALIVE_BEAT_MS", int(s.liveness_beat_seconds * 1000)),
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
        if len(specs) == 1:  # most adds: no generator to build for the dedupe check below
            if specs[0].dedupe:
                return dedupe_add(self, specs, context, register)
        elif any(spec.dedupe for spec in specs):  # dedup modes: storage/dedupe_commands.py
            return dedupe_add(self, specs, context, register)
        command = self.add_job_call(specs)
        commands: tuple[Command, ...] = (command,)
        if register:
            commands = (self._registration(), command)
        replicas = self.settings.wait_replicas
        if replicas:
            timeout_ms = int(self.settings.wait_replicas_timeout_seconds * 1000)
            commands += (("WAIT", replicas, timeout_ms),)

        def parse(replies: list[Any]) -> list[Job] | Op[list[Job]]:
            reply = replies[1 if register else 0]
            if reply and reply[0] == _GROUP_FULL:  # flow control: nothing was added
                raise group_full(str(reply[1]), int(reply[2]))
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

    def add_job_call(self, specs: Sequence[AddSpec]) -> ScriptCommand:
        """The add_job.lua call that adds ``specs`` (none deduplicated)."""
        if len(specs) == 1:
            return self._script("add_job", *specs[0].args())
        # Many: one JSON document for all of them, a single argument to pack and to send.
        args = orjson.dumps([spec.args() for spec in specs])
        if any(spec.group for spec in specs):  # flow control: add_job checks max sizes
            return self._script("add_job", args, "groups")
        return self._script("add_job", args)

    def single_add(self, spec: AddSpec) -> bytes:
        """``add``'s script call for one job, packed for the direct connection: a lone add (the
        commonest call) goes out without an Op, and ``added`` reads its reply."""
        found = self._scripts.get("add_job") or self._load("add_job")
        return pack_evalsha(found[1], len(self._keys), spec.args())

    def added(self, reply: Any, spec: AddSpec, context: JobContext | None) -> Job | None:
        """The job a ``single_add`` reply says was added, or None when the reply takes ``add``'s
        parse: an error, an id that existed, a full group."""
        if type(reply) is list and len(reply) == 2 and reply[1] == _ADDED:
            return self._added_job(str(reply[0]), spec, context)
        return None

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

    def complete(self, items: Iterable[tuple[Any, ...]]) -> Op[list[str]]:
        """Acknowledge finished jobs: (id, lease token, result as JSON text, attempts made
        counting this one[, 1 if it owes its outcome to a flow or batch]) each."""
        return self._op("complete", orjson.dumps(list(items)), parse=list)

    def fail(self, job_id: str, token: str, message: str, record: str, delay_ms: int) -> Op[Code]:
        """``Code.RETRYING``, ``Code.FAILED`` or ``Code.LEASE_LOST``."""
        return self._op("fail", job_id, token, message, record, delay_ms, parse=Code)

    def extend_leases(self, items: Iterable[tuple[str, str]]) -> Op[LeaseRenewal]:
        """Renew the leases of (id, lease token) pairs."""
        args = [part for item in items for part in item]
        return self._op("extend_leases", len(args) // 2, *args, parse=LeaseRenewal.parse)

    def release(self, items: Iterable[tuple[str, str]]) -> Op[int]:
        args = [part for item in items for part in item]
        return self._op("release", len(args) // 2, *args, parse=int)

    def recover_stalled(self, limit: int = 1000) -> Op[StalledRecovery]:
        return self._op("recover_stalled", limit, parse=StalledRecovery.parse)

    def keep_alive(self, worker_id: str, state: str) -> Op[LivenessBeat]:
        """A liveness beat (see keep_alive.lua); ``state`` is "first", "again" or "stop"."""
        return self._op("keep_alive", worker_id, state, parse=LivenessBeat.parse)

    def reclaim_worker(self, worker_id: str, silent_ms: int) -> Op[Reclaim]:
        """Hand a dead worker's jobs back, if its beats are still ``silent_ms`` old."""
        return self._op("reclaim_worker", worker_id, silent_ms, parse=Reclaim.parse)

    def update_progress(self, job_id: str, token: str, progress: str) -> Op[Code]:
        """``Code.OK`` or ``Code.LEASE_LOST`` (as ``append_log``)."""
        return self._op("update_progress", job_id, token, progress, parse=Code)

    def append_log(self, job_id: str, token: str, line: str) -> Op[Code]:
        return self._op("append_log", job_id, token, line, parse=Code)

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

    def search(
        self,
        state: JobState,
        cursor: SearchCursor,
        count: int,
        newest_first: bool,
        job_name: str,
        needle: str,
        enough: int,
    ) -> Op[SearchSlice]:
        """One slice of a search (search.lua): up to ``count`` members read from ``cursor``,
        the matches kept."""

        def parse(r: list[Any]) -> SearchSlice:
            return SearchSlice(
                int(r[0]),
                r[1] == 1,
                SearchCursor(str(r[2]), int(r[3]), str(r[4]), int(r[5]), int(r[6])),
                [str(i) for i in r[7:]],
            )

        return self._op(
            "search", state.value, cursor.score, cursor.skip, count, "1" if newest_first else "0",
            job_name, needle, enough, cursor.group, cursor.group_count, cursor.group_skip,
            parse=parse,
        )  # fmt: skip

    def clean(self, state: JobState, age_ms: int, limit: int, cursor: str) -> Op[tuple[int, str]]:
        """(jobs deleted, the cursor to go on from: "0" at first, "-1" when done)."""
        return self._op(
            "clean", state.value, age_ms, limit, cursor, parse=lambda r: (int(r[0]), str(r[1]))
        )

    def obliterate(self, force: bool, cursor: str) -> Op[tuple[str | Code, int]]:
        """(the next SCAN cursor, keys deleted), or (``Code.IS_ACTIVE``, jobs running)."""

        def parse(r: list[Any]) -> tuple[str | Code, int]:
            return (Code(r[0]) if isinstance(r[0], int) else str(r[0]), int(r[1]))

        return self._op("obliterate", "1" if force else "0", cursor, parse=parse)

    def unregister(self) -> Op[None]:
        return Op((("SREM", registry_key(self.settings.prefix), self.queue),), lambda _: None)
