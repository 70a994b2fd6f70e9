"""A throwaway PostgreSQL database per test, on the machine's server.

The server is ``$CONVEYOR_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/
postgres``; scripts/setup makes sure it runs). Each test gets its own database,
``conveyor_test_<random>``, created here and dropped at teardown; no other database is touched.
The fixtures ``pg_dsn`` (that database) and ``outbox`` (an :class:`~conveyor.outbox.Outbox` of
the test's ``queue``, with its table and an ``orders`` table) are the outbox tests'; the
conftest.py files of their folders import them.
When the server cannot be reached at all, the test skips locally and fails under CI
(tests/support/prerequisites.py).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from tests.support.prerequisites import missing, require_module

if TYPE_CHECKING:
    from conveyor import Queue
    from conveyor.outbox import Outbox

ADMIN_DSN = os.environ.get(
    "CONVEYOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _admin_connection():  # type: ignore[no-untyped-def]
    psycopg = require_module("psycopg", "psycopg is not installed (scripts/setup)")
    try:
        return psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        missing(f"PostgreSQL is unreachable at {ADMIN_DSN} ({exc}); run scripts/setup")


def dsn_for(database: str) -> str:
    base, _, _ = ADMIN_DSN.rpartition("/")
    return f"{base}/{database}"


@contextlib.contextmanager
def temporary_database() -> Iterator[str]:
    """The DSN of a fresh, empty database, dropped (with its connections) afterwards. Test
    modules wrap it in their own ``pg_dsn`` fixture."""
    name = f"conveyor_test_{secrets.token_hex(6)}"
    with _admin_connection() as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield dsn_for(name)
    finally:
        with _admin_connection() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    with temporary_database() as dsn:
        yield dsn


@pytest.fixture
def outbox(queue: Queue, pg_dsn: str) -> Outbox:
    from conveyor.outbox import Outbox  # here: a conftest.py imports this module for every test

    box = Outbox(queue, pg_dsn)
    psycopg = require_module("psycopg", "psycopg is not installed (scripts/setup)")
    with psycopg.connect(pg_dsn) as conn:
        box.create_table(conn)
        conn.execute("CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL)")
    return box
