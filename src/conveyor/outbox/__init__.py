"""A transactional outbox for PostgreSQL: enqueue in the same SQL transaction as the data.

::

    outbox = Outbox(queue, "postgresql://app@db/app")     # queue: a Queue, SyncQueue or name
    with psycopg.connect(dsn) as conn:                     # the caller's own transaction
        conn.execute("INSERT INTO orders ...")
        outbox.add(conn, "send_receipt", {"order": 7}, attempts=3)   # any Queue.add option
    # elsewhere, any number of them at once:
    #   conveyor outbox-relay orders --dsn postgresql://... --url redis://...
    #   or: await outbox.relay()

A job exists in the outbox exactly when the transaction that wrote the business data commits,
so the window of "commit, then add" (the process dies between the two) is closed. The relay
moves rows to Redis in batches, each in one PostgreSQL transaction: claim the rows (``FOR
UPDATE SKIP LOCKED``, so relays never take the same row), add them to Redis with the row id as
the job id, delete them, commit. A relay killed after the Redis add and before the commit leaves
its rows behind, unlocked; the next relay adds them again under the same ids, which Redis
answers with the existing jobs, so nothing is enqueued twice (see docs/ecosystem.md for the one
condition: the job must still be in Redis then, i.e. not yet trimmed by ``keep_completed``).

Needs the ``outbox`` extra (``pip install 'conveyor-queue[outbox]'``, which brings psycopg 3)
for the relay; ``add`` takes any connection with PostgreSQL's ``%s`` placeholders: psycopg's
(sync or async), psycopg2's, Django's ``connection`` and SQLAlchemy's ``Connection`` or
``Session``.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..options import OPTION_NAMES, build_spec
from ..queue import Queue
from ..settings import Settings
from ..sync_queue import SyncQueue
from .sql import DEFAULT_TABLE, NOTIFY_CHANNEL, Statements

if TYPE_CHECKING:
    import asyncio

__all__ = ["Outbox"]

#: The environment variable the relay reads its PostgreSQL DSN from when none is given.
DSN_ENV = "CONVEYOR_OUTBOX_DSN"


class Outbox:
    """The outbox of one queue, kept in one PostgreSQL table (shared by any number of queues).

    ``dsn`` is the relay's PostgreSQL connection (default: ``$CONVEYOR_OUTBOX_DSN``); ``add``
    uses the caller's connection instead. Jobs get the id ``id_prefix`` + row id unless the
    producer names one with ``job_id``.
    """

    def __init__(
        self,
        queue: Queue | SyncQueue | str,
        dsn: str | None = None,
        *,
        table: str = DEFAULT_TABLE,
        id_prefix: str = "outbox-",
        url: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.sql = Statements(table)
        if isinstance(queue, Queue):
            self.queue = queue
        elif isinstance(queue, SyncQueue):
            self.queue = Queue(queue.name, settings=queue.settings)
        elif isinstance(queue, str) and queue:
            self.queue = Queue(queue, url, settings=settings)
        else:
            raise ConfigurationError(
                f"Outbox needs a Queue, SyncQueue or queue name, not {queue!r}"
            )
        if not isinstance(id_prefix, str) or "/" in id_prefix:
            raise ConfigurationError(f"id_prefix must be a string without '/', not {id_prefix!r}")
        self.dsn = dsn if dsn is not None else os.environ.get(DSN_ENV)
        self.id_prefix = id_prefix

    @property
    def name(self) -> str:
        return self.queue.name

    @property
    def table(self) -> str:
        return self.sql.table

    def __repr__(self) -> str:
        return f"Outbox({self.name!r}, table={self.table!r})"

    # -- producer ------------------------------------------------------------------------------

    def add(self, conn: Any, name: str, data: Any = None, **options: Any) -> Any:
        """Write one job into the outbox inside ``conn``'s current transaction; returns the
        row id (an awaitable of it for an async connection). Same options as ``Queue.add``;
        bad ones raise ``ConfigurationError`` before anything is written. Nothing reaches
        Redis until the transaction commits and a relay runs."""
        unknown = sorted(set(options) - OPTION_NAMES)
        if unknown:
            raise ConfigurationError(
                f"unknown job options {unknown}; use {', '.join(sorted(OPTION_NAMES))}"
            )
        spec = build_spec(self.queue.settings, name, data, **options)
        if _otel_on():  # keep the writer's trace context for the span the relay sends
            from .. import otel

            spec = otel.outbox_context(spec)
        params = (
            self.name,
            spec.name,
            spec.data,
            spec.opts,
            spec.attempts,
            spec.priority,
            spec.delay_ms,
            spec.ttl_ms,
            spec.job_id,
            NOTIFY_CHANNEL,
            self.name,
        )
        return _execute_returning_id(conn, self.sql.insert(), params)

    def create_table(self, conn: Any) -> Any:
        """Create the table if it is missing, in ``conn``'s transaction (or print
        ``outbox.sql.create()`` into a migration). The relay does this itself at start."""
        return _execute(conn, self.sql.create(), ())

    # -- relay ---------------------------------------------------------------------------------

    async def relay(
        self,
        *,
        batch: int = 100,
        poll: float = 1.0,
        once: bool = False,
        stop: asyncio.Event | None = None,
    ) -> int:
        """Move rows to Redis until ``stop`` is set (or, with ``once``, until none is left to
        claim); returns how many were moved. Safe to run in any number of processes at once."""
        from .relay import Relay

        return await Relay(self, batch=batch, poll=poll).run(once=once, stop=stop)

    async def pending(self) -> int:
        """Rows of this queue still in the outbox (claimed or not)."""
        from .relay import connect

        async with await connect(self) as conn:
            cursor = await conn.execute(self.sql.pending(), (self.name,))
            row = await cursor.fetchone()
            return int(row[0]) if row else 0

    async def close(self) -> None:
        """Close the relay's Redis connections (those of ``self.queue``)."""
        await self.queue.close()

    async def __aenter__(self) -> Outbox:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _after_add(self, ids: list[int]) -> None:
        """Called between a batch's Redis add and its commit: a seam for crash tests."""


