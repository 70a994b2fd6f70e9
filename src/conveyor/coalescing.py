"""Concurrent single adds sent together: one script call for the adds that queued up while an
earlier call was in flight.

A web app under load adds jobs from many tasks (or threads) at once. Each add is validated on
its own, in its caller (a bad add raises there and never joins a call); what is shared is the
round trip, and with it the client's and Redis's cost per call. A lone add finds nothing in
flight and goes out at once, as before; only adds that would otherwise have queued behind the
connection wait for the next call, which leaves as soon as the previous one is answered.

A call's jobs are added atomically, so when Redis refuses the call (out of memory, say) every
add in it raises that error: none of them was added. An add cancelled before its call left is
not sent at all.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from .job import Job
from .storage.commands import AddSpec

__all__ = ["AddCoalescer", "BlockingAddCoalescer"]

#: At most this many jobs, and about this many bytes of job data, go in one coalesced call: a
#: bounded call keeps one slow add from holding back the rest for long.
MAX_JOBS_PER_CALL = 100
MAX_BYTES_PER_CALL = 1 << 20

W = TypeVar("W")


def _take(pending: list[tuple[AddSpec, W]]) -> list[tuple[AddSpec, W]]:
    """The first adds of ``pending`` that fit in one call (always at least one), removed."""
    size, count = 0, 0
    for spec, _ in pending:
        size += len(spec.data) + len(spec.opts)
        if count and (count >= MAX_JOBS_PER_CALL or size > MAX_BYTES_PER_CALL):
            break
        count += 1
    taken = pending[:count]
    del pending[:count]
    return taken


class AddCoalescer:
    """Coalesces ``Queue.add`` calls made from tasks of one event loop."""

    def __init__(self, send: Callable[[Sequence[AddSpec]], Awaitable[list[Job]]]) -> None:
        self._send = send
        self._in_flight = False
        self._pending: list[tuple[AddSpec, asyncio.Future[Job]]] = []
        self._calls: set[asyncio.Future[None]] = set()  # referenced until done

    async def add(self, spec: AddSpec) -> Job:
        if not self._in_flight:
            self._in_flight = True
            try:
                return (await self._send((spec,)))[0]
            finally:
                self._next_call()
        future: asyncio.Future[Job] = asyncio.get_running_loop().create_future()
        entry = (spec, future)
        self._pending.append(entry)
        try:
            return await future
        except asyncio.CancelledError:
            if entry in self._pending:  # not sent yet: not added either
                self._pending.remove(entry)
            raise

    def _next_call(self) -> None:
        """Send what queued up during the call that just ended, or mark the line idle."""
        if not self._pending:
            self._in_flight = False
            return
        call = asyncio.ensure_future(self._call(_take(self._pending)))
        self._calls.add(call)
        call.add_done_callback(self._calls.discard)

    async def _call(self, batch: list[tuple[AddSpec, asyncio.Future[Job]]]) -> None:
        try:
            jobs = await self._send([spec for spec, _ in batch])
        except BaseException as exc:  # every add of the call shares its fate
            for _, future in batch:
                _settle(future, exc=exc)
            if not isinstance(exc, Exception):
                raise
        else:
            for (_, future), job in zip(batch, jobs, strict=True):
                _settle(future, job=job)
        finally:
            self._next_call()


def _settle(
    future: asyncio.Future[Job], job: Job | None = None, exc: BaseException | None = None
) -> None:
    if future.done():  # its caller was cancelled after the call left
        return
    if isinstance(exc, asyncio.CancelledError):
        future.cancel()
    elif exc is not None:
        future.set_exception(exc)
    else:
        assert job is not None
        future.set_result(job)


class _Waiter:
    """A thread's add waiting in line: its outcome, or the word that it is its turn to send."""

    __slots__ = ("done", "error", "job", "leads")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.job: Job | None = None
        self.error: BaseException | None = None
        self.leads = False


class BlockingAddCoalescer:
    """Coalesces ``SyncQueue.add`` calls made from several threads.

    The thread whose add finds nothing in flight sends it. Adds made meanwhile wait in line;
    when the call returns, the thread first in line is woken to send the next call, with its
    own add and those behind it, and so on: each thread sends at most one call, so none is kept
    busy sending for the others."""

    def __init__(self, send: Callable[[Sequence[AddSpec]], list[Job]]) -> None:
        self._send = send
        self._lock = threading.Lock()
        self._in_flight = False
        self._pending: list[tuple[AddSpec, _Waiter]] = []

    def add(self, spec: AddSpec) -> Job:
        waiter = _Waiter()
        with self._lock:
            if self._in_flight:
                self._pending.append((spec, waiter))
                batch = None
            else:
                self._in_flight = True
                batch = [(spec, waiter)]
        if batch is None:
            try:
                waiter.done.wait()
            except BaseException:  # interrupted in line (KeyboardInterrupt): leave the line
                with self._lock:
                    if (spec, waiter) in self._pending:
                        self._pending.remove((spec, waiter))
                        if waiter.leads:
                            self._hand_on()
                raise
            if waiter.leads:  # first in line when the last call returned: send the next one
                with self._lock:
                    batch = _take(self._pending)
        if batch is not None:
            self._call(batch)
        if waiter.error is not None:
            raise waiter.error
        assert waiter.job is not None
        return waiter.job

    def _call(self, batch: list[tuple[AddSpec, _Waiter]]) -> None:
        try:
            jobs = self._send([spec for spec, _ in batch])
        except BaseException as exc:  # every add of the call shares its fate
            for _, waiter in batch:
                _wake(waiter, error=exc)
        else:
            for (_, waiter), job in zip(batch, jobs, strict=True):
                _wake(waiter, job=job)
        finally:
            with self._lock:
                self._hand_on()

    def _hand_on(self) -> None:
        """Wake the first add in line to send the next call, or mark the line idle. Called
        with the lock held."""
        if self._pending:
            first = self._pending[0][1]
            first.leads = True
            first.done.set()
        else:
            self._in_flight = False


def _wake(waiter: _Waiter, job: Job | None = None, error: BaseException | None = None) -> None:
    waiter.job, waiter.error = job, error
    waiter.done.set()
