"""Operator commands: jobs, show, enqueue, retry, remove, clean, pause, resume.

They are plain click commands; ``conveyor.cli`` adds them to the ``conveyor`` group.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Awaitable, Callable
from typing import Any

import click
import orjson

from .admin import Admin
from .backoff import Backoff
from .cli_common import (
    EXIT_USAGE,
    cli_settings,
    confirm,
    fail,
    parse_duration,
    print_json,
    queue_for,
    require_known_queue,
    run_async,
    url_option,
    with_known_queue,
    with_queue,
)
from .cli_progress import report_progress
from .errors import JobFailed, WaitTimeout
from .job import CLEANABLE_STATES, Job, JobState
from .procedures import Progress
from .queue import Queue
from .settings import Settings

__all__ = ["COMMANDS"]


def _age(ms: int | None) -> str:
    if not ms:
        return "-"
    seconds = max(0.0, time.time() - ms / 1000)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


@click.command()
@click.argument("queue_name", metavar="QUEUE")
@url_option
@click.option(
    "--state",
    "-s",
    type=click.Choice([s.value for s in JobState]),
    default="waiting",
    show_default=True,
    help="List the jobs in this state.",
)
@click.option(
    "--limit",
    "-n",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Show at most this many jobs.",
)
@click.option("--oldest-first", is_flag=True, help="Oldest first (default: newest first).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    envvar="CONVEYOR_JOBS_JSON",
    show_envvar=True,
    help="Print JSON instead of a table.",
)
def jobs(
    queue_name: str,
    url: str | None,
    prefix: str | None,
    state: str,
    limit: int,
    oldest_first: bool,
    as_json: bool,
) -> None:
    """List jobs of QUEUE in one state."""
    queue = queue_for(queue_name, url, prefix)
    found: list[Job] = run_async(
        with_known_queue(
            queue, lambda q: q.get_jobs(state, 0, limit - 1, newest_first=not oldest_first)
        )
    )
    if as_json:
        print_json([j.to_dict() for j in found])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{queue_name}: {state} ({len(found)} shown)")
    for column in ("id", "name", "attempts", "created", "progress", "error"):
        table.add_column(column)
    for job in found:
        table.add_row(
            job.id,
            job.name,
            f"{job.attempts_made}/{job.attempts}",
            _age(job.created_at),
            "" if job.progress is None else str(job.progress),
            _error_cell(job),
        )
    Console().print(table)


def _error_cell(job: Job) -> str:
    """A failed job's error; for any other job an error left by an earlier attempt, which is
    not the job's error and says so."""
    if not job.error:
        return ""
    text = job.error[:80]
    if job.state == JobState.FAILED:
        return text
    # The error is the last failed attempt's: the one before the run that is on or succeeded,
    # else (waiting for its retry) the last one made.
    after = job.state in (JobState.COMPLETED, JobState.ACTIVE)
    number = job.attempts_made - 1 if after else job.attempts_made
    return f"attempt {number} failed: {text}" if number > 0 else f"last failed attempt: {text}"


def _iso(ms: int | None) -> str:
    """An absolute time (ISO 8601, UTC, to the millisecond) with its age, or '-'."""
    if not ms:
        return "-"
    stamp = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    return f"{stamp.isoformat(timespec='milliseconds').replace('+00:00', 'Z')} ({_age(ms)})"


def _json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()


