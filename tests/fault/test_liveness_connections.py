"""The "no connection left" rule of worker liveness, with real worker processes: every
connection of a worker is named after it, the rule needs them all gone, and only a checker whose
own beats flow applies it.

A frozen worker (SIGSTOP) keeps its sockets open, so on its own it is found by silence only
(4 s). Closing its connections on the server (CLIENT KILL) makes it look like a dead process,
whose sockets the kernel closes: then a steady checker takes its job within the grace (1 s).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from tests.support.processes import SpawnedProcess
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import async_wait_for

from conveyor import Queue

StartWorker = Callable[..., SpawnedProcess]
Ledger = Callable[..., Any]


@pytest.fixture
def server(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def named_connections(server: redis.Redis, worker: SpawnedProcess) -> dict[str, list[int]]:
    """Name -> client ids of the named connections of the worker process (its worker id is
    ``host:pid:random``)."""
    found: dict[str, list[int]] = {}
    for client in server.client_list():
        name = client.get("name", "")
        if name.startswith("conveyor:") and f":{worker.pid}:" in name:
            found.setdefault(name, []).append(int(client["id"]))
    return found


def kill_connections(server: redis.Redis, worker: SpawnedProcess, roles: tuple[str, ...]) -> None:
    for name, ids in named_connections(server, worker).items():
        if name.split(":")[1] in roles:
            for client_id in ids:
                server.client_kill_filter(_id=client_id)


async def _started_on(ledger: Ledger, worker: str) -> bool:
    return any(w == worker for _, w in await ledger("started"))


async def _frozen_job_taken(
    a: SpawnedProcess, b: SpawnedProcess, ledger: Ledger, kill: Callable[[], None]
) -> float:
    """Freeze A (running a job), ``kill`` some of its connections, and return how long B took to
    start A's job."""
    a.send_signal(signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        kill()
        await async_wait_for(
            lambda: _started_on(ledger, "B"),
            timeout=15,
            interval=0.02,
            message=lambda: f"B never took the frozen worker's job:\n{b.stderr()}",
        )
        return time.monotonic() - stopped_at
    finally:
        a.send_signal(signal.SIGCONT)


async def _running_a_job(
    start_worker: StartWorker, jobs_queue: Queue, ledger: Ledger, **b_env: Any
) -> tuple[SpawnedProcess, SpawnedProcess]:
    a = start_worker("A")
    await jobs_queue.add("record", {"sleep": 8})
    await async_wait_for(lambda: ledger("started"), timeout=10, message="A never started")
    b = start_worker("B", **b_env)
    await asyncio.sleep(0.6)  # B judges silence against its own previous beat
    return a, b


@pytest.mark.timeout(60)
async def test_every_connection_of_a_worker_is_named_after_it(
    start_worker: StartWorker, jobs_queue: Queue, ledger: Ledger, server: redis.Redis
) -> None:
    a = start_worker("A")
    await jobs_queue.add("record", {"sleep": 0.1})
    await async_wait_for(lambda: ledger("ran"), timeout=10, message="A never ran the job")
    names = named_connections(server, a)
    roles = {name.split(":")[1] for name in names}
    assert roles == {"w", "w-jobs", "w-wait"}, names
    assert len({name.split(":", 2)[2] for name in names}) == 1, names  # one worker id
    a.send_signal(signal.SIGKILL)
    a.wait(timeout=5)
    await async_wait_for(lambda: _none_left(server, a), timeout=5, message="connections linger")


async def _none_left(server: redis.Redis, worker: SpawnedProcess) -> bool:
    return not named_connections(server, worker)


@pytest.mark.timeout(60)
async def test_a_worker_whose_job_connections_remain_is_not_taken_for_dead_by_connections(
    start_worker: StartWorker, jobs_queue: Queue, ledger: Ledger, server: redis.Redis
) -> None:
    # Only the liveness connection goes: its job and wait connections still show, so the
    # connection rule does not apply and A is found by silence alone (4 s).
    a, b = await _running_a_job(start_worker, jobs_queue, ledger)
    took = await _frozen_job_taken(a, b, ledger, lambda: kill_connections(server, a, ("w",)))
    assert took > 3, f"taken after {took:.2f} s, before the silence rule could apply"
    assert "silent for" in b.stderr() and "no connection left" not in b.stderr(), b.stderr()
    print(f"liveness connection gone, jobs connections left: taken {took:.2f} s after SIGSTOP")


@pytest.mark.timeout(60)
async def test_a_worker_with_no_connection_left_is_taken_for_dead_within_the_grace(
    start_worker: StartWorker, jobs_queue: Queue, ledger: Ledger, server: redis.Redis
) -> None:
    a, b = await _running_a_job(start_worker, jobs_queue, ledger)
    every = ("w", "w-jobs", "w-wait")
    took = await _frozen_job_taken(a, b, ledger, lambda: kill_connections(server, a, every))
    assert took < 2.5, f"taken after {took:.2f} s"
    assert "no connection left" in b.stderr(), b.stderr()
    print(f"every connection gone: taken {took:.2f} s after SIGSTOP")


@pytest.mark.timeout(90)
async def test_a_checker_whose_own_beats_are_held_up_judges_by_silence_only(
    start_worker: StartWorker,
    jobs_queue: Queue,
    ledger: Ledger,
    server: redis.Redis,
    proxy: TcpProxy,
    redis_url: str,
) -> None:
    # B's beats cross 700 ms of latency each way (one every ~1.4 s, more than the 1 s grace):
    # the connection rule is not B's to apply, though A has no connection left.
    a, b = await _running_a_job(
        start_worker, jobs_queue, ledger, url=proxy.url, record_url=redis_url
    )
    proxy.delay(0.7)
    await asyncio.sleep(3.0)  # B's beats settle into the slow pace
    every = ("w", "w-jobs", "w-wait")
    took = await _frozen_job_taken(a, b, ledger, lambda: kill_connections(server, a, every))
    assert took > 3, f"taken after {took:.2f} s, before the silence rule could apply"
    assert "silent for" in b.stderr() and "no connection left" not in b.stderr(), b.stderr()
    print(f"held-up checker: taken {took:.2f} s after SIGSTOP (silence rule)")
