"""``Worker``: leases jobs from one or more queues and runs them in N slots.

Roles inside one worker (each an asyncio task):

* the fetch loop takes as many jobs as there are free slots in one round trip; when the queues
  are empty it blocks on their marker keys (BZPOPMIN), woken by an add or by the next delayed
  job coming due — no polling;
* one task per running job (``runner.run_job``); sync handlers run in a thread pool;
* the acker sends finished outcomes in batches: everything that finished while the previous
  batch was in flight goes in the next round trip;
* housekeeping renews the leases of running jobs in one call per queue, publishes the worker's
  heartbeat and hands back jobs whose lease expired elsewhere (stalled-job recovery).

Shutdown (``close()``, SIGTERM or SIGINT): stop fetching at once, give running jobs the grace
period, cancel what is left and hand those jobs back to waiting exactly once (release.lua).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import os
import random
import signal
import socket
import time
from collections.abc import Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

from . import serializer
from .backoff import BackoffStrategy
from .errors import (
    CommandRefused,
    ConfigurationError,
    ConnectionError,
    ConveyorError,
    LeaseLost,
    UnsafeRedisConfig,
)
from .job import Job
from .queue import Handler, Queue
from .runner import NO_RETRY, Handlers, Outcome, run_job
from .storage.commands import (
    LEASE_LOST,
    Op,
    QueueCommands,
    config_get,
    info,
    unblock_client,
    wait_for_marker,
)
from .storage.protocol import FetchReply
from .storage.redis import AsyncRedis
from .version import __version__

__all__ = ["Worker"]

log = logging.getLogger("conveyor.worker")

#: What a round of fetching came to: (jobs got, jobs asked for, seconds until the next delayed
#: job is due or None).
_Tally = tuple[int, int, float | None]


def _tally(asked: int, results: Sequence[FetchReply]) -> _Tally:
    dues = [r.next_due_ms / 1000 for r in results if r.next_due_ms is not None]
    return sum(len(r.jobs) for r in results), asked, min(dues) if dues else None


@dataclasses.dataclass(slots=True, eq=False)
class _Running:
    commands: QueueCommands
    job: Job
    task: asyncio.Task[Outcome] | None = None
    #: Threads running this job's sync handler (so the slot stays taken while one runs).
    threads: list[concurrent.futures.Future[Any]] = dataclasses.field(default_factory=list)
    lost: bool = False
    #: Someone cancelled the job (cancel.lua); its task is being cancelled for that reason,
    #: not because the worker is shutting down.
    cancelling: bool = False


def _log_fields(running: _Running, outcome: Outcome) -> dict[str, Any]:
    """Structured fields of a per-job log record (see ``conveyor.logs``)."""
    job = running.job
    return {
        "queue": job.queue,
        "job_id": job.id,
        "job_name": job.name,
        "attempt": job.attempt,
        "duration_ms": outcome.duration_ms,
    }


async def _first_of(*awaitables: Any) -> None:
    """Wait until the first of ``awaitables`` finishes; the others are cancelled unless they
    are futures the caller passed in (those are the caller's to finish)."""
    futures = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future, given in zip(futures, awaitables, strict=True):
            if future is not given and not future.done():
                future.cancel()


def _per_node(reply: Any, field: str = "maxmemory-policy") -> list[Any]:
    """A CONFIG GET / INFO field from one server, or from each node of a Cluster."""
    if isinstance(reply, dict) and reply and all(isinstance(v, dict) for v in reply.values()):
        return [node.get(field) for node in reply.values()]
    return [reply.get(field) if isinstance(reply, dict) else None]


def _consume_result(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


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
        if "|" in self.id or not self.id.isprintable():
            raise ConfigurationError(f"worker name {self.id!r} must be printable, without '|'")
        self.processed = 0
        self.failed = 0
        #: How often this worker saw a queue's data vanish from Redis (see heartbeat.lua).
        self.data_losses = 0
        self._epochs: dict[str, str] = {}
        self._commands = [QueueCommands(q.settings, q.name) for q in self.queues]
        self._redis: AsyncRedis | None = None
        self._blocking: AsyncRedis | None = None
        self._running: dict[tuple[str, str], _Running] = {}
        self._outbox: list[tuple[_Running, Outcome]] = []
        self._outbox_ready = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._busy = 0
        self._marker_waits: dict[tuple[str, ...], asyncio.Future[Any]] = {}
        #: A wait on the markers with fetches queued behind it: (what each asks for, reply).
        self._wait_fetch: tuple[list[tuple[QueueCommands, int]], asyncio.Future[Any]] | None = None
        self._stopping = asyncio.Event()
        self._finished = asyncio.Event()
        # One thread per slot: a sync handler's slot stays taken until its thread returns.
        self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="conveyor-job")
        self._ack_lock = asyncio.Lock()
        self._crash: BaseException | None = None
        self._started_at = 0.0

    def __repr__(self) -> str:
        names = ",".join(q.name for q in self.queues)
        return f"Worker({self.id!r}, queues={names!r}, concurrency={self.concurrency})"

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self, *, install_signal_handlers: bool = True) -> None:
        """Run until ``close()``, SIGTERM or SIGINT (or, in burst mode, until the queues are
        empty). A second signal skips the rest of the grace period. A worker runs once.

        If one of the worker's own loops fails (a bug, not a Redis outage, which it rides out),
        the worker stops as on SIGTERM and ``run`` raises that error."""
        if self._started_at:
            raise ConfigurationError("a Worker runs once; create a new one to run again")
        self._handler_table = Handlers(self.handlers)
        self._redis = AsyncRedis(self.settings)
        self._blocking = AsyncRedis(self.settings, blocking=True, single_caller=True)
        self._started_at = time.time()
        if install_signal_handlers:
            self._set_signal_handlers(install=True)
        try:
            await self._check_redis()
            log.info("worker %s started: %s", self.id, self._describe())
            fetcher = asyncio.create_task(self._guarded(self._fetch_loop()), name="conveyor-fetch")
            acker = asyncio.create_task(self._guarded(self._ack_loop()), name="conveyor-ack")
            keeper = asyncio.create_task(
                self._guarded(self._housekeeping_loop()), name="conveyor-housekeeping"
            )
            await fetcher
            self._stopping.set()
            await self._end_waits()
            await self._drain()
            # The acker and housekeeping stop on their own once they see _finished: cancelling
            # them mid-command could leave an acknowledgement half-sent.
            self._finished.set()
            self._outbox_ready.set()
            await asyncio.gather(acker, keeper)
            await self._flush_outbox(deadline=time.monotonic() + 5.0)
            await self._say_goodbye()
        finally:
            if install_signal_handlers:
                self._set_signal_handlers(install=False)
            self._executor.shutdown(wait=False, cancel_futures=True)
            await self._redis.close()
            await self._blocking.close()
        log.info("worker %s stopped after %d jobs", self.id, self.processed)
        if self._crash is not None:
            raise self._crash

    async def _guarded(self, loop: Coroutine[Any, Any, None]) -> None:
        """Run one of the worker's loops; if it dies, stop the whole worker (and say why)."""
        try:
            await loop
        except Exception as exc:
            log.exception("worker %s: an internal loop failed; stopping", self.id)
            self._crash = self._crash or exc
            self._stopping.set()
            self._finished.set()
            self._outbox_ready.set()

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
            for running in list(self._running.values()):
                if running.task is not None:
                    running.task.cancel()
            return
        log.info("%s: stopping; running jobs get %.0f s to finish", sig.name, self.shutdown_grace)
        self._stopping.set()

    async def _check_redis(self) -> None:
        """Refuse an evicting Redis, warn about one without persistence (DESIGN §3)."""
        assert self._redis is not None
        try:
            policies = _per_node(await self._redis.run(config_get("maxmemory-policy")))
            policy = next((p for p in policies if p and p != "noeviction"), "noeviction")
        except CommandRefused as exc:
            log.warning("could not read maxmemory-policy (%s); make sure it is noeviction", exc)
            policy = "noeviction"
        if policy != "noeviction":
            message = (
                f"Redis maxmemory-policy is {policy!r}: Redis may evict job keys under memory "
                "pressure and lose jobs. Set it to 'noeviction'"
            )
            if not self.allow_evicting_redis:
                raise UnsafeRedisConfig(message + " (or pass allow_evicting_redis=True).")
            log.warning("%s.", message)
        try:
            aof = _per_node(await self._redis.run(info("persistence")), "aof_enabled")
            saves = _per_node(await self._redis.run(config_get("save")), "save")
        except CommandRefused:
            return
        if not any(aof) and not any(saves):
            log.warning(
                "Redis persistence is off (no AOF, no RDB snapshots): a Redis restart loses "
                "every queued job. Enable appendonly for durable queues."
            )

    def _describe(self) -> str:
        return (
            f"redis={self.settings.redacted_url()} queues={[q.name for q in self.queues]} "
            f"concurrency={self.concurrency} handlers={sorted(self.handlers)}"
        )

    # -- fetching ------------------------------------------------------------------------------

    def _free_slots(self) -> int:
        # A slot frees when its handler returns, not when the outcome is acknowledged, so the
        # next fetch overlaps with the acknowledgement round trip.
        return self.concurrency - self._busy

    def _limit_reached(self) -> bool:
        return self.max_jobs is not None and self.processed + len(self._running) >= self.max_jobs

    async def _fetch_loop(self) -> None:
        assert self._redis is not None
        failures = 0
        waited: _Tally | None = None
        while not self._stopping.is_set():
            last_wait, waited = waited, None
            if self._limit_reached():
                if not self._running:
                    return
                await self._wait_for_slot()
                continue
            if self._free_slots() <= 0:
                await self._wait_for_slot()
                # Let the jobs that finish in the same tick free their slots too, so the next
                # fetch takes a batch instead of one job per round trip.
                await asyncio.sleep(0)
                continue
            if last_wait is not None and last_wait[0] < last_wait[1]:
                # The fetch behind the wait just found the queues drained: another fetch now
                # would find the same, so go back to waiting (an add since sets a marker).
                got, asked, next_due = last_wait
            else:
                try:
                    got, asked, next_due = await self._fetch_once()
                    failures = 0
                except ConnectionError as exc:
                    failures += 1
                    delay = min(0.1 * 2**failures, 5.0) * (0.5 + random.random() / 2)
                    log.warning("fetch failed (%s); retrying in %.1f s", exc, delay)
                    await self._sleep_unless_stopping(delay)
                    continue
            if got >= asked:
                continue
            if self.burst and got == 0:
                if not self._running:
                    return
                await self._wait_for_slot()
                continue
            waited = await self._block_for_work(next_due)

    def _fetchable(self) -> int:
        """How many more jobs may be fetched now: free slots, within ``max_jobs``."""
        free = self._free_slots()
        if self.max_jobs is not None:
            free = min(free, self.max_jobs - self.processed - len(self._running))
        return free

    def _wants(self) -> list[tuple[QueueCommands, int]]:
        """How many jobs to ask each queue for at once, in queue order."""
        free = self._fetchable()
        wants = []
        for commands in self._commands:
            want = min(free, self.settings.fetch_batch)
            if want <= 0:
                break
            wants.append((commands, want))
            free -= want
        return wants

    def _take(self, commands: QueueCommands, result: FetchReply) -> None:
        """Start the jobs a fetch leased."""
        for raw in result.jobs:
            # (from_fetch unpacks any sequence; its annotation says list)
            self._start(commands, Job.from_fetch(commands.queue, raw, self))  # type: ignore[arg-type]

    async def _fetch_once(self) -> _Tally:
        """One fetch round trip per queue, in order. Queues are asked one at a time, so slots
        a queue could not fill are offered to the next."""
        assert self._redis is not None
        asked, results = 0, []
        for commands in self._commands:
            want = min(self._fetchable(), self.settings.fetch_batch)
            if want <= 0:
                break
            asked += want
            result = await self._redis.run(commands.fetch(self.id, want))
            self._take(commands, result)
            results.append(result)
        return _tally(asked, results)

    async def _block_for_work(self, next_due: float | None) -> _Tally | None:
        """Sleep on the queues' marker keys until an add, a due delayed job, or the idle wake;
        returns what the fetch queued behind the wait got, where there is one.

        One BZPOPMIN covers every queue; on a Cluster, whose queues live in different slots,
        each queue gets its own, and a wait that did not fire is kept for the next round."""
        assert self._blocking is not None
        timeout = self.settings.idle_wake_seconds
        if next_due is not None:
            timeout = min(timeout, max(next_due, 0.001))
        if self._blocking.direct is not None:
            return await self._wait_then_fetch(timeout)
        markers = [c.keys.marker for c in self._commands]
        groups = [(m,) for m in markers] if self._blocking.is_cluster else [tuple(markers)]
        for group in groups:
            if group not in self._marker_waits:
                block = self._blocking.run(wait_for_marker(group, timeout))
                self._marker_waits[group] = asyncio.ensure_future(block)
        await _first_of(*self._marker_waits.values(), self._stopping.wait(), asyncio.sleep(timeout))
        for group, waiting in list(self._marker_waits.items()):
            if not waiting.done():
                continue
            del self._marker_waits[group]
            if not waiting.cancelled() and (error := waiting.exception()) is not None:
                # Only a wake-up hint failed: fetching still works (or reports its own errors).
                log.warning("waiting for jobs failed (%r); retrying", error)
                await self._sleep_unless_stopping(min(timeout, 1.0))
        return None

    async def _wait_then_fetch(self, timeout: float) -> _Tally | None:
        """Block on the markers with the next fetch queued behind the wait on the same
        connection. Redis holds a client's later commands while one blocks, so the fetch runs
        the moment an add (or the timeout) ends the wait: a job added while the worker idles
        starts one round trip after the add instead of two."""
        assert self._blocking is not None
        wants = self._wants()
        markers = tuple(c.keys.marker for c in self._commands)
        ops: list[Op[Any]] = [wait_for_marker(markers, timeout)]
        ops += [commands.fetch(self.id, want) for commands, want in wants]
        pending = asyncio.ensure_future(self._blocking.run_many(ops))
        self._wait_fetch = (wants, pending)
        # The jobs start from the reply's own callback: waking this coroutine first would put
        # two more turns of the event loop (and the next fetch) between the reply and the job.
        pending.add_done_callback(self._start_waited_for)
        await _first_of(pending, self._stopping.wait())
        if not pending.done():
            return None  # stopping: _end_waits reads the reply and hands back what it leased
        if pending.cancelled():
            return None
        if (error := pending.exception()) is not None:
            if not isinstance(error, ConnectionError):
                raise error
            log.warning("waiting for jobs failed (%r); retrying", error)
            await self._sleep_unless_stopping(min(timeout, 1.0))
            return None
        if len(wants) < len(self._commands):
            # The free slots went to the queues before the rest: the wake may have been for a
            # queue this fetch did not ask, so only a full round of fetches can tell.
            return None
        return _tally(sum(want for _, want in wants), pending.result()[1:])

    def _start_waited_for(self, pending: asyncio.Future[Any]) -> None:
        """Start what the fetch behind the idle wait leased, unless stopping took it over."""
        if self._wait_fetch is None or self._wait_fetch[1] is not pending:
            return
        wants, _ = self._wait_fetch
        self._wait_fetch = None
        if pending.cancelled() or pending.exception() is not None:
            return  # _wait_then_fetch reports it
        for (commands, _), result in zip(wants, pending.result()[1:], strict=True):
            self._take(commands, result)

    async def _end_waits(self) -> None:
        """Stopping: end the blocked wait. A fetch queued behind it still runs once the wait
        ends, so the wait is ended now (CLIENT UNBLOCK), its reply read, and the jobs that
        fetch leased handed back to waiting rather than left leased to a stopped worker."""
        for waiting in self._marker_waits.values():
            # No fetch behind these: they are dropped with the blocking connection on close.
            waiting.cancel()
            waiting.add_done_callback(_consume_result)
        self._marker_waits.clear()
        if self._wait_fetch is None:
            return
        assert self._redis is not None and self._blocking is not None
        wants, pending = self._wait_fetch
        self._wait_fetch = None
        direct = self._blocking.direct
        client_id = direct.client_id if direct is not None else None
        try:
            if client_id is not None and not pending.done():
                await self._redis.run(unblock_client(client_id))
            timeout = self.settings.socket_timeout_seconds
            values = await asyncio.wait_for(asyncio.shield(pending), timeout)
        except (ConveyorError, TimeoutError) as exc:
            pending.cancel()
            pending.add_done_callback(_consume_result)
            log.warning(
                "could not end the wait for jobs (%r); a job its fetch leased, if any, returns "
                "to waiting when its lease expires",
                exc,
            )
            return
        leased = {
            commands: [(raw[0], raw[1]) for raw in result.jobs]
            for (commands, _), result in zip(wants, values[1:], strict=True)
            if result.jobs
        }
        if leased:
            await self._redis.run_many([c.release(items) for c, items in leased.items()])

    async def _wait_for_slot(self) -> None:
        self._slot_freed.clear()
        await _first_of(self._slot_freed.wait(), self._stopping.wait())

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    # -- running -------------------------------------------------------------------------------

    def _start(self, commands: QueueCommands, job: Job) -> None:
        running = _Running(commands, job)
        self._running[(commands.queue, job.id)] = running
        self._busy += 1
        running.task = asyncio.create_task(self._run(running), name=f"conveyor-job-{job.id}")

    async def _run(self, running: _Running) -> Outcome:
        try:
            outcome = await run_job(
                running.job,
                self._handler_table,
                max_result_bytes=self.settings.max_payload_bytes,
                strategies=self.strategies,
                executor=self._executor,
                on_thread=running.threads.append,
            )
        except asyncio.CancelledError:
            if not running.cancelling or self._stopping.is_set():
                raise  # shutdown: the job is handed back, not failed
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            outcome = Outcome(error="cancelled", retry_delay_ms=NO_RETRY)
        finally:
            self._free_slot_when_threads_end(running)
        self._outbox.append((running, outcome))
        self._outbox_ready.set()
        return outcome

    def _free_slot_when_threads_end(self, running: _Running) -> None:
        pending = [t for t in running.threads if not t.done()]
        if not pending:
            self._free_slot()
            return
        # A sync handler that timed out or was cancelled still runs in its thread; Python
        # cannot stop it. Its slot (and thread) stay taken until it returns.
        log.warning(
            "job %s: its sync handler is still running after the attempt ended; its slot is "
            "taken until the thread returns",
            running.job.id,
        )
        loop = asyncio.get_running_loop()
        pending[0].add_done_callback(lambda _: loop.call_soon_threadsafe(self._free_slot))

    def _free_slot(self) -> None:
        self._busy -= 1
        self._slot_freed.set()

    # -- acknowledging -------------------------------------------------------------------------

    async def _ack_loop(self) -> None:
        while not self._finished.is_set():
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            await self._flush_outbox()

    async def _flush_outbox(self, deadline: float | None = None) -> None:
        """Send every finished outcome; on a connection error keep them and try again (until
        ``deadline``, if given: then their leases expire and the jobs run again elsewhere).

        One flush at a time, so that shutdown never hands back a job whose completion is
        still on its way to Redis."""
        assert self._redis is not None
        async with self._ack_lock:
            failures = 0
            while self._outbox:
                batch, self._outbox = self._outbox, []
                try:
                    await self._acknowledge(batch)
                    failures = 0
                except CommandRefused as exc:
                    # Not an outage: Redis refused a script call. Record the outcomes one by one
                    # so that a single bad one cannot hold back the others.
                    await self._acknowledge_one_by_one(batch, exc)
                except ConnectionError as exc:
                    self._outbox = batch + self._outbox
                    failures += 1
                    delay = min(0.1 * 2**failures, 5.0)
                    if deadline is not None and time.monotonic() + delay > deadline:
                        log.error(
                            "gave up recording %d outcomes (%s); those jobs will run again",
                            len(self._outbox),
                            exc,
                        )
                        return
                    log.warning("could not record %d outcomes (%s); retrying", len(batch), exc)
                    await asyncio.sleep(delay)

    async def _acknowledge_one_by_one(
        self, batch: list[tuple[_Running, Outcome]], first_error: CommandRefused
    ) -> None:
        for item in batch:
            try:
                await self._acknowledge([item])
            except CommandRefused as exc:
                running = item[0]
                log.error(
                    "Redis refused to record the outcome of job %s in %s (%s); dropping it: the "
                    "job runs again once its lease expires",
                    running.job.id,
                    running.commands.queue,
                    exc,
                )
                self._running.pop((running.commands.queue, running.job.id), None)
            except ConnectionError:
                self._outbox.append(item)
        if len(batch) > 1:
            log.warning(
                "a batch of outcomes was refused (%s); recorded them one by one", first_error
            )

    async def _acknowledge(self, batch: list[tuple[_Running, Outcome]]) -> None:
        assert self._redis is not None
        ops: list[Op[Any]] = []
        completed: dict[QueueCommands, list[tuple[_Running, Outcome]]] = {}
        failed: list[tuple[_Running, Outcome]] = []
        for running, outcome in batch:
            if outcome.completed:
                completed.setdefault(running.commands, []).append((running, outcome))
            else:
                failed.append((running, outcome))
        for commands, items in completed.items():
            acks = [
                (r.job.id, r.job.token or "", o.result or "null", r.job.attempt) for r, o in items
            ]
            ops.append(commands.complete(acks))
        for running, outcome in failed:
            job = running.job
            record = outcome.attempt_record(job, self.id)
            ops.append(
                running.commands.fail(
                    job.id, job.token or "", outcome.error or "", record, outcome.retry_delay_ms
                )
            )
        replies = await self._redis.run_many(ops)
        lost: set[tuple[str, str]] = set()
        for (commands, _items), reply in zip(completed.items(), replies, strict=False):
            lost.update((commands.queue, job_id) for job_id in reply)
        for (running, _outcome), reply in zip(failed, replies[len(completed) :], strict=True):
            if reply == LEASE_LOST:
                lost.add((running.commands.queue, running.job.id))
        for running, outcome in batch:
            key = (running.commands.queue, running.job.id)
            if key in lost:
                log.warning(
                    "lease of job %s in %s was lost before it finished; its outcome was discarded "
                    "(another worker owns the job now)",
                    running.job.id,
                    running.commands.queue,
                )
            elif outcome.completed:
                self.processed += 1
                if log.isEnabledFor(logging.DEBUG):
                    log.debug(
                        "job %s (%s) completed",
                        running.job.id,
                        running.job.name,
                        extra=_log_fields(running, outcome),
                    )
            else:
                self.processed += 1
                self.failed += 1
                log.info(
                    "job %s (%s) failed: %s",
                    running.job.id,
                    running.job.name,
                    outcome.error,
                    extra=_log_fields(running, outcome),
                )
            self._running.pop(key, None)
        self._slot_freed.set()

    # -- housekeeping --------------------------------------------------------------------------

    async def _housekeeping_loop(self) -> None:
        # Renew well inside the lease; at least every 2 s so that cancel requests land quickly.
        interval = min(self.settings.lease_seconds / 3, 2.0)
        while not self._finished.is_set():
            try:
                await self._housekeeping()
            except ConnectionError as exc:
                log.warning("housekeeping failed (%s); will retry", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._finished.wait(), interval * (0.9 + random.random() * 0.2)
                )

    async def _housekeeping(self) -> None:
        """Renew leases, publish the heartbeat, recover other workers' stalled jobs."""
        assert self._redis is not None
        by_queue: dict[QueueCommands, list[_Running]] = {c: [] for c in self._commands}
        for running in self._running.values():
            by_queue[running.commands].append(running)
        info = self._info()
        ttl = self.settings.lease_seconds
        ops: list[Op[Any]] = []
        for commands, items in by_queue.items():
            ops.append(commands.extend_leases((r.job.id, r.job.token or "") for r in items))
            known = self._epochs.get(commands.queue, "")
            ops.append(commands.heartbeat(self.id, info, ttl, known))
            ops.append(commands.recover_stalled())
        replies = await self._redis.run_many(ops)
        for index, commands in enumerate(by_queue):
            lost_ids, cancel_ids = replies[index * 3]
            self._cancel_requested(commands.queue, cancel_ids)
            for job_id in lost_ids:
                lost = self._running.get((commands.queue, job_id))
                if lost is not None and not lost.lost:
                    lost.lost = True
                    log.warning(
                        "lost the lease of job %s in %s: another worker may run it; "
                        "this worker's outcome for it will be discarded",
                        job_id,
                        commands.queue,
                    )
            if self._check_epoch(commands.queue, replies[index * 3 + 1][1]):
                # The queue registry was lost with the data: list the queue again so that the
                # dashboard, API and CLI find it (and its recorded data loss).
                await self._redis.run(commands.register())
            recovered, failed = replies[index * 3 + 2]
            if recovered or failed:
                log.warning(
                    "queue %s: %d stalled jobs handed back, %d failed as stalled",
                    commands.queue,
                    recovered,
                    failed,
                )

    def _cancel_requested(self, queue: str, ids: list[str]) -> None:
        for job_id in ids:
            running = self._running.get((queue, job_id))
            if running is not None and running.task is not None and not running.cancelling:
                log.info("job %s in %s: cancel requested; stopping it", job_id, queue)
                running.cancelling = True
                running.task.cancel()

    def _check_epoch(self, queue: str, epoch: str) -> bool:
        """True (and a loud log) when the queue's epoch changed: Redis lost its data."""
        known = self._epochs.setdefault(queue, epoch)
        if epoch == known:
            return False
        self._epochs[queue] = epoch
        self.data_losses += 1
        log.error(
            "queue %s: Redis lost this queue's data (restarted without persistence, flushed, "
            "failed over to an empty replica, or the queue was obliterated); jobs queued "
            "before may be gone and running jobs cannot be acknowledged",
            queue,
        )
        return True

    def _info(self) -> str:
        return orjson.dumps(
            {
                "id": self.id,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "queues": [q.name for q in self.queues],
                "concurrency": self.concurrency,
                "busy": len(self._running),
                "processed": self.processed,
                "failed": self.failed,
                "started_at": int(self._started_at * 1000),
                "version": __version__,
            }
        ).decode()

    async def _say_goodbye(self) -> None:
        assert self._redis is not None
        with contextlib.suppress(ConnectionError):
            await self._redis.run_many([c.heartbeat(self.id, "", 0) for c in self._commands])

    # -- shutdown ------------------------------------------------------------------------------

    async def _drain(self) -> None:
        """Give running jobs the grace period, then cancel them and hand them back."""
        tasks = [r.task for r in self._running.values() if r.task is not None]
        if tasks:
            log.info("waiting up to %.0f s for %d running jobs", self.shutdown_grace, len(tasks))
            _done, pending = await asyncio.wait(tasks, timeout=self.shutdown_grace)

            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._flush_outbox(deadline=time.monotonic() + 10.0)
        leftovers = list(self._running.values())
        if not leftovers:
            return
        assert self._redis is not None
        by_queue: dict[QueueCommands, list[tuple[str, str]]] = {}
        for running in leftovers:
            by_queue.setdefault(running.commands, []).append(
                (running.job.id, running.job.token or "")
            )
        try:
            released = await self._redis.run_many([c.release(i) for c, i in by_queue.items()])
            log.warning("handed %d unfinished jobs back to their queues", sum(released))
        except ConnectionError as exc:
            log.error("could not hand jobs back (%s); they return when their lease expires", exc)
        self._running.clear()

    # -- JobContext ----------------------------------------------------------------------------

    def _check_token_reply(self, job: Job, reply: int) -> None:
        if reply == LEASE_LOST:
            # Tell the handler: another worker owns the job now, so its work here is moot.
            raise LeaseLost(
                f"job {job.id}: this worker's lease was lost (it expired and the job was handed "
                "to another worker, or the job was removed); progress and logs are not recorded",
                job.id,
            )

    def _commands_for(self, job: Job) -> QueueCommands:
        running = self._running.get((job.queue, job.id))
        if running is None:
            raise ConfigurationError(f"job {job.id} is not running on this worker")
        return running.commands

    async def _job_progress(self, job: Job, value: Any) -> None:
        assert self._redis is not None
        encoded = serializer.encode(value, self.settings.max_payload_bytes, what="progress")
        op = self._commands_for(job).update_progress(job.id, job.token or "", encoded)
        self._check_token_reply(job, await self._redis.run(op))

    async def _job_log(self, job: Job, line: str) -> None:
        assert self._redis is not None
        op = self._commands_for(job).append_log(job.id, job.token or "", line[:10_000])
        self._check_token_reply(job, await self._redis.run(op))

    async def _job_wait(self, job: Job, timeout: float | None) -> Any:
        queue = next(q for q in self.queues if q.name == job.queue)
        return await queue._job_wait(job, timeout)