def _otel_on() -> bool:
    otel = sys.modules.get("conveyor.otel")
    return otel is not None and bool(otel.is_instrumented())


# -- connections of every kind ---------------------------------------------------------------


def _sqlalchemy_connection(conn: Any) -> Any | None:
    """SQLAlchemy's ``Session`` (its connection in the session's transaction) or
    ``Connection``; None for anything else."""
    if hasattr(conn, "exec_driver_sql"):
        return conn
    if hasattr(conn, "get_bind") and callable(getattr(conn, "connection", None)):
        return conn.connection()
    return None


def _execute_returning_id(conn: Any, sql: str, params: tuple[Any, ...]) -> Any:
    sa = _sqlalchemy_connection(conn)
    if sa is not None:
        result = sa.exec_driver_sql(sql, params)
        if inspect.isawaitable(result):  # SQLAlchemy's AsyncConnection / AsyncSession
            return _first_column_async(result)
        return int(result.first()[0])
    execute = getattr(conn, "execute", None)
    if execute is not None and inspect.iscoroutinefunction(execute):  # psycopg AsyncConnection
        return _psycopg_async(conn, sql, params)
    if not hasattr(conn, "cursor"):
        raise ConfigurationError(
            f"outbox.add needs a database connection (psycopg, Django, SQLAlchemy), not {conn!r}"
        )
    cursor = conn.cursor()
    try:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    finally:
        cursor.close()
    return int(row[0])


def _execute(conn: Any, sql: str, params: tuple[Any, ...]) -> Any:
    sa = _sqlalchemy_connection(conn)
    if sa is not None:
        result = sa.exec_driver_sql(sql, params)
        return result if inspect.isawaitable(result) else None
    execute = getattr(conn, "execute", None)
    if execute is not None and inspect.iscoroutinefunction(execute):
        return execute(sql, params)
    cursor = conn.cursor()
    try:
        cursor.execute(sql, params)
    finally:
        cursor.close()
    return None


async def _psycopg_async(conn: Any, sql: str, params: tuple[Any, ...]) -> int:
    cursor = await conn.execute(sql, params)
    row = await cursor.fetchone()
    return int(row[0])


async def _first_column_async(result: Awaitable[Any]) -> int:
    return int((await result).first()[0])
