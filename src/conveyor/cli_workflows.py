"""``conveyor batch QUEUE ID``: a batch's counts and state (see ``conveyor.workflows``)."""

from __future__ import annotations

from typing import Any

import click

from .cli_common import fail, print_json, queue_for, run_async, url_option, with_known_queue
from .queue import Queue

__all__ = ["COMMANDS", "batch"]


@click.command()
@click.argument("queue_name", metavar="QUEUE")
@click.argument("batch_id", metavar="ID")
@url_option
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    envvar="CONVEYOR_BATCH_JSON",
    show_envvar=True,
    help="Print the batch as one JSON document.",
)
def batch(
    queue_name: str, batch_id: str, url: str | None, prefix: str | None, as_json: bool
) -> None:
    """A batch's counts (total, pending, completed, failed) and state, and its callbacks."""
    queue = queue_for(queue_name, url, prefix)

    async def load(q: Queue) -> dict[str, Any] | None:
        info = await q.get_batch(batch_id)
        return None if info is None else info.to_dict()

    data = run_async(with_known_queue(queue, load))
    if data is None:
        fail(f"no batch {batch_id!r} in queue {queue_name!r}")
    if as_json:
        print_json(data)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"batch {batch_id} in {queue_name}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key in ("state", "total", "pending", "completed", "failed"):
        table.add_row(key, str(data[key]))
    for kind, ref in data["callbacks"].items():
        table.add_row(f"on_{kind}", ref)
    Console().print(table)


COMMANDS = [batch]
