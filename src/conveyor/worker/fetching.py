"""The fetch loop: leases as many jobs as there are free slots, one round trip per queue; when
the queues are empty it blocks on their marker keys (BZPOPMIN), woken by an add, a resume or
the next delayed job coming due: no polling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from ..errors import CommandRefused, ConnectionError, ConveyorError
from ..settings import Settings
from ..storage.commands import Op, QueueCommands, unblock_client, wait_for_marker
from ..storage.protocol import FetchReply
from .interfaces import BlockingOpRunner, FetchHost, OpRunner

__all__ = ["FetchRound", "Fetcher"]

log = logging.getLogger("conveyor.worker")


class FetchRound(NamedTuple):
    """What a round of fetches (one per queue asked) came to."""

    got: int
    asked: int
    #: Seconds until the earliest delayed job is due, or None.
    next_due: float | None
    #: This worker was taken for dead (see ``liveness``): nothing is leased to it until its
    #: next liveness beat lists it again.
    reclaimed: bool = False

    @classmethod
    def of(cls, asked: int, replies: Sequence[FetchReply]) -> FetchRound:
        dues = [r.next_due_ms / 1000 for r in replies if r.next_due_ms is not None]
        got = sum(len(r.jobs) for r in replies)
        reclaimed = any(r.reclaimed for r in replies)
        return cls(got, asked, min(dues) if dues else None, reclaimed)


async def first_of(*awaitables: Any) -> None:
    """Wait until the first of ``awaitables`` finishes; the others are cancelled unless they
    are futures the caller passed in (those are the caller's to finish)."""
    futures = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future, given in zip(futures, awaitables, strict=True):
            if future is not given and not future.done():
                future.cancel()


def _consume_result(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class Fetcher:
    def __init__(
        self,
        host: FetchHost,
        queues: list[QueueCommands],
        settings: Settings,
        store: OpRunner,
        blocking: BlockingOpRunner,
        stopping: asyncio.Event,
    ) -> None:
        self._host = host
        self._queues = queues
        self._settings = settings
        self._store = store
        self._blocking = blocking
        self._stopping = stopping
        self._marker_waits: dict[tuple[str, ...], asyncio.Future[Any]] = {}
        #: A wait on the markers with fetches queued behind it: (what each asks for, reply).
        self._wait_fetch: tuple[list[tuple[QueueCommands, int]], asyncio.Future[Any]] | None = None
        #: Flow control: queues whose rate limit (or a hold) lets no job out, until this
        #: (monotonic) time, as their fetch said: they are neither fetched from nor waited on.
        self._held: dict[QueueCommands, float] = {}

    async def run(self) -> None:
        """Fetch until stopping (or, in burst mode, until the queues are empty)."""
        host = self._host
        failures = 0
        waited: FetchRound | None = None
        while not self._stopping.is_set():
            last_wait, waited = waited, None
            if host.limit_reached():
                if not host.holds_jobs():
                    return
                await host.wait_until_settled()
                continue
            if self._held and self._all_held():
                await self._sleep_unless_stopping(self._held_for())
                continue
            if host.fetchable() <= 0:
                await host.wait_for_slot()
                # Let the jobs that finish in the same tick free their slots too, so the next
                # fetch takes several jobs instead of one per round trip.
                await asyncio.sleep(0)
                continue
            if last_wait is not None and last_wait.got < last_wait.asked:
                # The fetch behind the wait just found the queues drained: another fetch now
                # would find the same, so go back to waiting (an add since sets a marker).
                done = last_wait
            else:
                try:
                    done = await self._fetch_once()
                    failures = 0
                except (ConnectionError, CommandRefused) as exc:
                    # A refusal (e.g. an ACL change) is not transient, but the worker keeps
                    # its running jobs and tries again rather than stopping over it.
                    failures += 1
                    delay = min(0.1 * 2**failures, 5.0) * (0.5 + random.random() / 2)
                    log.warning("fetch failed (%s); retrying in %.1f s", exc, delay)
                    await self._sleep_unless_stopping(delay)
                    continue
            if done.reclaimed:
                await self._sleep_unless_stopping(self._settings.liveness_beat_seconds)
                continue
            if done.got >= done.asked:
                continue
            if host.burst and done.got == 0 and not self._held:
                if not host.holds_jobs():
                    return
                await host.wait_until_settled()
                continue
            waited = await self._block_for_work(done.next_due)

    def _wants(self) -> list[tuple[QueueCommands, int]]:
        """How many jobs to ask each queue for at once, in queue order."""
        free = self._host.fetchable()
        wants = []
        for commands in self._queues:
            if self._held and self._is_held(commands):
                continue
            want = min(free, self._settings.fetch_size)
            if want <= 0:
                break
            wants.append((commands, want))
            free -= want
        return wants

    async def _fetch_once(self) -> FetchRound:
        """One fetch round trip per queue, in order. Queues are asked one at a time, so slots
        a queue could not fill are offered to the next."""
        asked, replies = 0, []
        for commands in self._queues:
            if self._held and self._is_held(commands):
                continue
            want = min(self._host.fetchable(), self._settings.fetch_size)
            if want <= 0:
                break
            asked += want
            reply = await self._store.run(commands.fetch(self._host.id, want))
            self._host.start(commands, reply)
            if reply.limited_ms is not None:
                self._hold(commands, reply.limited_ms)
            replies.append(reply)
        return FetchRound.of(asked, replies)

    # -- flow control: queues held back by their rate limit --------------------------------

    def _hold(self, commands: QueueCommands, ms: int) -> None:
        self._held[commands] = time.monotonic() + ms / 1000

    def _is_held(self, commands: QueueCommands) -> bool:
        until = self._held.get(commands)
        if until is None:
            return False
        if until > time.monotonic():
            return True
        del self._held[commands]
        return False

    def _all_held(self) -> bool:
        return all([self._is_held(commands) for commands in self._queues])

    def _held_for(self) -> float:
        """Seconds until the first held queue may have a job again."""
        now = time.monotonic()
        return max(min(self._held.values(), default=now) - now, 0.001)

    async def _block_for_work(self, next_due: float | None) -> FetchRound | None:
        """Sleep on the queues' marker keys until an add, a due delayed job, or the idle wake;
        returns what the fetch queued behind the wait got, where there is one.

        One BZPOPMIN covers every queue; on a Cluster, whose queues live in different slots,
        each queue gets its own, and a wait that did not fire is kept for the next round."""
        timeout = self._settings.idle_wake_seconds
        if next_due is not None:
            timeout = min(timeout, max(next_due, 0.001))
        queues = self._queues
        if self._held:
            if self._all_held():  # nothing may be fetched: no wake-up can change that
                await self._sleep_unless_stopping(self._held_for())
                return None
            timeout = min(timeout, self._held_for())
            queues = [c for c in queues if not self._is_held(c)]
        if self._blocking.direct is not None:
            return await self._wait_then_fetch(timeout)
        markers = [c.keys.marker for c in queues]
        groups = [(m,) for m in markers] if self._blocking.is_cluster else [tuple(markers)]
        for group in groups:
            if group not in self._marker_waits:
                block = self._blocking.run(wait_for_marker(group, timeout))
                self._marker_waits[group] = asyncio.ensure_future(block)
        await first_of(*self._marker_waits.values(), self._stopping.wait(), asyncio.sleep(timeout))
        for group, waiting in list(self._marker_waits.items()):
            if not waiting.done():
                continue
            del self._marker_waits[group]
            if not waiting.cancelled() and (error := waiting.exception()) is not None:
                # Only a wake-up hint failed: fetching still works (or reports its own errors).
                log.warning("waiting for jobs failed (%r); retrying", error)
                await self._sleep_unless_stopping(min(timeout, 1.0))
        return None

    async def _wait_then_fetch(self, timeout: float) -> FetchRound | None:
        """Block on the markers with the next fetch queued behind the wait on the same
        connection. Redis holds a client's later commands while one blocks, so the fetch runs
        the moment an add (or the timeout) ends the wait: a job added while the worker idles
        starts one round trip after the add instead of two."""
        wants = self._wants()
        queues = [c for c in self._queues if not (self._held and self._is_held(c))]
        markers = tuple(c.keys.marker for c in queues)
        ops: list[Op[Any]] = [wait_for_marker(markers, timeout)]
        ops += [commands.fetch(self._host.id, want) for commands, want in wants]
        pending = asyncio.ensure_future(self._blocking.run_many(ops))
        self._wait_fetch = (wants, pending)
        # The jobs start from the reply's own callback: waking this coroutine first would put
        # two more turns of the event loop (and the next fetch) between the reply and the job.
        pending.add_done_callback(self._start_waited_for)
        await first_of(pending, self._stopping.wait())
        if not pending.done():
            return None  # stopping: end_waits reads the reply and hands back what it leased
        if pending.cancelled():
            return None
        if (error := pending.exception()) is not None:
            if not isinstance(error, ConnectionError | CommandRefused):
                raise error
            log.warning("waiting for jobs failed (%r); retrying", error)
            await self._sleep_unless_stopping(min(timeout, 1.0))
            return None
        if len(wants) < len(self._queues):
            # The free slots went to the queues before the rest: the wake may have been for a
            # queue this fetch did not ask, so only a full round of fetches can tell.
            return None
        return FetchRound.of(sum(want for _, want in wants), pending.result()[1:])

    def _start_waited_for(self, pending: asyncio.Future[Any]) -> None:
        """Start what the fetch behind the idle wait leased, unless stopping took it over."""
        if self._wait_fetch is None or self._wait_fetch[1] is not pending:
            return
        wants, _ = self._wait_fetch
        self._wait_fetch = None
        if pending.cancelled() or pending.exception() is not None:
            return  # _wait_then_fetch reports it
        for (commands, _), reply in zip(wants, pending.result()[1:], strict=True):
            self._host.start(commands, reply)
            if reply.limited_ms is not None:
                self._hold(commands, reply.limited_ms)

    async def end_waits(self) -> None:
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
        wants, pending = self._wait_fetch
        self._wait_fetch = None
        direct = self._blocking.direct
        client_id = direct.client_id if direct is not None else None
        try:
            if client_id is not None and not pending.done():
                await self._store.run(unblock_client(client_id))
            timeout = self._settings.socket_timeout_seconds
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
            commands: [(job.id, job.token) for job in reply.jobs]
            for (commands, _), reply in zip(wants, values[1:], strict=True)
            if reply.jobs
        }
        if leased:
            await self._store.run_many([c.release(items) for c, items in leased.items()])

    async def heal(self, since: float) -> None:
        """The link to Redis came back at ``since`` (the loop's clock) after an outage: end a
        wait for jobs that the outage may have left hanging, so the worker fetches again now
        rather than after the wait's read timeout. A wait the server still holds is ended by
        CLIENT UNBLOCK, which keeps its reply (and the fetch behind it); one whose request or
        reply was lost is broken off (the server dropped it, or answered into the void)."""
        for waiting in self._marker_waits.values():
            waiting.cancel()  # wake-up hints only: the next round asks again
        if self._wait_fetch is None or self._blocking.direct is None:
            return
        _, pending = self._wait_fetch
        direct = self._blocking.direct
        client_id = direct.client_id
        if client_id is not None:
            with contextlib.suppress(ConveyorError, TimeoutError):
                async with asyncio.timeout(self._settings.socket_timeout_seconds):
                    if await self._store.run(unblock_client(client_id)):
                        return
        if not pending.done() and direct.reset_if_stuck(since):
            log.info("the link to Redis is back: the wait for jobs it left hanging was ended")

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
