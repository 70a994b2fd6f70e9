"""Process isolation: run a handler in a child process from a pool.

Use it for CPU-bound or untrusted sync code, or code that may hang or crash::

    from conveyor.isolation import isolated

    @queue.handler("resize")
    @isolated(processes=4, timeout=30, memory_limit_mb=512)
    def resize(job: Job) -> dict:
        ...

What it guarantees:

* **Timeouts really stop the work.** When the job's timeout (or ``isolated(timeout=)``)
  passes, the child is killed (SIGKILL) and the attempt fails with a "timeout" error; the
  pool starts a fresh child. Threads cannot be killed; processes can.
* **A crash fails only its job.** When the child dies (``os._exit``, a segfault, the OOM
  killer, or ``MemoryError`` under ``memory_limit_mb``), the attempt fails with
  ``WorkerLost: worker lost: ...`` (retried like any failure while attempts remain) and the pool
  replaces the child; other jobs keep flowing.
* ``Retry`` and ``Unrecoverable`` raised in the child keep their meaning; other exceptions are
  re-raised in the worker with the child's traceback attached.

The wrapped function is found in the child by module and qualified name (children are started
with the ``spawn`` method, so nothing of the worker's event loop, threads or sockets is
inherited): define it at module level. Async handlers work too (they get their own event loop
in the child) and may call ``job.update_progress`` and ``job.log``; the parent forwards both.
Arguments and results cross the process boundary with pickle, inside one machine.

The worker needs no change: the wrapper is an ordinary async handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import importlib
import inspect
import multiprocessing
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar, overload

from .errors import ConfigurationError, WorkerLost
from .job import Job

__all__ = ["IsolatedPool", "WorkerLost", "isolated"]

F = TypeVar("F", bound=Callable[..., Any])

_EXIT_OUT_OF_MEMORY = 70


class _RemoteTraceback(Exception):
    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return f'\n"""\n{self.tb}"""'


class _RemoteError(Exception):
    """An exception from the child that could not be sent back as itself."""


# -- the child process ---------------------------------------------------------------------------


class _ChildContext:
    """What ``job.update_progress`` / ``job.log`` do inside the child: tell the parent."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def _job_progress(self, job: Job, value: Any) -> None:
        self.conn.send(("progress", value))

    async def _job_log(self, job: Job, line: str) -> None:
        self.conn.send(("log", line))

    async def _job_wait(self, job: Job, timeout: float | None) -> Any:
        raise RuntimeError("a job cannot wait for itself")


def _resolve(module: str, qualname: str) -> Callable[..., Any]:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return getattr(obj, "__conveyor_isolated__", obj)  # type: ignore[no-any-return]


def _child_main(conn: Connection, memory_limit_mb: int | None) -> None:
    """Loop of a pool child: receive a job, run it, send back what happened."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when children stop
    if memory_limit_mb:
        import resource

        limit = memory_limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    loop = asyncio.new_event_loop()
    context = _ChildContext(conn)
    functions: dict[tuple[str, str], Callable[..., Any]] = {}
    while True:
        try:
            module, qualname, fields = conn.recv()
        except (EOFError, OSError):
            return  # the worker went away
        try:
            key = (module, qualname)
            if key not in functions:
                functions[key] = _resolve(module, qualname)
            fn = functions[key]
            job = Job(**fields, _context=context)
            value = loop.run_until_complete(fn(job)) if inspect.iscoroutinefunction(fn) else fn(job)
            if inspect.isawaitable(value):
                value = loop.run_until_complete(value)
            conn.send(("ok", value))
        except MemoryError:
            with contextlib.suppress(Exception):
                conn.send(("lost", f"out of memory (limit {memory_limit_mb} MB)"))
            os._exit(_EXIT_OUT_OF_MEMORY)
        except BaseException as exc:
            tb = traceback.format_exc()
            try:
                payload = pickle.dumps(exc)
                pickle.loads(payload)
                conn.send(("error", exc, tb))
            except Exception:
                conn.send(("error", _RemoteError(f"{type(exc).__name__}: {exc}"), tb))
            if not isinstance(exc, Exception):
                return


# -- the parent side -----------------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class _Child:
    process: BaseProcess
    conn: Connection

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()
        self.process.join(5)
        with contextlib.suppress(Exception):
            self.conn.close()


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "it stopped answering"
    if code == _EXIT_OUT_OF_MEMORY:
        return "it ran out of memory"
    if code < 0:
        try:
            return f"it was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"it was killed by signal {-code}"
    return f"it exited with code {code}"


async def _readable(*fds: int) -> None:
    """Wait until one of ``fds`` is readable (or closed)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not future.done():
            future.set_result(None)

    for fd in fds:
        loop.add_reader(fd, ready)
    try:
        await future
    finally:
        for fd in fds:
            loop.remove_reader(fd)


