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
  segfault), so its named connection leaves CLIENT LIST within milliseconds. The grace covers a
  live worker whose connection was just reset: it reconnects on its next beat, and a beat is
  what makes it on time again. A live worker behind latency keeps its connection open, so it
  never meets this rule however late its beats.
* "Silent" is measured against the checker's own previous beat, less half a beat (see
  keep_alive.lua): when Redis itself stalled (DEBUG SLEEP, CLIENT PAUSE) or the checker was
  frozen, every worker was equally silent and nobody is late; a dead process is noticed
  1-1.5 s after its last beat, so its jobs start again within 2 s of its death.

If a live worker is reclaimed anyway, its fencing tokens keep that harmless: its late outcome is
refused (LEASE_LOST), logged and counted (``Acknowledger.lost``), and the worker, finding its
entry gone on its next beat, logs that and counts it (here, and in META "revived_workers").

The connection check needs CLIENT LIST, which on a Cluster answers for one node only: there
the silence rule alone applies (dead within ``liveness_seconds``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Sequence

from ..errors import CommandRefused, ConveyorError
from ..settings import Settings
from ..storage.commands import QueueCommands, client_names
from ..storage.redis import SyncRedis

__all__ = ["LivenessBeacon", "connection_name"]

log = logging.getLogger("conveyor.worker")

_NAME_PREFIX = "conveyor:w:"


def connection_name(worker_id: str) -> str:
    """The CLIENT SETNAME of a worker's liveness connection. Redis allows only '!'..'~' in a
    name; a worker id with anything else is named by its digest instead."""
    if worker_id and all("!" <= c <= "~" for c in worker_id):
        return _NAME_PREFIX + worker_id
    return _NAME_PREFIX + "sha1:" + hashlib.sha1(worker_id.encode()).hexdigest()


class LivenessBeacon:
    """The liveness thread of one worker (see the module's docstring)."""

    def __init__(self, settings: Settings, queues: Sequence[QueueCommands], worker_id: str) -> None:
        self._settings = settings
        self._queues = list(queues)
        self._worker_id = worker_id
        self._redis = SyncRedis(settings, client_name=connection_name(worker_id))
        # CLIENT LIST answers for one node of a Cluster: there, silence alone decides.
        self._list_clients = not self._redis.is_cluster
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._beaten = False
        self._failing = False
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
        self._failing = False

    def _beat(self) -> list[tuple[QueueCommands, str, int]]:
        """One beat on every queue; the late workers of each."""
        late: list[tuple[QueueCommands, str, int]] = []
        state = "again" if self._beaten else "first"
        for commands in self._queues:
            beat = self._redis.run(commands.keep_alive(self._worker_id, state))
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
        connected = None
        if self._list_clients and any(silent_ms < ttl_ms for _, _, silent_ms in late):
            connected = self._connected()
        for commands, worker, silent_ms in late:
            if silent_ms >= ttl_ms:
                silent_for, why = ttl_ms, f"silent for {silent_ms} ms"
            elif connected is not None and connection_name(worker) not in connected:
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

    def _connected(self) -> set[str] | None:
        """The names of the server's client connections; None when CLIENT LIST is refused
        (an ACL without it): then silence alone decides, from now on."""
        try:
            return self._redis.run(client_names())
        except CommandRefused as exc:
            log.warning("CLIENT LIST refused (%s): dead workers are noticed by silence only", exc)
            self._list_clients = False
            return None
