"""``conveyor batch [QUEUE] ID``: a batch's counts and state (see ``conveyor.workflows``);
without QUEUE, every queue under the prefix is looked in."""

from __future__ import annotations

from typing import Any

import click

from .cli_common import (
    EXIT_USAGE,
    cli_settings,
    fail,
    print_json,
    run_async,
    url_option,
    with_known_queue,
)
from .queue import Queue
from .storage.commands import QueueCommands
from .storage.ops import queue_names
from .workflows.reading import get_batch

__all__ = ["COMMANDS", "batch"]


@click.command()
@click.argument("args", nargs=-1, metavar="[QUEUE] ID")
@url_option
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    envvar="CONVEYOR_BATCH_JSON",
    show_envvar=True,
    help="Print the batch as one JSON document.",
)
def batch(args: tuple[str, ...], url: str | None, prefix: str | None, as_json: bool) -> None:
    """A batch's counts (total, pending, completed, failed), state and callbacks. Without
    QUEUE, the batch is looked for in every queue."""
    if len(args) not in (1, 2):
        fail("give the batch id, optionally after its queue: conveyor batch [QUEUE] ID", EXIT_USAGE)
    queue_name, batch_id = (None, args[0]) if len(args) == 1 else args
    settings = cli_settings(url, prefix)

    async def load(q: Queue) -> dict[str, Any] | None:
        names = [q.name] if queue_name else await q.redis.run(queue_names(settings.prefix))
        for name in names:
            info = await q._drive(get_batch(QueueCommands(settings, name), batch_id))
            if info is not None:
                return info.to_dict()
        return None

    async def find_anywhere() -> dict[str, Any] | None:
        async with Queue("batch-lookup", settings=settings) as q:  # a client: adds nothing
            return await load(q)

    queue = Queue(queue_name, settings=settings) if queue_name else None
    data = run_async(with_known_queue(queue, load) if queue else find_anywhere())
    if data is None:
        where = f"queue {queue_name!r}" if queue_name else "any queue"
        fail(f"no batch {batch_id!r} in {where}")
    if as_json:
        print_json(data)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"batch {batch_id} in {data['queue']}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key in ("state", "total", "pending", "completed", "failed"):
        table.add_row(key, str(data[key]))
    for kind, ref in data["callbacks"].items():
        table.add_row(f"on_{kind}", ref)
    Console().print(table)


COMMANDS = [batch]
