"""The outbox relay: moves committed outbox rows to Redis, a batch per SQL transaction.

One batch: ``SELECT ... FOR UPDATE SKIP LOCKED`` (rows no other relay holds), one ``add_job``
script call for all of them with ``id_prefix + row id`` as job ids, ``DELETE`` of the rows,
``COMMIT``. The order matters for crashes, and each boundary is safe:

* killed before the Redis add: PostgreSQL rolls the claim back; the rows wait for a relay;
* killed after the add, before the commit: the rows are unlocked and still there; the next
  relay adds them again, and ``add_job`` answers "exists" for every id, so no job is doubled;
* killed after the commit: the rows are gone and the jobs are in Redis.

Idle relays LISTEN on the channel ``outbox.add`` notifies at commit, and poll as well (a
notification is lost while no relay listens).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, ConnectionError
from ..storage.commands import AddSpec
from .sql import NOTIFY_CHANNEL

if TYPE_CHECKING:
    import psycopg

    from . import Outbox

__all__ = ["MAX_BATCH", "Relay", "connect"]

log = logging.getLogger("conveyor.outbox")

#: Rows per transaction at most: one script call adds them all (add_job's JSON form).
MAX_BATCH = 1000
#: Pause after an error (PostgreSQL or Redis unreachable), doubling up to the cap.
_RETRY_FIRST, _RETRY_CAP = 0.2, 5.0


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - the extra is installed wherever tests run
        raise ConfigurationError(
            "the outbox relay needs psycopg 3: pip install 'conveyor-queue[outbox]'"
        ) from None
    return psycopg


async def connect(outbox: Outbox) -> psycopg.AsyncConnection[Any]:
    if not outbox.dsn:
        raise ConfigurationError(
            "the outbox relay needs a PostgreSQL DSN: Outbox(queue, dsn) or CONVEYOR_OUTBOX_DSN"
        )
    pg = _psycopg()
    try:
        conn: psycopg.AsyncConnection[Any] = await pg.AsyncConnection.connect(
            outbox.dsn, autocommit=True
        )
    except pg.OperationalError as exc:
        raise ConnectionError(f"cannot connect to PostgreSQL: {exc}".strip()) from exc
    return conn


class Relay:
    """One relay loop over one ``Outbox`` (``Outbox.relay`` makes and runs it)."""

    def __init__(self, outbox: Outbox, *, batch: int = 100, poll: float = 1.0) -> None:
        if not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= MAX_BATCH:
            raise ConfigurationError(
                f"batch must be an integer from 1 to {MAX_BATCH}, not {batch!r}"
            )
        if not isinstance(poll, int | float) or isinstance(poll, bool) or not 0 < poll <= 3600:
            raise ConfigurationError(f"poll must be from 0 to 3600 seconds, not {poll!r}")
        self.outbox = outbox
        self.batch = batch
        self.poll = float(poll)
        self.moved = 0

    async def run(self, *, once: bool = False, stop: asyncio.Event | None = None) -> int:
        stop = stop or asyncio.Event()
        pause = _RETRY_FIRST
        conn: psycopg.AsyncConnection[Any] | None = None
        pg = _psycopg()
        try:
            while not stop.is_set():
                try:
                    if conn is None or conn.closed:
                        conn = await self._open()
                    if await self.move_batch(conn):
                        pause = _RETRY_FIRST
                        continue  # more may be waiting: no sleep between full batches
                    pause = _RETRY_FIRST
                    if once:
                        break
                    await self._wait_for_rows(conn, stop)
                except (ConnectionError, pg.OperationalError, pg.InterfaceError) as exc:
                    # Redis or PostgreSQL went away (a restart, a failover, a killed backend):
                    # whatever batch was in flight rolled back; reconnect and go on.
                    if once:
                        raise
                    log.warning("outbox relay: %s; retrying in %.1f s", exc, pause)
                    if conn is not None and (conn.closed or conn.broken):
                        await conn.close()
                        conn = None
                    await _sleep_or_stop(stop, pause)
                    pause = min(pause * 2, _RETRY_CAP)
        finally:
            if conn is not None:
                await conn.close()
        return self.moved

    async def _open(self) -> psycopg.AsyncConnection[Any]:
        conn = await connect(self.outbox)
        sql = self.outbox.sql
        async with conn.transaction():
            await conn.execute(sql.lock_ddl(), (sql.table,))
            await conn.execute(sql.create())
        await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        return conn

    async def move_batch(self, conn: psycopg.AsyncConnection[Any]) -> int:
        """Claim, add, delete, commit one batch; returns how many rows it moved."""
        outbox, queue = self.outbox, self.outbox.queue
        async with conn.transaction():
            cursor = await conn.execute(outbox.sql.claim(), (outbox.name, self.batch))
            rows = await cursor.fetchall()
            if not rows:
                return 0
            specs = [
                AddSpec(
                    name=name,
                    data=data,
                    opts=opts,
                    attempts=int(attempts),
                    priority=int(priority),
                    delay_ms=int(delay_ms),
                    ttl_ms=int(ttl_ms),
                    job_id=job_id or f"{outbox.id_prefix}{row_id}",
                )
                for row_id, name, data, opts, attempts, priority, delay_ms, ttl_ms, job_id in rows
            ]
            ids = [int(row[0]) for row in rows]
            # An id that already exists (a replay after a crash, or a producer's own job_id)
            # comes back as that job: nothing is enqueued for it.
            await queue.redis.run(queue._add_op(specs, queue))
            outbox._after_add(ids)
            await conn.execute(outbox.sql.delete(), (ids,))
        self.moved += len(rows)
        log.debug("outbox relay: moved %d rows of %s", len(rows), outbox.name)
        return len(rows)

    async def _wait_for_rows(self, conn: psycopg.AsyncConnection[Any], stop: asyncio.Event) -> None:
        """Until a notification, the poll interval, or ``stop``, whichever comes first."""
        deadline = time.monotonic() + self.poll
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            # Short slices, so a stop request is seen within a quarter second.
            async for _ in conn.notifies(timeout=min(remaining, 0.25), stop_after=1):
                return


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