class IsolatedPool:
    """Up to ``processes`` child processes, started on demand and replaced when one dies."""

    def __init__(self, processes: int, memory_limit_mb: int | None = None) -> None:
        if processes < 1:
            raise ConfigurationError(f"processes must be at least 1, not {processes}")
        self.processes = processes
        self.memory_limit_mb = memory_limit_mb
        self.replaced = 0
        self._context = multiprocessing.get_context("spawn")
        self._idle: list[_Child] = []
        self._live = 0
        self._freed: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _start_child(self) -> _Child:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_child_main,
            args=(child, self.memory_limit_mb),
            name="conveyor-isolated",
            daemon=True,
        )
        process.start()
        child.close()
        return _Child(process, parent)

    async def _acquire(self) -> _Child:
        loop = asyncio.get_running_loop()
        if self._freed is None or self._loop is not loop:
            # First use, or used from a new event loop (a new worker run): start afresh.
            self.close()
            self._live = 0
            self._freed, self._loop = asyncio.Condition(), loop
        async with self._freed:
            while True:
                while self._idle:
                    child = self._idle.pop()
                    if child.process.is_alive():
                        return child
                    self._live -= 1
                    child.kill()
                if self._live < self.processes:
                    self._live += 1
                    try:
                        return self._start_child()
                    except BaseException:
                        self._live -= 1
                        raise
                await self._freed.wait()

    async def _release(self, child: _Child, healthy: bool) -> None:
        assert self._freed is not None
        if healthy:
            self._idle.append(child)
        else:
            await asyncio.get_running_loop().run_in_executor(None, child.kill)
            self._live -= 1
            self.replaced += 1
        async with self._freed:
            self._freed.notify()

    async def run(self, fn: Callable[..., Any], job: Job) -> Any:
        """Run ``fn(job)`` in a child; progress and log lines are forwarded to ``job``."""
        child = await self._acquire()
        healthy = False
        try:
            fields = {
                f.name: getattr(job, f.name)
                for f in dataclasses.fields(job)
                if f.name not in ("_context", "token")
            }
            child.conn.send((fn.__module__, fn.__qualname__, fields))
            while True:
                if not child.conn.poll():
                    await _readable(child.conn.fileno(), child.process.sentinel)
                if child.conn.poll():
                    try:
                        message = child.conn.recv()
                    except (EOFError, OSError):
                        message = None
                else:
                    message = None
                if message is None:
                    if child.process.is_alive() and not child.conn.closed:
                        continue
                    await asyncio.get_running_loop().run_in_executor(None, child.process.join, 5)
                    raise WorkerLost(
                        "worker lost: the process running the job died "
                        f"({_describe_exit(child.process.exitcode)})"
                    )
                kind = message[0]
                if kind == "progress":
                    await job.update_progress(message[1])
                elif kind == "log":
                    await job.log(message[1])
                elif kind == "ok":
                    healthy = True
                    return message[1]
                elif kind == "lost":
                    raise WorkerLost(f"worker lost: {message[1]}")
                else:
                    _kind, exc, tb = message
                    healthy = True
                    exc.__cause__ = _RemoteTraceback(tb)
                    raise exc
        finally:
            await asyncio.shield(self._release(child, healthy))

    def close(self) -> None:
        """Kill every child (running jobs fail); the pool starts new ones if used again."""
        for child in self._idle:
            child.kill()
        self._live -= len(self._idle)
        self._idle.clear()


@overload
def isolated(fn: F, /) -> F: ...


@overload
def isolated(
    *,
    processes: int | None = None,
    timeout: float | None = None,
    memory_limit_mb: int | None = None,
) -> Callable[[F], F]: ...


def isolated(
    fn: Any = None,
    /,
    *,
    processes: int | None = None,
    timeout: float | None = None,
    memory_limit_mb: int | None = None,
) -> Any:
    """Make a handler run in a child process from its own pool (see the module docstring).

    ``processes``: pool size (default: the number of CPUs). ``timeout``: seconds after which
    the child is killed, when the job sets no (shorter) timeout itself. ``memory_limit_mb``:
    address-space limit of each child; going over it counts as a crash ("worker lost").
    """

    def decorate(target: Callable[..., Any]) -> Any:
        if "<locals>" in target.__qualname__:
            raise ConfigurationError(
                f"isolated handler {target.__qualname__!r} must be defined at module level "
                "(the child process imports it by name)"
            )
        pool = IsolatedPool(processes or os.cpu_count() or 2, memory_limit_mb)

        @functools.wraps(target)
        async def handler(job: Job) -> Any:
            if timeout is None:
                return await pool.run(target, job)
            try:
                async with asyncio.timeout(timeout):
                    return await pool.run(target, job)
            except TimeoutError:
                raise TimeoutError(
                    f"timeout: the isolated handler ran longer than {timeout:g} s; its process "
                    "was killed"
                ) from None

        handler.__conveyor_isolated__ = target  # type: ignore[attr-defined]
        handler.pool = pool  # type: ignore[attr-defined]
        return handler

    if fn is not None:
        return decorate(fn)
    return decorate


if sys.platform == "win32":  # pragma: no cover
    raise ImportError("conveyor.isolation needs a POSIX system")
