"""``conveyor schedules``: list a queue's job schedulers, and pause, resume, trigger or remove
one. ``conveyor.cli`` adds the group to the ``conveyor`` command."""

from __future__ import annotations

import datetime as dt
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


def _act(queue_name: str, url: str | None, prefix: str | None, action: Any) -> Any:
    queue: Queue = queue_for(queue_name, url, prefix)
    return run_async(with_known_queue(queue, action))


@schedules.command(name="pause")
@click.argument("queue_name", metavar="QUEUE")
@click.argument("schedule_id", metavar="ID")
@url_option
def pause_schedule(queue_name: str, schedule_id: str, url: str | None, prefix: str | None) -> None:
    """Stop the ticks of schedule ID (its definition stays)."""
    changed = _act(queue_name, url, prefix, lambda q: q.pause_schedule(schedule_id))
    click.echo(f"{queue_name}/{schedule_id}: paused" + ("" if changed else " (already)"))


@schedules.command(name="resume")
@click.argument("queue_name", metavar="QUEUE")
@click.argument("schedule_id", metavar="ID")
@url_option
def resume_schedule(queue_name: str, schedule_id: str, url: str | None, prefix: str | None) -> None:
    """Tick again, from the first tick after now."""
    changed = _act(queue_name, url, prefix, lambda q: q.resume_schedule(schedule_id))
    click.echo(f"{queue_name}/{schedule_id}: resumed" + ("" if changed else " (was not paused)"))


@schedules.command(name="trigger")
@click.argument("queue_name", metavar="QUEUE")
@click.argument("schedule_id", metavar="ID")
@url_option
def trigger_schedule(
    queue_name: str, schedule_id: str, url: str | None, prefix: str | None
) -> None:
    """Run schedule ID once now (its timetable is unchanged); prints the job's id."""
    job = _act(queue_name, url, prefix, lambda q: q.trigger_schedule(schedule_id))
    click.echo(job.id)


@schedules.command(name="remove")
@click.argument("queue_name", metavar="QUEUE")
@click.argument("schedule_id", metavar="ID")
@url_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def remove_schedule(
    queue_name: str, schedule_id: str, url: str | None, prefix: str | None, yes: bool
) -> None:
    """Delete schedule ID (the jobs it made stay)."""
    confirm(f"Remove schedule {schedule_id!r} of {queue_name}?", yes)

    async def remove(q: Queue) -> None:
        if not await q.unschedule(schedule_id):
            raise ScheduleNotFound(f"no schedule {schedule_id!r} in queue {queue_name!r}")

    _act(queue_name, url, prefix, remove)
    click.echo(f"{queue_name}/{schedule_id}: removed")
