"""``conveyor info``: queues with their counts, throughput and workers, once or refreshed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import click
import orjson

from .admin import Admin
from .cli_common import cli_settings, prefix_hint, print_json, run_async, url_option
from .job import JobState
from .settings import Settings

__all__ = ["gather_info", "info"]


#: ``conveyor info`` reports throughput over this many minutes.
INFO_MINUTES = 5


async def gather_info(admin: Admin, only: Sequence[str] = ()) -> dict[str, Any]:
    """Every queue under the prefix (or only those named): counts, paused, live workers, oldest
    waiting job and throughput over the last ``INFO_MINUTES`` minutes; and the live workers."""
    overview = await admin.overview(list(only) if only else None)
    names = [q["name"] for q in overview]
    done = await admin.throughput(names, INFO_MINUTES)
    workers = await admin.workers()
    if only:
        wanted = set(only)
        workers = [w for w in workers if wanted.intersection(w["queues"])]
    queues = []
    for q in overview:
        recent = done.get(q["name"], {})
        last = {key: recent.get(key, 0) for key in ("completed", "failed", "retried")}
        queues.append(
            {
                "name": q["name"],
                "paused": q["paused"],
                "counts": q["counts"],
                "workers": q["workers"],
                "busy": q["busy"],
                "oldest_waiting_ms": q["oldest_waiting_ms"],
                f"last_{INFO_MINUTES}m": last,
                "per_minute": round((last["completed"] + last["failed"]) / INFO_MINUTES, 1),
            }
        )
    out: dict[str, Any] = {
        "redis": admin.settings.redacted_url(),
        "prefix": admin.settings.prefix,
        "queues": queues,
        "workers": workers,
    }
    if not overview and not only:
        out["other_prefixes"] = await admin.other_prefixes()
    return out


def _render_info(info: Mapping[str, Any]) -> Any:
    """The queues as a table that fits 80 columns (short headers, no vertical rules)."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=f"Conveyor at {info['redis']} (prefix {info['prefix']!r})",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 0, 0, 1),
        caption=f"oldest: oldest waiting job; /min: jobs done a minute ({INFO_MINUTES} min)",
    )
    table.add_column("queue", overflow="fold")
    # workflows: flow parents waiting for children get a column ("parents") only when some
    # queue has one, so that the common table still fits 80 columns
    states = [
        s
        for s in JobState
        if s is not JobState.WAITING_CHILDREN or any(q["counts"].get(s) for q in info["queues"])
    ]
    for state in states:
        table.add_column("parents" if state is JobState.WAITING_CHILDREN else state.value,
                         justify="right")  # fmt: skip
    table.add_column("oldest", justify="right")
    table.add_column("/min", justify="right")
    table.add_column("workers", justify="right")
    for q in info["queues"]:
        c = q["counts"]
        name = q["name"] + (" (paused)" if q["paused"] else "")
        workers = Text(str(q["workers"]), style="red" if not q["workers"] else "")
        table.add_row(
            name,
            *(
                Text(str(c[state]), style="red" if state is JobState.FAILED and c[state] else "")
                for state in states
            ),
            _duration(q["oldest_waiting_ms"]),
            str(q["per_minute"]),
            workers,
        )
    if not info["queues"]:
        table.caption = "no queues yet (a queue appears once a job is added to it)" + prefix_hint(
            info.get("other_prefixes") or []
        )
    wtable = Table(title="workers", box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 0, 0, 1))
    for column in ("id", "queues", "busy", "concurrency", "processed", "failed"):
        wtable.add_column(column, overflow="fold")
    for w in info["workers"]:
        wtable.add_row(
            str(w.get("id")),
            ",".join(w.get("queues", [])),
            str(w.get("busy")),
            str(w.get("concurrency")),
            str(w.get("processed")),
            str(w.get("failed")),
        )
    return Group(table, wtable) if info["workers"] else table


@click.command()
@url_option
@click.option(
    "--queue",
    "-q",
    "only",
    multiple=True,
    envvar="CONVEYOR_INFO_QUEUE",
    show_envvar=True,
    help="Only these queues (repeatable; in the variable, separated by spaces).",
)
@click.option(
    "--interval",
    "-i",
    type=float,
    envvar="CONVEYOR_INTERVAL",
    show_envvar=True,
    help="Refresh every N seconds until Ctrl-C.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    envvar="CONVEYOR_INFO_JSON",
    show_envvar=True,
    help="Print JSON instead of a table.",
)
def info(
    url: str | None,
    prefix: str | None,
    only: tuple[str, ...],
    interval: float | None,
    as_json: bool,
) -> None:
    """Queues with their counts, throughput and workers.

    With --interval the view refreshes until Ctrl-C (with --json: one JSON document per line
    per refresh), over one connection pool."""
    settings = cli_settings(url, prefix)
    with contextlib.suppress(KeyboardInterrupt):
        run_async(_info(settings, only, interval, as_json))


async def _info(
    settings: Settings, only: Sequence[str], interval: float | None, as_json: bool
) -> None:
    from rich.console import Console
    from rich.live import Live

    async with Admin(settings=settings) as admin:
        if not interval:
            info = await gather_info(admin, only)
            if as_json:
                print_json(info)
            else:
                Console().print(_render_info(info))
            return
        if as_json:
            while True:
                line = orjson.dumps(await gather_info(admin, only), default=str).decode()
                click.echo(line)
                await asyncio.sleep(interval)
        with Live(console=Console(), auto_refresh=False, screen=False) as live:
            while True:
                live.update(_render_info(await gather_info(admin, only)), refresh=True)
                await asyncio.sleep(interval)


def _duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    seconds = ms / 1000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"
