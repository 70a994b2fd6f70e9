"""``Worker``: leases jobs from one or more queues and runs them in N slots.

The worker wires its parts together and runs them: the fetch loop (``fetching``), one task
per running job in the slots (``running``, ``slots``), the acknowledgements (``acks``) and the
periodic duties (``duties``: lease renewal, heartbeat and stalled recovery, see ``leases``),
and the liveness thread that notices dead workers within seconds (``liveness``).

Shutdown (``close()``, SIGTERM or SIGINT): stop fetching at once, give running jobs the grace
period, cancel what is left and hand those jobs back to waiting exactly once (release.lua).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any

import orjson

from ..backoff import BackoffStrategy
from ..errors import CommandRefused, ConfigurationError, ConnectionError, UnsafeRedisConfig
from ..otel_auto import autostart
from ..queue import Handler, Queue
from ..runner import Handlers
from ..storage.commands import QueueCommands
from ..storage.protocol import LEASE_SEPARATOR
from ..storage.redis import AsyncRedis
from ..storage.safety import check_safety_async
from ..supervisor import RESTARTS_ENV
from ..version import __version__
from ..workflows.worker import Settler, workflow_duty
from .acks import Acknowledger
from .context import LeasedJobContext
from .duties import Duty, run_duties
from .fetching import Fetcher, first_of
from .leased import LeasedJobs
from .leases import LeaseKeeper
from .liveness import LivenessBeacon, connection_name
from .running import JobStarter
from .slots import Slots
from .ticks import ScheduleTicker

__all__ = ["Worker"]

log = logging.getLogger("conveyor.worker")


class Worker:
    """Runs jobs from ``queues`` with ``handlers`` (a mapping of job name to function; handlers
    registered with ``@queue.handler`` are included)."""

    def __init__(
        self,
        queues: Queue | Sequence[Queue],
        handlers: Mapping[str, Handler] | None = None,
        *,
        concurrency: int | None = None,
        backoff_strategies: Mapping[str, BackoffStrategy] | None = None,
        shutdown_grace: float | None = None,
        burst: bool = False,
        max_jobs: int | None = None,
        allow_evicting_redis: bool = False,
        name: str | None = None,
    ) -> None:
        self.queues = [queues] if isinstance(queues, Queue) else list(queues)
        if not self.queues:
            raise ConfigurationError("a worker needs at least one queue")
        self.settings = self.queues[0].settings
        for queue in self.queues[1:]:
            if (queue.settings.url, queue.settings.prefix) != (
                self.settings.url,
                self.settings.prefix,
            ):
                raise ConfigurationError(
                    f"queue {queue.name!r} uses another Redis or prefix than "
                    f"{self.queues[0].name!r}; one worker serves the queues of one Redis and "
                    "prefix (run a worker per Redis)"
                )
        self.handlers: dict[str, Handler] = {}
        for queue in self.queues:
            self.handlers.update(queue.handlers)
        self.handlers.update(handlers or {})
        self.concurrency = concurrency or self.settings.concurrency
        if self.concurrency < 1:
            raise ConfigurationError(f"concurrency must be at least 1, not {self.concurrency}")
        self.strategies = dict(backoff_strategies or {})
        self.shutdown_grace = (
            self.settings.shutdown_grace_seconds if shutdown_grace is None else shutdown_grace
        )
        self.burst = burst
        self.max_jobs = max_jobs
        self.allow_evicting_redis = allow_evicting_redis
        self.id = name or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        if LEASE_SEPARATOR in self.id or not self.id.isprintable():
            raise ConfigurationError(
                f"worker name {self.id!r} must be printable, without {LEASE_SEPARATOR!r}"
            )
        self._commands = [QueueCommands(q.settings, q.name) for q in self.queues]
        self._slots = Slots(self.concurrency)
        self._leased = LeasedJobs()
        self._stopping = asyncio.Event()
        self._finished = asyncio.Event()
        self._crash: BaseException | None = None
        self._started_at = 0.0
        # The parts that talk to Redis are made in run(), with the connections.
        self._acks: Acknowledger | None = None
        self._keeper: LeaseKeeper | None = None
        self._beacon: LivenessBeacon | None = None

    def __repr__(self) -> str:
        names = ",".join(q.name for q in self.queues)
        return f"Worker({self.id!r}, queues={names!r}, concurrency={self.concurrency})"

    @property
    def processed(self) -> int:
        """Attempts recorded (completed or failed)."""
        return self._acks.processed if self._acks is not None else 0

    @property
    def failed(self) -> int:
        return self._acks.failed if self._acks is not None else 0

    @property
    def leases_lost(self) -> int:
        """Outcomes refused because another worker owned the job by then (LEASE_LOST)."""
        return self._acks.lost if self._acks is not None else 0

    @property
    def reclaimed_workers(self) -> int:
        """Dead workers whose jobs this worker handed back (see ``liveness``)."""
        return self._beacon.reclaimed_workers if self._beacon is not None else 0

    @property
    def data_losses(self) -> int:
        """How often this worker saw a queue's data vanish from Redis (see heartbeat.lua)."""
        return self._keeper.data_losses if self._keeper is not None else 0

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self, *, install_signal_handlers: bool = True) -> None:
        """Run until ``close()``, SIGTERM or SIGINT (or, in burst mode, until the queues are
        empty). A second signal skips the rest of the grace period. A worker runs once.

        If one of the worker's own loops fails (a bug, not a Redis outage, which it rides out),
        the worker stops as on SIGTERM and ``run`` raises that error."""
        if self._started_at:
            raise ConfigurationError("a Worker runs once; create a new one to run again")
        autostart()  # ecosystem: OpenTelemetry, when its SDK was configured after the queues
        # Named after this worker, so that a checker sees whether any of them is left.
        redis = AsyncRedis(self.settings, client_name=connection_name(self.id, "w-jobs"))
        blocking = AsyncRedis(
            self.settings,
            blocking=True,
            single_caller=True,
            client_name=connection_name(self.id, "w-wait"),
        )
        self._started_at = time.time()
        acks = self._acks = Acknowledger(redis, self._leased, self.id)
        keeper = self._keeper = LeaseKeeper(
            redis, self._commands, self._leased, self.id, self.settings.lease_seconds, self._info
        )
        context = LeasedJobContext(redis, self._leased, self.queues, self.settings)
        starter = JobStarter(
            Handlers(self.handlers),
            self.strategies,
            self.settings.max_payload_bytes,
            self._slots,
            self._leased,
            acks,
            context,
            self._stopping,
        )
        host = _FetchHost(self, starter)
        fetcher = Fetcher(host, self._commands, self.settings, redis, blocking, self._stopping)
        ticker = ScheduleTicker(redis, self._commands)  # job schedulers
        duties = [
            Duty("housekeeping", keeper.keep, keeper.interval),
            Duty("schedules", ticker.tick, ticker.interval),
        ]
        duties.append(workflow_duty(acks, redis, self.settings, self._commands, self._leased))
        loop = asyncio.get_running_loop()
        healing: set[asyncio.Task[None]] = set()

        def heal() -> None:  # in the liveness thread, whose beats reach Redis again
            def start() -> None:
                task = loop.create_task(self._heal(redis, fetcher, loop.time()))
                healing.add(task)
                task.add_done_callback(healing.discard)

            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to heal
                loop.call_soon_threadsafe(start)

        beacon = self._beacon = LivenessBeacon(self.settings, self._commands, self.id, heal)
        beating = False
        if install_signal_handlers:
            self._set_signal_handlers(install=True)
        try:
            await self._check_redis(redis)
            # Listed as live before leasing a job, so that its death is noticed from the start.
            await asyncio.to_thread(beacon.start)
            beating = True
            log.info("worker %s started: %s", self.id, self._describe())
            fetching = asyncio.create_task(self._guarded(fetcher.run()), name="conveyor-fetch")
            acking = asyncio.create_task(self._guarded(acks.run()), name="conveyor-ack")
            keeping = asyncio.create_task(
                self._guarded(run_duties(duties, self._finished)), name="conveyor-housekeeping"
            )
            await fetching
            self._stopping.set()
            await fetcher.end_waits()
            await self._drain(redis)
            # The acker and the duties stop on their own once told: cancelling them
            # mid-command could leave an acknowledgement half-sent.
            self._finished.set()
            acks.stop()
            await asyncio.gather(acking, keeping)
            await acks.flush(deadline=time.monotonic() + 5.0)
            await keeper.say_goodbye()
        finally:
            if install_signal_handlers:
                self._set_signal_handlers(install=False)
            if beating:
                # A worker that still holds jobs (it could not hand them back) stays listed:
                # once its beats fall silent another worker hands them back.
                await asyncio.to_thread(beacon.stop, goodbye=not self._leased)
            # The beats have stopped, so no heal starts now; one under way would mend
            # connections about to close.
            for task in healing:
                task.cancel()
            await asyncio.gather(*healing, return_exceptions=True)
            self._slots.shutdown()
            await redis.close()
            await blocking.close()
        log.info("worker %s stopped after %d jobs", self.id, self.processed)
        if self._crash is not None:
            raise self._crash

    async def _heal(self, redis: AsyncRedis, fetcher: Fetcher, since: float) -> None:
        """The link to Redis came back at ``since`` after an outage. Requests sent into the
        outage are never answered: rather than wait out their read timeouts, break the
        connections still stuck on them, a beat later (replies a stalled Redis still owes come
        meanwhile), and end the wait for jobs (``Fetcher.heal``). New requests wait meanwhile:
        written behind a swallowed one, their replies would be matched to it."""
        direct = redis.direct
        if direct is not None:
            direct.hold()
        try:
            await asyncio.sleep(self.settings.liveness_beat_seconds)
            if direct is not None and direct.reset_if_stuck(since):
                log.info("the link to Redis is back: requests it left unanswered were given up")
        finally:
            if direct is not None:
                direct.release()
        await fetcher.heal(since)

    async def _guarded(self, loop: Coroutine[Any, Any, None]) -> None:
        """Run one of the worker's loops; if it dies, stop the whole worker (and say why)."""
        try:
            await loop
        except Exception as exc:
            log.exception("worker %s: an internal loop failed; stopping", self.id)
            self._crash = self._crash or exc
            self._stopping.set()
            self._finished.set()
            if self._acks is not None:
                self._acks.stop()

    async def close(self) -> None:
        """Ask the worker to stop (gracefully); returns at once."""
        self._stopping.set()

    def _set_signal_handlers(self, install: bool) -> None:
        """Install (or remove) the SIGTERM/SIGINT handlers.

        A loop refuses them outside the main thread (RuntimeError, ValueError) or on platforms
        without ``add_signal_handler`` (NotImplementedError). Then the embedding application
        owns the signals and stops the worker with ``close()``, so that is not an error."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                if install:
                    loop.add_signal_handler(sig, self._on_signal, sig)
                else:
                    loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self._stopping.is_set():
            log.warning("%s again: handing running jobs back now", sig.name)
            self.shutdown_grace = 0.0
            for leased in self._leased:
                if leased.task is not None:
                    leased.task.cancel()
            return
        log.info("%s: stopping; running jobs get %.0f s to finish", sig.name, self.shutdown_grace)
        self._stopping.set()

    async def _check_redis(self, redis: AsyncRedis) -> None:
        """Refuse an evicting Redis, warn about one without persistence (docs/design.md §3)."""
        safety = await check_safety_async(redis)
        if safety.policy is None:
            log.warning("could not read maxmemory-policy; make sure it is noeviction")
        elif safety.may_evict:
            message = (
                f"Redis maxmemory-policy is {safety.policy!r}: Redis may evict job keys under "
                "memory pressure and lose jobs. Set it to 'noeviction'"
            )
            if not self.allow_evicting_redis:
                raise UnsafeRedisConfig(message + " (or pass allow_evicting_redis=True).")
            log.warning("%s.", message)
        if safety.persistent is False:
            log.warning(
                "Redis persistence is off (no AOF, no RDB snapshots): a Redis restart loses "
                "every queued job. Enable appendonly for durable queues."
            )

    def _describe(self) -> str:
        return (
            f"redis={self.settings.redacted_url()} queues={[q.name for q in self.queues]} "
            f"concurrency={self.concurrency} handlers={sorted(self.handlers)}"
        )

    def _info(self) -> str:
        """What the heartbeat publishes about this worker."""
        return orjson.dumps(
            {
                "id": self.id,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "queues": [q.name for q in self.queues],
                "concurrency": self.concurrency,
                "busy": self._slots.busy,
                "processed": self.processed,
                "failed": self.failed,
                "leases_lost": self.leases_lost,
                "restarts": _restarts(),
                "started_at": int(self._started_at * 1000),
                "version": __version__,
            }
        ).decode()

    # -- shutdown ------------------------------------------------------------------------------

    async def _drain(self, redis: AsyncRedis) -> None:
        """Give running jobs the grace period, then cancel them and hand them back."""
        assert self._acks is not None
        tasks = [leased.task for leased in self._leased if leased.task is not None]
        if tasks:
            log.info("waiting up to %.0f s for %d running jobs", self.shutdown_grace, len(tasks))
            _done, pending = await asyncio.wait(tasks, timeout=self.shutdown_grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._acks.flush(deadline=time.monotonic() + 10.0)
        leftovers = self._leased.by_queue(self._commands)
        if not any(leftovers.values()):
            return
        ops = [c.release(j.lease for j in jobs) for c, jobs in leftovers.items() if jobs]
        try:
            released = await redis.run_many(ops)
            log.warning("handed %d unfinished jobs back to their queues", sum(released))
        except (ConnectionError, CommandRefused) as exc:
            log.error("could not hand jobs back (%s); they return when their lease expires", exc)
        self._leased.clear()


class _FetchHost:
    """The worker as its fetch loop sees it (``interfaces.FetchHost``)."""

    def __init__(self, worker: Worker, starter: JobStarter) -> None:
        self.id = worker.id
        self.burst = worker.burst
        self._worker = worker
        self._slots = worker._slots
        self._leased = worker._leased
        self._stopping = worker._stopping
        self.start = starter.start

    def fetchable(self) -> int:
        free = self._slots.free
        max_jobs = self._worker.max_jobs
        if max_jobs is not None:
            free = min(free, max_jobs - self._worker.processed - len(self._leased))
        return free

    def limit_reached(self) -> bool:
        max_jobs = self._worker.max_jobs
        return max_jobs is not None and self._worker.processed + len(self._leased) >= max_jobs

    def holds_jobs(self) -> bool:
        settler = self._settler()  # workflows: debts being paid may release a flow's parent
        return len(self._leased) > 0 or (settler is not None and settler.holds_work())

    def _settler(self) -> Settler | None:
        return self._worker._acks.settler if self._worker._acks is not None else None

    async def wait_for_slot(self) -> None:
        self._slots.freed.clear()
        await first_of(self._slots.freed.wait(), self._stopping.wait())

    async def wait_until_settled(self) -> None:
        settler = self._settler()
        if settler is not None and settler.take_fresh():
            return  # workflows: debts were paid since the last fetch; fetch again first
        self._leased.settled.clear()
        await first_of(self._leased.settled.wait(), self._stopping.wait())


def _restarts() -> int:
    """How often the supervisor restarted this process's slot (0 when none runs it)."""
    try:
        return max(int(os.environ.get(RESTARTS_ENV, "0")), 0)
    except ValueError:
        return 0
