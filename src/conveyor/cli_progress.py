"""What ``conveyor enqueue --wait`` says on stderr while it waits: the job's transitions
(running, progress, a failed attempt and its retry), read from the queue's event stream."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import click

from .errors import ConveyorError
from .events import Event
from .queue import Queue

__all__ = ["report_progress"]

#: The events ``enqueue --wait`` reports, and what it prints for each.
_REPORTED: dict[str, Callable[[Event], str]] = {
    "active": lambda e: "running",
    "progress": lambda e: f"progress {e.fields.get('progress', '?')}",
    "retrying": lambda e: (
        f"attempt {e.fields.get('attempt', '?')} failed ({_last_line(e.fields.get('error'))}); "
        f"retrying in {float(e.fields.get('delay') or 0) / 1000:g} s"
    ),
    "stalled": lambda e: "its worker went away; it runs again",
}


def _last_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[-1][:200] if lines else "no message"


async def report_progress(queue: Queue, job_id: str, after: str) -> None:
    """Print the job's transitions (running, progress, retries) to stderr as they happen."""
    with contextlib.suppress(ConveyorError):  # a report that breaks off never fails the wait
        async for event in queue.events(after=after):
            describe = _REPORTED.get(event.event)
            if event.job_id == job_id and describe is not None:
                click.echo(f"job {job_id}: {describe(event)}", err=True)
