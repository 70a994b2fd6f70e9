"""Flow control on the command line: ``conveyor groups`` (a queue's groups and limits),
``conveyor pause-group`` / ``resume-group`` and ``conveyor rate-limit``."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import click

from .cli_common import (
    parse_duration,
    print_json,
    queue_for,
    run_async,
    url_option,
    with_known_queue,
)
from .flow_control import FlowState, GroupInfo, RateLimit
from .queue import Queue
from .storage.flow import FlowCommands

__all__ = ["FLOW_COMMANDS"]


def _until(ms: int | None) -> str:
    if not ms:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")


def _limit(value: int | None) -> str:
    return "-" if value is None else str(value)


async def _read(queue: Queue, limit: int) -> tuple[int, list[GroupInfo], FlowState]:
    flow = FlowCommands(queue.commands)
    (total, found), state = await queue.redis.run_many(
        [flow.groups(0, limit - 1), flow.flow_state()]
    )
    return total, found, state


@click.command()
@click.argument("queue_name", metavar="QUEUE")
@url_option
@click.option(
    "--limit", "-n", type=click.IntRange(min=1), default=50, show_default=True,
    help="Show at most this many groups (most waiting first).",
)  # fmt: skip
@click.option(
    "--json", "as_json", is_flag=True, envvar="CONVEYOR_GROUPS_JSON", show_envvar=True,
    help="Print JSON instead of a table.",
)  # fmt: skip
def groups(queue_name: str, url: str | None, prefix: str | None, limit: int, as_json: bool) -> None:
    """The groups of QUEUE (most waiting first) and its flow-control limits."""
    queue = queue_for(queue_name, url, prefix)
    total, found, state = run_async(with_known_queue(queue, lambda q: _read(q, limit)))
    if as_json:
        print_json(
            {"groups": [g.to_dict() for g in found], "total": total, "flow": state.to_dict()}
        )
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    rate = state.rate_limit
    line = f"{queue_name}: rate limit {rate if rate else 'none'}"
    if state.limited_until:
        line += f", holding jobs back until {_until(state.limited_until)}"
    if state.held_until:
        line += f", jobs without a group held (RateLimited) until {_until(state.held_until)}"
    console.print(line)
    table = Table(title=f"{queue_name}: {len(found)} of {total} groups")
    for column in ("group", "waiting", "active", "concurrency", "rate limit", "weight",
                   "max size", "paused", "held until"):  # fmt: skip
        table.add_column(column)
    for g in found:
        table.add_row(
            g.name,
            str(g.waiting),
            str(g.active),
            _limit(g.concurrency),
            str(g.rate_limit) if g.rate_limit else "-",
            str(g.weight),
            _limit(g.max_size),
            "yes" if g.paused else "",
            _until(g.held_until),
        )
    console.print(table)


@click.command(name="pause-group")
@click.argument("queue_name", metavar="QUEUE")
@click.argument("group")
@url_option
def pause_group(queue_name: str, group: str, url: str | None, prefix: str | None) -> None:
    """Hand out none of GROUP's jobs in QUEUE (running ones finish; adding still works)."""
    queue = queue_for(queue_name, url, prefix)
    changed = run_async(with_known_queue(queue, lambda q: q.pause_group(group)))
    click.echo(f"{queue_name}/{group}: paused" + ("" if changed else " (already)"))


@click.command(name="resume-group")
@click.argument("queue_name", metavar="QUEUE")
@click.argument("group")
@url_option
def resume_group(queue_name: str, group: str, url: str | None, prefix: str | None) -> None:
    """Hand out GROUP's jobs in QUEUE again."""
    queue = queue_for(queue_name, url, prefix)
    changed = run_async(with_known_queue(queue, lambda q: q.resume_group(group)))
    click.echo(f"{queue_name}/{group}: resumed" + ("" if changed else " (was not paused)"))


def _parse_limit(text: str) -> RateLimit | None:
    if text.strip().lower() in ("off", "none"):
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\S+)\s*", text)
    if not match:
        raise click.BadParameter(f"{text!r} is not a limit like 20/1s, 100/1m or off")
    per = match.group(2)
    seconds = parse_duration("1" + per if per[0].isalpha() else per)
    return RateLimit(int(match.group(1)), per=seconds)


@click.command(name="rate-limit")
@click.argument("queue_name", metavar="QUEUE")
@click.argument("limit", metavar="N/PER|off")
@url_option
def rate_limit(queue_name: str, limit: str, url: str | None, prefix: str | None) -> None:
    """Let at most N jobs of QUEUE start in any PER (e.g. 20/1s, 100/m), or "off"."""
    parsed = _parse_limit(limit)
    queue = queue_for(queue_name, url, prefix)

    async def apply(q: Queue) -> Any:
        await q.set_rate_limit(parsed)

    run_async(with_known_queue(queue, apply))
    click.echo(f"{queue_name}: rate limit {parsed if parsed else 'off'}")


FLOW_COMMANDS = [groups, pause_group, resume_group, rate_limit]
