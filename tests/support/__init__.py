"""Test support code for Conveyor's test suites.

Import it as ``tests.support`` (``tests/conftest.py`` makes sure the repository root is
importable however pytest is started). Nothing here imports ``conveyor``.

- :mod:`tests.support.redis_server` -- :class:`RedisServer`, a real ``redis-server``
  on a free loopback port, that can be stopped, killed, restarted and paused.
- :mod:`tests.support.waiting` -- :func:`wait_for` / :func:`async_wait_for`: poll a
  condition with a deadline instead of sleeping.
- :mod:`tests.support.processes` -- start Python subprocesses (e.g. workers) and make
  sure none is left behind.
"""

from tests.support.processes import ProcessManager, SpawnedProcess, spawn_python
from tests.support.redis_server import RedisServer, RedisServerError
from tests.support.waiting import async_wait_for, wait_for

__all__ = [
    "ProcessManager",
    "RedisServer",
    "RedisServerError",
    "SpawnedProcess",
    "async_wait_for",
    "spawn_python",
    "wait_for",
]
