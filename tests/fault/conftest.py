from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from tests.support.postgres import outbox, pg_dsn  # noqa: F401 (the outbox tests' fixtures)
from tests.support.processes import ProcessManager, SpawnedProcess
from tests.support.redis_server import RedisServer
from tests.support.tcp_proxy import TcpProxy
from tests.support.topologies import ClusterSetup

from conveyor import Queue

pytestmark = pytest.mark.fault


@pytest.fixture
def proxy(redis_server: RedisServer) -> Iterator[TcpProxy]:
    """A TCP proxy to the test's Redis, to cut, slow down or reset a client's link."""
    with TcpProxy(redis_server.port) as p:
        yield p


@pytest.fixture(scope="session")
def cluster() -> Iterator[ClusterSetup]:
    """A Redis Cluster of 3 masters without replicas, built once for the modules that use it
    (each test keeps to its own key prefix); test_cluster.py's failovers use their own."""
    with ClusterSetup(masters=3, replicas=0) as setup:
        yield setup


@pytest.fixture
def start_worker(
    spawn: ProcessManager, redis_url: str, key_prefix: str
) -> Callable[..., SpawnedProcess]:
    """``start_worker(name, **env)``: a worker process (tests/support/worker_app.py), running."""

    def start(name: str, **env: Any) -> SpawnedProcess:
        variables = {"CT_URL": redis_url, "CT_PREFIX": key_prefix, "CT_WORKER": name}
        variables.update({f"CT_{k.upper()}": str(v) for k, v in env.items()})
        proc = spawn("from tests.support.worker_app import main; main()", env=variables, name=name)
        proc.wait_for_output("started: redis=", timeout=15)
        return proc

    return start


@pytest.fixture
async def jobs_queue(redis_url: str, key_prefix: str) -> AsyncIterator[Queue]:
    queue = Queue("jobs", url=redis_url, prefix=key_prefix)
    yield queue
    await queue.close()


@pytest.fixture
async def ledger(redis_url: str, key_prefix: str) -> AsyncIterator[Callable[..., Any]]:
    """``await ledger("ran")``: the entries ``job_id:worker`` the worker app recorded."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)

    async def read(kind: str) -> list[tuple[str, str]]:
        entries = await client.lrange(f"{key_prefix}:{kind}", 0, -1)
        return [tuple(entry.rsplit(":", 1)) for entry in entries]  # type: ignore[misc]

    yield read
    await client.aclose()
