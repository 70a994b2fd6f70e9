"""``conveyor outbox-relay``: move PostgreSQL outbox rows to Redis (see ``conveyor.outbox``)."""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING

import click

from .cli_common import EXIT_USAGE, fail, queue_for, run_async, url_option
from .errors import ConfigurationError

if TYPE_CHECKING:
    from .outbox import Outbox

__all__ = ["outbox_relay"]


@click.command(name="outbox-relay")
@click.argument("queue")
@click.option(
    "--dsn",
    envvar="CONVEYOR_OUTBOX_DSN",
    show_envvar=True,
    help="PostgreSQL connection string of the database that holds the outbox.",
)
@click.option("--table", default="conveyor_outbox", show_default=True, help="Outbox table.")
@click.option("--batch", default=100, show_default=True, help="Rows per transaction (1-1000).")
@click.option("--poll", default=1.0, show_default=True, help="Seconds between checks when idle.")
@click.option("--once", is_flag=True, help="Move what is there now, then exit.")
@url_option
def outbox_relay(
    queue: str,
    dsn: str | None,
    table: str,
    batch: int,
    poll: float,
    once: bool,
    url: str | None,
    prefix: str | None,
) -> None:
    """Move jobs from the PostgreSQL outbox of QUEUE to Redis, exactly once.

    Run as many as you like: each row is claimed by one relay (FOR UPDATE SKIP LOCKED), and a
    relay killed mid-batch is replayed by the next without duplicates. Stops cleanly on SIGTERM
    or Ctrl-C after the batch in flight. Creates the table if it is missing.
    """
    from .outbox import Outbox

    if not dsn:
        fail(
            "give --dsn or CONVEYOR_OUTBOX_DSN (the PostgreSQL database of the outbox)", EXIT_USAGE
        )
    try:
        outbox = Outbox(queue_for(queue, url, prefix), dsn, table=table)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_USAGE)
    moved = run_async(_relay(outbox, batch, poll, once))
    click.echo(f"moved {moved} jobs to {queue}", err=True)


async def _relay(outbox: Outbox, batch: int, poll: float, once: bool) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    click.echo(f"outbox relay: {outbox.table} -> {outbox.name} started", err=True)
    try:
        return await outbox.relay(batch=batch, poll=poll, once=once, stop=stop)
    finally:
        await outbox.close()
