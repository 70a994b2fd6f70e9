"""``conveyor schedules``: list a queue's job schedulers, and pause, resume, trigger or remove
one. ``conveyor.cli`` adds the group to the ``conveyor`` command."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import click

from .cli_common import confirm, print_json, queue_for, run_async, url_option, with_known_queue
from .errors import ScheduleNotFound
from .queue import Queue
from .schedules import Schedule

__all__ = ["schedules"]


class _ListByDefault(click.Group):
    """``conveyor schedules QUEUE`` lists (as ``conveyor schedules list QUEUE``)."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["list", *args]
        return super().resolve_command(ctx, args)


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return "-"
    seconds = (value - dt.datetime.now(dt.UTC)).total_seconds()
    stamp = value.isoformat(timespec="seconds").replace("+00:00", "Z")
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if abs(seconds) >= size or unit == "s":
            amount = f"{abs(seconds) / size:.0f}{unit}"
            return f"{stamp} ({'in ' + amount if seconds >= 0 else amount + ' ago'})"
    return stamp  # (not reached)


def _timetable(schedule: Schedule) -> str:
    if schedule.cron is not None:
        return f"cron {schedule.cron} ({schedule.tz})"
    return f"every {schedule.every:g}s"


@click.group(cls=_ListByDefault, no_args_is_help=True)
def schedules() -> None:
    """Job schedulers (cron / every): `conveyor schedules QUEUE` lists them; pause, resume,
    trigger and remove act on one."""


@schedules.command(name="list")
@click.argument("queue_name", metavar="QUEUE")
@url_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_schedules(queue_name: str, url: str | None, prefix: str | None, as_json: bool) -> None:
    """List the schedules of QUEUE: timetable, next run, last run, last job and its state."""
    queue = queue_for(queue_name, url, prefix)
    found: list[Schedule] = run_async(with_known_queue(queue, lambda q: q.schedules()))
    if as_json:
        print_json([s.to_dict() for s in found])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{queue_name}: {len(found)} schedules")
    for column in ("id", "job", "timetable", "next run", "last run", "last job", "runs"):
        table.add_column(column)
    for s in found:
        state = "paused" if s.paused else ("ended" if s.ended else _when(s.next_run))
        last_job = f"{s.last_job} ({s.last_job_state or 'gone'})" if s.last_job else "-"
        table.add_row(s.id, s.name, _timetable(s), state, _when(s.last_run), last_job, str(s.runs))
    Console().print(table)


#: What a subcommand does to one schedule: (queue, schedule id, its own options) -> the line
#: it prints.
_Action = Callable[[Queue, str, dict[str, Any]], Awaitable[str]]


def _on_one(
    name: str, doc: str, *options: Callable[[Any], Any], ask: str = ""
) -> Callable[[_Action], _Action]:
    """Add ``conveyor schedules NAME QUEUE ID`` running the decorated action. ``ask``: the
    question put before acting (answered by --yes)."""

    def add(action: _Action) -> _Action:
        def command(
            queue_name: str, schedule_id: str, url: str | None, prefix: str | None, **given: Any
        ) -> None:
            if ask:
                confirm(ask.format(id=schedule_id, queue=queue_name), given.pop("yes"))
            queue: Queue = queue_for(queue_name, url, prefix)
            click.echo(run_async(with_known_queue(queue, lambda q: action(q, schedule_id, given))))

        command.__doc__ = doc
        given_options = options
        if ask:
            yes = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
            given_options = (*options, yes)
        for option in reversed(given_options):
            command = option(command)
        command = url_option(command)
        command = click.argument("schedule_id", metavar="ID")(command)
        command = click.argument("queue_name", metavar="QUEUE")(command)
        schedules.command(name=name)(command)
        return action

    return add


@_on_one("pause", "Stop the ticks of schedule ID (its definition stays).")
async def _pause(queue: Queue, schedule_id: str, _: dict[str, Any]) -> str:
    changed = await queue.pause_schedule(schedule_id)
    return f"{queue.name}/{schedule_id}: paused" + ("" if changed else " (already)")


@_on_one("resume", "Tick again, from the first tick after now.")
async def _resume(queue: Queue, schedule_id: str, _: dict[str, Any]) -> str:
    changed = await queue.resume_schedule(schedule_id)
    return f"{queue.name}/{schedule_id}: resumed" + ("" if changed else " (was not paused)")


@_on_one(
    "trigger",
    "Run schedule ID once now (its timetable is unchanged); prints the job's id.",
    click.option(
        "--key",
        help="Idempotency key: a repeat with the same key prints the first run's job and "
        "adds none.",
    ),
)
async def _trigger(queue: Queue, schedule_id: str, given: dict[str, Any]) -> str:
    return (await queue.trigger_schedule(schedule_id, key=given["key"])).id


@_on_one(
    "remove",
    "Delete schedule ID (the jobs it made stay).",
    ask="Remove schedule {id!r} of {queue}?",
)
async def _remove(queue: Queue, schedule_id: str, _: dict[str, Any]) -> str:
    if not await queue.unschedule(schedule_id):
        raise ScheduleNotFound(f"no schedule {schedule_id!r} in queue {queue.name!r}")
    return f"{queue.name}/{schedule_id}: removed"
