"""The outbox table and the statements that use it (PostgreSQL).

One row is one ``Queue.add`` waiting to happen: the job already validated and encoded (the
fields of ``AddSpec``), so the relay only copies it. ``data`` is text, not ``jsonb``: the job
must carry exactly the JSON its producer encoded (``jsonb`` would reorder keys and drop
duplicates). The delay counts from the insert, on PostgreSQL's clock, so a relay that runs late
does not push delayed jobs further out.
"""

from __future__ import annotations

import dataclasses
import re

from ..errors import ConfigurationError

__all__ = ["DEFAULT_TABLE", "NOTIFY_CHANNEL", "Statements"]

DEFAULT_TABLE = "conveyor_outbox"
#: ``outbox.add`` notifies this channel (delivered at commit), so idle relays wake at once.
NOTIFY_CHANNEL = "conveyor_outbox"
#: ``name`` or ``schema.name``, lower case: the table name is put into SQL as an identifier.
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$")


def _check_table(table: str) -> str:
    if not isinstance(table, str) or not _IDENTIFIER.match(table):
        raise ConfigurationError(
            f"outbox table must be a lower-case SQL name (letters, digits, _; optionally "
            f"schema.name), not {table!r}"
        )
    return table


@dataclasses.dataclass(frozen=True, slots=True)
class Statements:
    """The SQL for one outbox table (``%s`` placeholders: psycopg, psycopg2 and Django's
    cursors all take them)."""

    table: str

    def __post_init__(self) -> None:
        _check_table(self.table)

    @property
    def _index(self) -> str:
        return self.table.replace(".", "_") + "_queue_id"

    def create(self) -> str:
        """Idempotent DDL; run it in a migration, or let the relay run it at start."""
        return (
            f"CREATE TABLE IF NOT EXISTS {self.table} ("
            " id bigserial PRIMARY KEY,"
            " queue text NOT NULL,"
            " name text NOT NULL,"
            " data text NOT NULL,"
            " opts text NOT NULL DEFAULT '{}',"
            " attempts integer NOT NULL DEFAULT 1,"
            " priority integer NOT NULL DEFAULT 0,"
            " delay_ms bigint NOT NULL DEFAULT 0,"
            " ttl_ms bigint NOT NULL DEFAULT 0,"
            " job_id text NOT NULL DEFAULT '',"
            " created timestamptz NOT NULL DEFAULT clock_timestamp());"
            f" CREATE INDEX IF NOT EXISTS {self._index} ON {self.table} (queue, id)"
        )

    def lock_ddl(self) -> str:
        """Serialises concurrent ``CREATE TABLE IF NOT EXISTS`` (which can otherwise fail with
        a unique violation when two relays start at once)."""
        return "SELECT pg_advisory_xact_lock(hashtext(%s))"

    def insert(self) -> str:
        """One row, and a notification for idle relays (sent only if the transaction commits).
        Parameters: queue, name, data, opts, attempts, priority, delay_ms, ttl_ms, job_id,
        channel, queue."""
        return (
            f"WITH row AS (INSERT INTO {self.table}"
            " (queue, name, data, opts, attempts, priority, delay_ms, ttl_ms, job_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id)"
            " SELECT id, pg_notify(%s, %s) FROM row"
        )

    def claim(self) -> str:
        """The oldest rows of one queue that no other relay holds, locked until this
        transaction ends (SKIP LOCKED: concurrent relays take disjoint batches, none waits).
        The delay left is computed here, on the clock that stamped ``created``.
        Parameters: queue, limit."""
        return (
            "SELECT id, name, data, opts, attempts, priority,"
            " GREATEST(delay_ms - (EXTRACT(EPOCH FROM clock_timestamp() - created) * 1000),"
            " 0)::bigint, ttl_ms, job_id"
            f" FROM {self.table} WHERE queue = %s ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"
        )

    def delete(self) -> str:
        """Parameters: a list of ids."""
        return f"DELETE FROM {self.table} WHERE id = ANY(%s)"

    def pending(self) -> str:
        """Parameters: queue."""
        return f"SELECT count(*) FROM {self.table} WHERE queue = %s"
