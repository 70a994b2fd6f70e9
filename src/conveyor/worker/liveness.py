"""Liveness: noticing within seconds that a worker died, and handing its jobs back at once.

A lease (30 s by default) is the backstop; waiting it out after every crash is slow. So each
worker runs a thread of its own (a blocking Redis client, independent of the event loop: a
handler that blocks the loop for 20 s, or a sync handler that runs for minutes, does not stop
it) that every ``liveness_beat_seconds``:

1. beats (keep_alive.lua: its entry in the queue's ``alive`` zset), and learns which other
   workers' beats are late;
2. decides which of those are dead, and hands their jobs back in one script each
   (reclaim_worker.lua, which checks the silence again, so two checkers reclaim once).

When a worker is dead (the rules, and why a live one is never taken for dead):

* Its beats have been silent ``liveness_seconds`` (4 s): the process is frozen (SIGSTOP, a
  swapped-out host) or its host vanished (a black hole: its sockets may linger for minutes).
  A live worker beats 8 times in that span from a thread no handler can block, so a 2 s pause
  or 500 ms of latency each way (a beat every ~1.5 s) is far inside it.
* Or it has no connection left AND its beats have been silent ``liveness_grace_ms`` (a quarter
  of that: two beats): the kernel closes a dead process's sockets at once (SIGKILL, OOM kill,
  segfault), so its connections leave CLIENT LIST within milliseconds. Every connection of a
  worker is named after it (``connection_names``: liveness, jobs, blocking wait), and the rule
  needs all of them gone: a live worker whose liveness connection alone was reset still shows.
  The grace covers a live worker whose connections were all just reset: it reconnects on its
  next beat, and a beat is what makes it on time again. A live worker behind latency keeps its
  connections open, so it never meets this rule however late its beats.
* Only a checker whose own beats got through over that grace (its previous beat at most
  ``liveness_grace_ms`` ago, by Redis's clock) applies the connection rule. One that was cut
  off, frozen or slowed down cannot tell others' vanished connections from the same fault
  resetting theirs too (they may be reconnecting as it did): it leaves them to the silence
  rule, or to a checker whose beats flowed.
* "Silent" is measured against the checker's own previous beat, less half a beat (see
  keep_alive.lua): when Redis itself stalled (DEBUG SLEEP, CLIENT PAUSE) or the checker was
  frozen, every worker was equally silent and nobody is late; a dead process is noticed
  1-1.5 s after its last beat, so its jobs start again within 2 s of its death.

When its beats reach Redis again after failing (a cut link healed, Redis back), the worker is
told (``on_heal``): requests that went into the outage are never answered, so it breaks off the
connections still waiting on them and ends its wait for jobs, and resumes within a beat or two
instead of after their read timeouts. A beat is given half the liveness period, not the socket
timeout, so the beats themselves notice the heal that soon.

If a live worker is reclaimed anyway, its fencing tokens keep that harmless: its late outcome is
refused (LEASE_LOST), logged and counted (``Acknowledger.lost``), and the worker, finding its
entry gone on its next beat, logs that and counts it (here, and in META "revived_workers").

CLIENT LIST answers for the server it reaches; on a Cluster it is sent to the node that holds
the queue's slot, where a live worker of the queue keeps its named connections (its beats and
its jobs go there), so recovery there is as fast as on one server.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..errors import CommandRefused, ConveyorError
from ..settings import Settings
from ..storage.commands import QueueCommands, client_names
from ..storage.redis import SyncRedis

__all__ = [
    "CONNECTION_ROLES",
    "LivenessBeacon",
    "connection_name",
    "connection_names",
    "has_connection",
]

log = logging.getLogger("conveyor.worker")

#: The connections of a worker, by the role in their name: its liveness beats, its job
#: commands (fetch, acks, leases), its blocking idle wait.
CONNECTION_ROLES = ("w", "w-jobs", "w-wait")


def connection_name(worker_id: str, role: str = "w") -> str:
    """The CLIENT SETNAME of a worker's connection, ``conveyor:<role>:<worker id>``. Redis allows
    only '!'..'~' in a name; a worker id with anything else is named by its digest instead."""
    if role not in CONNECTION_ROLES:
        raise ValueError(f"unknown connection role {role!r}")
    if worker_id and all("!" <= c <= "~" for c in worker_id):
        return f"conveyor:{role}:{worker_id}"
    return f"conveyor:{role}:sha1:" + hashlib.sha1(worker_id.encode()).hexdigest()


def connection_names(worker_id: str) -> tuple[str, ...]:
    """Every name a connection of this worker may carry."""
    return tuple(connection_name(worker_id, role) for role in CONNECTION_ROLES)


def has_connection(worker_id: str, connected: Iterable[str]) -> bool:
    """Whether any of the worker's named connections is among ``connected``."""
    names = set(connection_names(worker_id))
    return any(name in names for name in connected)


