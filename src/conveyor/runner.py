"""Runs ONE job: finds its handler, applies the timeout, and turns what happened into an
``AttemptOutcome``.

The runner never talks to Redis; the worker acknowledges the outcome (together with others).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import dataclasses
import inspect
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import Any

import orjson

from . import serializer
from .backoff import BackoffStrategy
from .errors import PayloadError, Retry, Unrecoverable
from .flow_control import RateLimited
from .job import Job
from .tracebacks import format_exception

__all__ = ["NO_RETRY", "AttemptOutcome", "Handlers", "run_job"]

NO_RETRY = -1


@dataclasses.dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """What one attempt came to. ``result`` is set when it completed, ``error`` when it failed."""

    result: str | None = None
    error: str | None = None
    traceback: str | None = None
    #: After a failure: retry in this many ms (if attempts remain), or NO_RETRY.
    retry_delay_ms: int = NO_RETRY
    duration_ms: int = 0
    #: Flow control: the handler raised RateLimited; hold its group (or queue) this many ms.
    hold_ms: int | None = None

    @property
    def completed(self) -> bool:
        return self.error is None

    def attempt_record(self, job: Job, worker_id: str) -> str:
        """The entry kept in the job's attempt history."""
        return orjson.dumps(
            {
                "attempt": job.attempt,
                "error": self.error,
                "traceback": self.traceback,
                "worker": worker_id,
                "at": int(time.time() * 1000),
                "duration_ms": self.duration_ms,
            }
        ).decode()


def _failure(
    message: str, exc: BaseException | None = None, retry_ms: int = NO_RETRY
) -> AttemptOutcome:
    tb = format_exception(exc) if exc is not None else None
    return AttemptOutcome(error=message, traceback=tb, retry_delay_ms=retry_ms)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Handlers:
    """A worker's handlers by job name, each with its kind worked out once (async or not)."""

    def __init__(self, handlers: Mapping[str, Callable[[Job], Any]]) -> None:
        self._table = {name: (fn, inspect.iscoroutinefunction(fn)) for name, fn in handlers.items()}

    def get(self, name: str) -> tuple[Callable[[Job], Any], bool] | None:
        return self._table.get(name)

    def names(self) -> list[str]:
        return sorted(self._table)


async def _call(
    handler: Callable[[Job], Any],
    is_async: bool,
    job: Job,
    executor: Executor,
    on_thread: Callable[[concurrent.futures.Future[Any]], None],
) -> Any:
    if is_async:
        return await handler(job)
    context = contextvars.copy_context()
    thread = executor.submit(context.run, handler, job)
    # The worker learns when the thread really ends: a timeout stops waiting, not the thread.
    on_thread(thread)
    value = await asyncio.wrap_future(thread)
    if inspect.isawaitable(value):  # a sync callable that returned a coroutine (e.g. a partial)
        value = await value
    return value


def _retry_delay(job: Job, exc: BaseException, strategies: Mapping[str, BackoffStrategy]) -> int:
    if isinstance(exc, Retry) and exc.delay is not None:
        return int(exc.delay * 1000)
    if job.backoff is None:
        return 0
    try:
        return int(job.backoff.seconds(job.attempt, exc, strategies) * 1000)
    except Exception:  # a broken custom strategy must not lose the retry
        return 0


async def run_job(
    job: Job,
    handlers: Handlers,
    *,
    max_result_bytes: int,
    strategies: Mapping[str, BackoffStrategy],
    executor: Executor,
    on_thread: Callable[[concurrent.futures.Future[Any]], None] = lambda _: None,
) -> AttemptOutcome:
    """Run the job's handler once. Cancellation of the calling task (shutdown, cancel request)
    propagates; anything the handler raises, ``CancelledError`` included, is an outcome."""
    if job.decode_error:
        return _failure(f"malformed job in Redis: {job.decode_error}")
    entry = handlers.get(job.name)
    if entry is None:
        known = ", ".join(handlers.names()) or "none"
        return _failure(f"no handler for job name {job.name!r} on this worker (handlers: {known})")
    handler, is_async = entry
    started = time.perf_counter()
    try:
        if job.timeout is not None:
            async with asyncio.timeout(job.timeout):
                value = await _call(handler, is_async, job, executor, on_thread)
        else:
            value = await _call(handler, is_async, job, executor, on_thread)
    except TimeoutError as exc:
        elapsed = time.perf_counter() - started
        if job.timeout is not None and elapsed >= job.timeout * 0.999:
            message = f"timeout: the job ran longer than {job.timeout:g} s and was cancelled"
        else:
            message = _describe(exc)
        return _failed_after(started, message, exc, _retry_delay(job, exc, strategies))
    except Unrecoverable as exc:
        return _failed_after(started, _describe(exc), exc, NO_RETRY)
    except RateLimited as exc:  # flow control: back to waiting, no attempt used
        duration_ms = int((time.perf_counter() - started) * 1000)
        hold_ms = max(int(exc.delay * 1000), 1)
        return AttemptOutcome(error=str(exc), hold_ms=hold_ms, duration_ms=duration_ms)
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # the worker cancelled this attempt
        # The handler's own CancelledError (a cancelled future it awaited): an ordinary failure.
        return _failed_after(started, _describe(exc), exc, _retry_delay(job, exc, strategies))
    except (Exception, KeyboardInterrupt, SystemExit) as exc:
        # SystemExit/KeyboardInterrupt raised by a handler must not take the worker down.
        return _failed_after(started, _describe(exc), exc, _retry_delay(job, exc, strategies))
    duration_ms = int((time.perf_counter() - started) * 1000)
    try:
        result = serializer.encode(value, max_result_bytes, what="the job's result")
    except PayloadError as exc:
        return _failure(str(exc), exc)
    return AttemptOutcome(result=result, duration_ms=duration_ms)


def _failed_after(
    started: float, message: str, exc: BaseException, retry_ms: int
) -> AttemptOutcome:
    duration_ms = int((time.perf_counter() - started) * 1000)
    return dataclasses.replace(_failure(message, exc, retry_ms), duration_ms=duration_ms)
