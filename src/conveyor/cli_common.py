"""Helpers shared by the command-line modules: exit codes, error mapping, common options."""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import click
import orjson

from . import eventloop
from .demo import DemoRedisError
from .errors import (
    CommandRefused,
    ConfigurationError,
    ConnectionError,
    ConveyorError,
    PayloadError,
    QueueNotFound,
    UnsafeRedisConfig,
    lookup,
)
from .procedures import make_settings
from .queue import Queue
from .settings import Settings

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_REDIS",
    "EXIT_UNSAFE_REDIS",
    "EXIT_USAGE",
    "CliError",
    "cli_settings",
    "confirm",
    "exit_code_for",
    "fail",
    "parse_duration",
    "print_json",
    "queue_for",
    "require_known_queue",
    "run_async",
    "url_option",
    "with_known_queue",
    "with_queue",
]

#: Exit codes, the same for every command (see ``conveyor.cli``).
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REDIS, EXIT_UNSAFE_REDIS = 0, 1, 2, 3, 4
#: The exit code of each error, looked up along its class hierarchy (``exit_code_for``).
EXIT_CODES: dict[type[Exception], int] = {
    ConveyorError: EXIT_ERROR,
    ConfigurationError: EXIT_USAGE,
    PayloadError: EXIT_USAGE,
    QueueNotFound: EXIT_USAGE,
    ConnectionError: EXIT_REDIS,
    CommandRefused: EXIT_REDIS,
    DemoRedisError: EXIT_REDIS,
    UnsafeRedisConfig: EXIT_UNSAFE_REDIS,
}

T = TypeVar("T")


class CliError(click.ClickException):
    """An error with a meaningful exit code, printed as ``error: message``."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = code  # type: ignore[misc]  # click declares it a class variable

    def show(self, file: Any = None) -> None:
        click.secho(f"error: {self.format_message()}", err=True, fg="red")


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    raise CliError(message, code)


def exit_code_for(error: ConveyorError) -> int:
    """The exit code a command ends with when ``error`` stops it."""
    code = lookup(type(error), EXIT_CODES)
    return EXIT_ERROR if code is None else code


def run_async(coro: Coroutine[Any, Any, T], *, freeze_heap: bool = False) -> T:
    """Run a coroutine, mapping Conveyor's exceptions onto exit codes (``freeze_heap``: see
    ``eventloop.run``)."""
    try:
        return eventloop.run(coro, freeze_heap=freeze_heap)
    except ConveyorError as exc:
        fail(str(exc), exit_code_for(exc))


# -- shared options ------------------------------------------------------------------------------


def url_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option(
        "--prefix",
        envvar="CONVEYOR_PREFIX",
        show_envvar=True,
        help="Key prefix in Redis [default: conveyor].",
    )(fn)
    return click.option(
        "--url",
        envvar=["CONVEYOR_URL", "REDIS_URL"],
        show_envvar=True,
        help="Redis URL [default: redis://localhost:6379/0].",
    )(fn)


def cli_settings(url: str | None, prefix: str | None) -> Settings:
    """Settings for a command: ``--url``/``--prefix`` over the environment, through the one
    ``procedures.make_settings``; a bad value exits with the usage code."""
    try:
        return make_settings(url or None, None, {"prefix": prefix} if prefix else {})
    except ConfigurationError as exc:
        fail(str(exc), EXIT_USAGE)


def queue_for(name: str, url: str | None, prefix: str | None) -> Queue:
    try:
        return Queue(name, settings=cli_settings(url, prefix))
    except ConfigurationError as exc:
        fail(str(exc), EXIT_USAGE)


async def with_queue(queue: Queue, action: Callable[[Queue], Awaitable[T]]) -> T:
    try:
        return await action(queue)
    finally:
        await queue.close()


#: An unknown-queue error names at most this many of the known queues.
KNOWN_QUEUES_SHOWN = 10


async def require_known_queue(settings: Settings, name: str) -> None:
    """``QueueNotFound`` (exit 2) unless a queue ``name`` is registered under the prefix; the
    message names the known queues, or the other prefixes that hold queues when there are
    none under this one."""
    from .admin import Admin

    async with Admin(settings=settings) as admin:
        admin.queue(name)  # a bad name is the usage error it always was
        known = await admin.queue_names()
        if name in known:
            return
        others = [] if known else await admin.other_prefixes()
    raise QueueNotFound(unknown_queue_message(name, known, settings.prefix, others))


def unknown_queue_message(
    name: str, known: list[str], prefix: str, other_prefixes: list[str]
) -> str:
    if known:
        shown = ", ".join(known[:KNOWN_QUEUES_SHOWN])
        more = f", ... ({len(known)} in all)" if len(known) > KNOWN_QUEUES_SHOWN else ""
        return f"unknown queue {name!r} (known: {shown}{more})"
    return f"unknown queue {name!r} (no queues under prefix {prefix!r})" + prefix_hint(
        other_prefixes
    )


def prefix_hint(other_prefixes: list[str]) -> str:
    """``; queues exist under --prefix other`` when other prefixes hold queues, else ''."""
    if not other_prefixes:
        return ""
    listed = ", ".join(repr(p) for p in other_prefixes[:KNOWN_QUEUES_SHOWN])
    example = other_prefixes[0]
    return f"; other prefixes hold queues: {listed} (try --prefix {example})"


async def with_known_queue(queue: Queue, action: Callable[[Queue], Awaitable[T]]) -> T:
    """``with_queue`` for a command on an existing queue: an unknown one is an error first."""
    try:
        await require_known_queue(queue.settings, queue.name)
        return await action(queue)
    finally:
        await queue.close()


def parse_duration(text: str) -> float:
    """``90``, ``45s``, ``30m``, ``1h30m``, ``2d``, ``1w`` -> seconds."""
    text = text.strip().lower()
    with contextlib.suppress(ValueError):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", text)
    if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        raise click.BadParameter(f"{text!r} is not a duration like 90s, 30m, 1h or 2d")
    factor = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    return sum(float(n) * factor[u] for n, u in parts)


def confirm(message: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        fail(f"{message} Refusing without --yes (no terminal to ask).", EXIT_USAGE)
    if not click.confirm(message, default=False, err=True):
        fail("cancelled", EXIT_ERROR)


def print_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode())