class LivenessBeacon:
    """The liveness thread of one worker (see the module's docstring)."""

    def __init__(
        self,
        settings: Settings,
        queues: Sequence[QueueCommands],
        worker_id: str,
        on_heal: Callable[[], None] | None = None,
    ) -> None:
        """``on_heal``: called (from the liveness thread) when beats reach Redis again after
        failing, so the worker can end waits the outage left hanging."""
        self._settings = settings
        self._queues = list(queues)
        self._worker_id = worker_id
        self._on_heal = on_heal
        # A beat not answered within half the liveness period is of no use any more; failing
        # it then and beating on a fresh connection notices a healed link within seconds,
        # where the full socket timeout (10 s) would leave the beats hanging on a dead one.
        beat_timeout = min(settings.socket_timeout_seconds, settings.liveness_seconds / 2)
        self._redis = SyncRedis(
            dataclasses.replace(settings, socket_timeout_seconds=beat_timeout),
            client_name=connection_name(worker_id),
        )
        self._list_clients = True
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._beaten = False
        self._failing = False
        self._steady = False
        #: Other workers found dead and reclaimed by this one, and the jobs handed back.
        self.reclaimed_workers = 0
        self.reclaimed_jobs = 0
        #: How often this worker found itself reclaimed while it lived.
        self.revivals = 0

    def start(self) -> None:
        """Beat once (so the worker is listed before it leases a job), then keep beating in a
        daemon thread. Blocking: call it from a thread."""
        self._tick()
        self._thread = threading.Thread(
            target=self._run, name=f"conveyor-liveness-{self._worker_id}", daemon=True
        )
        self._thread.start()

    def stop(self, *, goodbye: bool) -> None:
        """Stop beating; ``goodbye``: leave the lists of live workers (the worker holds no job
        any more). Blocking: call it from a thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._settings.socket_timeout_seconds + 1)
        if goodbye and self._beaten:
            for commands in self._queues:
                try:
                    self._redis.run(commands.keep_alive(self._worker_id, "stop"))
                except ConveyorError as exc:
                    log.warning("could not leave the live workers of %s (%s)", commands.queue, exc)
        self._redis.close()

    def _run(self) -> None:
        period = self._settings.liveness_beat_seconds
        next_at = time.monotonic() + period
        while not self._stop.wait(max(next_at - time.monotonic(), 0.0)):
            next_at = max(next_at + period, time.monotonic())
            try:
                self._tick()
            except Exception:  # a bug must not end the beats: others would reclaim our jobs
                log.exception("liveness beat failed")

    def _tick(self) -> None:
        try:
            late = self._beat()
            if late:
                self._reclaim(late)
        except ConveyorError as exc:
            if not self._failing:
                log.warning("liveness beat failed (%s); retrying", exc)
            self._failing = True
            return
        if self._failing:
            log.info("liveness beats reach Redis again")
            if self._on_heal is not None:
                self._on_heal()
        self._failing = False

    def _beat(self) -> list[tuple[QueueCommands, str, int]]:
        """One beat on every queue; the late workers of each. Sets ``_steady``: whether this
        worker's own beats got through over the grace (see the module's docstring)."""
        late: list[tuple[QueueCommands, str, int]] = []
        state = "again" if self._beaten else "first"
        self._steady = True
        for commands in self._queues:
            beat = self._redis.run(commands.keep_alive(self._worker_id, state))
            if beat.gap_ms is None or beat.gap_ms > self._settings.liveness_grace_ms:
                self._steady = False
            if beat.revived:
                self.revivals += 1
                log.error(
                    "queue %s: this worker was taken for dead and its jobs handed to others "
                    "(or Redis lost data); its outcomes for them will be refused",
                    commands.queue,
                )
            late.extend((commands, worker, silent_ms) for worker, silent_ms in beat.late)
        self._beaten = True
        return late

    def _reclaim(self, late: list[tuple[QueueCommands, str, int]]) -> None:
        ttl_ms, grace_ms = self._settings.liveness_ms, self._settings.liveness_grace_ms
        by_node: dict[str, set[str] | None] = {}  # one CLIENT LIST per server a tick
        for commands, worker, silent_ms in late:
            if silent_ms >= ttl_ms:
                silent_for, why = ttl_ms, f"silent for {silent_ms} ms"
            elif self._steady and self._list_clients:
                connected = self._connected(commands, by_node)
                if connected is None or has_connection(worker, connected):
                    continue
                silent_for, why = grace_ms, f"no connection left, silent for {silent_ms} ms"
            else:
                continue
            reclaim = self._redis.run(commands.reclaim_worker(worker, silent_for))
            if reclaim.reclaimed:
                self.reclaimed_workers += 1
                self.reclaimed_jobs += reclaim.recovered + reclaim.failed
                log.warning(
                    "queue %s: worker %s is dead (%s): %d jobs handed back, %d failed as stalled",
                    commands.queue,
                    worker,
                    why,
                    reclaim.recovered,
                    reclaim.failed,
                )

    def _connected(
        self, commands: QueueCommands, by_node: dict[str, set[str] | None]
    ) -> set[str] | None:
        """The names of the client connections of the server that holds the queue (on a
        Cluster, the node of its slot); None when CLIENT LIST is refused (an ACL without it):
        then silence alone decides, from now on."""
        node: Any = self._redis.node_of(commands.keys.meta)
        where = "" if node is None else str(node.name)
        if where not in by_node:
            try:
                by_node[where] = self._redis.run_on(node, client_names())
            except CommandRefused as exc:
                log.warning(
                    "CLIENT LIST refused (%s): dead workers are noticed by silence only", exc
                )
                self._list_clients = False
                by_node[where] = None
        return by_node[where]