@click.command()
@click.argument("queue_name", metavar="QUEUE")
@click.argument("job_id", metavar="ID")
@url_option
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    envvar="CONVEYOR_SHOW_JSON",
    show_envvar=True,
    help="Print the job as one JSON document.",
)
def show(queue_name: str, job_id: str, url: str | None, prefix: str | None, as_json: bool) -> None:
    """Everything about one job: data, state, progress, result, attempts and logs."""
    queue = queue_for(queue_name, url, prefix)

    async def load(q: Queue) -> dict[str, Any] | None:
        job = await q.get_job(job_id)
        if job is None:
            return None
        out = job.to_dict()
        out["attempt_history"] = await q.job_attempts(job_id)
        out["logs"] = await q.job_logs(job_id)
        return out

    data = run_async(with_known_queue(queue, load))
    if data is None:
        fail(f"no job {job_id!r} in queue {queue_name!r}")
    if as_json:
        print_json(data)
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    history = data["attempt_history"]
    failed = data["state"] == JobState.FAILED
    table = Table(title=f"job {job_id} in {queue_name}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("name", data["name"])
    table.add_row("state", data["state"])
    table.add_row("attempts", f"{data['attempts_made']} made of {data['options']['attempts']}")
    table.add_row("progress", "" if data["progress"] is None else _json_text(data["progress"]))
    if data["error"] and failed:
        table.add_row("error", Text(data["error"], style="red"))
    elif data["error"] or history:
        last = history[-1] if history else {}
        label = f"attempt {last['attempt']}: " if last.get("attempt") else ""
        table.add_row("last failed attempt", f"{label}{last.get('error') or data['error']}")
    table.add_row("worker", data["worker"] or "")
    for key in ("created_at", "started_at", "finished_at"):
        table.add_row(key, _iso(data[key]))
    for key in ("data", "options", "result"):
        table.add_row(key, Text(_json_text(data[key])))
    console = Console()
    console.print(table)
    if history:
        console.print("[bold]failed attempts[/bold]")
    for attempt in history:
        line = Text(f"attempt {attempt.get('attempt')}: {attempt.get('error')}")
        line.stylize("red" if failed else "yellow")
        console.print(line)
        if attempt.get("traceback"):
            console.print(attempt["traceback"], markup=False, highlight=False)
    if data["logs"]:
        console.print("[bold]logs[/bold]")
        for line in data["logs"]:
            console.print(f"  {line}", markup=False, highlight=False)


@click.command()
@click.argument("queue_name", metavar="QUEUE")
@click.argument("name")
@url_option
@click.option("--data", "-d", default="null", help="Job data as JSON.", show_default=True)
@click.option(
    "--attempts", type=click.IntRange(min=1), help="Attempts in all, retries included [default: 1]."
)
@click.option("--backoff", help="exponential:SECONDS or fixed:SECONDS")
@click.option("--delay", help="Run after this long (e.g. 30s, 5m).")
@click.option("--priority", type=int, help="Higher runs first [default: 0].")
@click.option("--job-id", help="Idempotency key: nothing is added if this id exists.")
@click.option("--timeout", type=float, help="Seconds before the attempt is cancelled.")
@click.option(
    "--wait",
    "wait_for",
    is_flag=True,
    envvar="CONVEYOR_ENQUEUE_WAIT",
    show_envvar=True,
    help="Wait for the job and print its result.",
)
@click.option(
    "--wait-timeout", type=float, default=None, help="With --wait: give up after N seconds."
)
def enqueue(
    queue_name: str,
    name: str,
    url: str | None,
    prefix: str | None,
    data: str,
    attempts: int | None,
    backoff: str | None,
    delay: str | None,
    priority: int | None,
    job_id: str | None,
    timeout: float | None,
    wait_for: bool,
    wait_timeout: float | None,
) -> None:
    """Add a job called NAME to QUEUE; prints its id (or its result with --wait)."""
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        fail(f"--data is not valid JSON: {exc}", EXIT_USAGE)
    options: dict[str, Any] = {}
    for key, value in (("attempts", attempts), ("priority", priority), ("job_id", job_id)):
        if value is not None:
            options[key] = value
    if timeout is not None:
        options["timeout"] = timeout
    if delay:
        options["delay"] = parse_duration(delay)
    if backoff:
        kind, _, seconds = backoff.partition(":")
        if kind not in ("exponential", "fixed") or not seconds:
            fail("--backoff must be exponential:SECONDS or fixed:SECONDS", EXIT_USAGE)
        factory = Backoff.exponential if kind == "exponential" else Backoff.fixed
        options["backoff"] = factory(float(seconds))
    queue = queue_for(queue_name, url, prefix)

    async def add(q: Queue) -> tuple[Job, Any]:
        if not wait_for:
            return await q.add(name, payload, **options), None
        before = await q.redis.run(q.commands.last_event_id())
        job = await q.add(name, payload, **options)
        # While waiting, say on stderr what the job does (stdout keeps the JSON result).
        follow = asyncio.create_task(report_progress(q, job.id, before))
        try:
            return job, await job.wait(timeout=wait_timeout)
        except JobFailed as exc:
            fail(f"job {job.id} failed: {exc.reason}")
        except WaitTimeout:
            fail(f"job {job.id} did not finish within {wait_timeout} s")
        finally:
            follow.cancel()

    job, result = run_async(with_queue(queue, add))
    if wait_for:
        print_json({"id": job.id, "result": result})
    else:
        click.echo(job.id)


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


async def _with_progress_bar(
    description: str, total: int, sweep: Callable[[Progress], Awaitable[int]]
) -> int:
    """Run ``sweep`` (an Admin call taking a progress callback) behind a progress bar of
    ``total`` jobs; returns what ``sweep`` returns, the number of jobs it handled."""
    from rich import progress as rich

    columns = (rich.TextColumn("{task.description}"), rich.BarColumn(), rich.MofNCompleteColumn())
    with rich.Progress(*columns, transient=False, console=_stderr_console()) as bar:
        task = bar.add_task(description, total=max(total, 1))

        def advance(done: int) -> None:
            bar.update(task, completed=min(done, total))

        done = await sweep(advance)
        bar.update(task, total=max(done, 1), completed=done)
    return done


async def _sweep_queue(
    settings: Settings,
    queue_name: str,
    state: str,
    *,
    limit: int | None = None,
    question: Callable[[int], str],
    yes: bool,
    description: str,
    sweep: Callable[[Admin, Progress], Awaitable[int]],
) -> int:
    """retry --all and clean: count the jobs in ``state``, ask, then ``sweep`` them with a
    progress bar; 0 at once when there are none; an unknown queue is an error."""
    async with Admin(settings=settings) as admin:
        await require_known_queue(settings, queue_name)
        [overview] = await admin.overview([queue_name])
        total = overview["counts"][state]
        if limit is not None:
            total = min(total, limit)
        if not total:
            return 0
        confirm(question(total), yes)
        return await _with_progress_bar(description, total, lambda progress: sweep(admin, progress))


@click.command()
@click.argument("queue_name", metavar="QUEUE")
@click.argument("ids", nargs=-1, metavar="[ID]...")
@url_option
@click.option(
    "--all",
    "all_failed",
    is_flag=True,
    envvar="CONVEYOR_RETRY_ALL",
    show_envvar=True,
    help="Retry every failed job.",
)
@click.option("--yes", "-y", is_flag=True, envvar="CONVEYOR_YES", help="Do not ask.")
def retry(
    queue_name: str,
    ids: tuple[str, ...],
    url: str | None,
    prefix: str | None,
    all_failed: bool,
    yes: bool,
) -> None:
    """Put failed jobs back in QUEUE with a fresh budget of attempts."""
    if bool(ids) == all_failed:
        fail("give job ids or --all (not both)", EXIT_USAGE)
    if ids:

        async def retry_ids(q: Queue) -> None:
            for job_id in ids:
                await q.retry(job_id)
                click.echo(f"retried {job_id}")

        run_async(with_known_queue(queue_for(queue_name, url, prefix), retry_ids))
        return

    retried = run_async(
        _sweep_queue(
            cli_settings(url, prefix),
            queue_name,
            "failed",
            question=lambda total: f"Retry {total} failed jobs in {queue_name!r}?",
            yes=yes,
            description=f"retrying failed jobs in {queue_name}",
            sweep=lambda admin, progress: admin.retry_all(queue_name, "failed", progress),
        )
    )
    click.echo(f"retried {retried} jobs")


@click.command()
@click.argument("queue_name", metavar="QUEUE")
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@url_option
@click.option("--yes", "-y", is_flag=True, envvar="CONVEYOR_YES", help="Do not ask.")
def remove(
    queue_name: str, ids: tuple[str, ...], url: str | None, prefix: str | None, yes: bool
) -> None:
    """Delete jobs (not running ones) from QUEUE."""
    run_async(require_known_queue(cli_settings(url, prefix), queue_name))
    confirm(f"Delete {len(ids)} job(s) from {queue_name!r}?", yes)
    queue = queue_for(queue_name, url, prefix)

    async def remove_ids(q: Queue) -> None:
        for job_id in ids:
            await q.remove(job_id)
            click.echo(f"removed {job_id}")

    run_async(with_known_queue(queue, remove_ids))


@click.command()
@click.argument("queue_name", metavar="QUEUE")
@url_option
@click.option(
    "--state",
    "-s",
    type=click.Choice([s.value for s in JobState if s in CLEANABLE_STATES]),
    default="completed",
    show_default=True,
    help="Delete jobs in this state.",
)
@click.option("--older-than", default="0s", show_default=True, help="e.g. 30m, 1h, 7d.")
@click.option("--limit", type=click.IntRange(min=1), help="Delete at most this many.")
@click.option("--yes", "-y", is_flag=True, envvar="CONVEYOR_YES", help="Do not ask.")
def clean(
    queue_name: str,
    url: str | None,
    prefix: str | None,
    state: str,
    older_than: str,
    limit: int | None,
    yes: bool,
) -> None:
    """Delete jobs of QUEUE in one state, older than some age."""
    age = parse_duration(older_than)
    deleted = run_async(
        _sweep_queue(
            cli_settings(url, prefix),
            queue_name,
            state,
            limit=limit,
            question=lambda total: (
                f"Delete up to {total} {state} jobs older than {older_than} from {queue_name!r}?"
            ),
            yes=yes,
            description=f"cleaning {state} jobs of {queue_name}",
            sweep=lambda admin, progress: admin.clean(queue_name, state, age, limit, progress),
        )
    )
    click.echo(f"deleted {deleted} jobs")


@click.command()
@click.argument("queue_name", metavar="QUEUE")
@url_option
def pause(queue_name: str, url: str | None, prefix: str | None) -> None:
    """Stop handing out jobs of QUEUE (running ones finish; adding still works)."""
    queue = queue_for(queue_name, url, prefix)
    changed = run_async(with_known_queue(queue, lambda q: q.pause()))
    click.echo(f"{queue_name}: paused" + ("" if changed else " (already)"))


@click.command()
@click.argument("queue_name", metavar="QUEUE")
@url_option
def resume(queue_name: str, url: str | None, prefix: str | None) -> None:
    """Hand out jobs of QUEUE again."""
    queue = queue_for(queue_name, url, prefix)
    changed = run_async(with_known_queue(queue, lambda q: q.resume()))
    click.echo(f"{queue_name}: resumed" + ("" if changed else " (was not paused)"))


COMMANDS = [jobs, show, enqueue, retry, remove, clean, pause, resume]
