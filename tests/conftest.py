"""Shared fixtures for all Conveyor test suites.

- ``redis_server`` (session): one real redis-server for the whole run (noeviction, no
  persistence). Never FLUSHALL/FLUSHDB it and never kill/pause it: tests share it.
  Isolate data with ``key_prefix``. Tests that kill, restart or pause Redis start their
  own server with ``make_redis``.
- ``redis_url``: URL of the session server.
- ``key_prefix``: a unique Conveyor key prefix per test, e.g. ``ct1a2b3c4d``.
- ``make_redis``: start private :class:`RedisServer` instances; all closed at teardown.
- ``spawn``: start ``python -c`` subprocesses (workers...); all killed at teardown.

Nothing here imports ``conveyor`` itself.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Make `tests.support` importable however pytest is started (`python -m pytest` puts the
# working directory on sys.path, the `pytest` script does not).
_REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from tests.support.processes import ProcessManager  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole session: noeviction, no RDB, no AOF."""
    with RedisServer(maxmemory_policy="noeviction", save="", appendonly=False) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """``redis://127.0.0.1:PORT/0`` of the shared session server."""
    return redis_server.url


@pytest.fixture
def key_prefix() -> str:
    """A key prefix unique to this test (``ct`` + 8 hex digits)."""
    return f"ct{secrets.token_hex(4)}"


@pytest.fixture
def make_redis() -> Iterator[Callable[..., RedisServer]]:
    """Factory for private, started RedisServers (kwargs as for RedisServer)."""
    servers: list[RedisServer] = []

    def make(**kwargs: Any) -> RedisServer:
        server = RedisServer(**kwargs)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[ProcessManager]:
    """``spawn(code, *, args=(), env=None, name=None, cwd=None) -> SpawnedProcess``.

    Runs ``python -c code`` (dedented) with ``src`` on PYTHONPATH and stdout/stderr in
    ``tmp_path/processes``. Every process started is terminated (SIGTERM, then SIGKILL
    of its whole process group) at teardown.
    """
    manager = ProcessManager(tmp_path / "processes")
    try:
        yield manager
    finally:
        manager.close()
