"""Poll a condition until it holds, with a deadline (never a fixed sleep)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

Message = str | Callable[[], str]


def _render(message: Message, timeout: float, last_error: BaseException | None) -> str:
    text = message() if callable(message) else message
    text = f"{text} (not true after {timeout:.2f}s)"
    if last_error is not None:
        text += f"; last error: {last_error!r}"
    return text


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 5.0,
    interval: float = 0.01,
    message: Message = "condition was not met",
    *,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``predicate`` until it returns a truthy value, and return that value.

    Raises :class:`AssertionError` carrying ``message`` (a string, or a callable that
    builds one lazily) when ``timeout`` seconds pass first. Exceptions of the types in
    ``ignore`` count as "not yet"; any other exception propagates at once. The predicate
    is always tried at least once, and once more at the deadline.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        expired = time.monotonic() >= deadline
        try:
            result = predicate()
        except ignore as exc:
            last_error = exc
        else:
            if result:
                return result
        if expired:
            raise AssertionError(_render(message, timeout, last_error))
        time.sleep(max(0.0, min(interval, deadline - time.monotonic())))


@overload
async def async_wait_for(
    predicate: Callable[[], Awaitable[T]],
    timeout: float = ...,
    interval: float = ...,
    message: Message = ...,
    *,
    ignore: tuple[type[BaseException], ...] = ...,
) -> T: ...


@overload
async def async_wait_for(
    predicate: Callable[[], T],
    timeout: float = ...,
    interval: float = ...,
    message: Message = ...,
    *,
    ignore: tuple[type[BaseException], ...] = ...,
) -> T: ...


async def async_wait_for(
    predicate: Callable[[], Any],
    timeout: float = 5.0,
    interval: float = 0.01,
    message: Message = "condition was not met",
    *,
    ignore: tuple[type[BaseException], ...] = (),
) -> Any:
    """Async :func:`wait_for`: ``predicate`` may be sync or return an awaitable.

    Sleeps with ``asyncio.sleep`` between tries, so the event loop keeps running.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        expired = time.monotonic() >= deadline
        try:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
        except ignore as exc:
            last_error = exc
        else:
            if result:
                return result
        if expired:
            raise AssertionError(_render(message, timeout, last_error))
        await asyncio.sleep(max(0.0, min(interval, deadline - time.monotonic())))
