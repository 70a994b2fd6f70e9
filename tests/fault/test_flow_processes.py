"""Flow control across worker processes (tests/support/flow_worker_app.py), checked from a
ledger file of start and end times written by the handlers, outside Redis: the queue's rate
limit, a group's concurrency, fairness between groups, 10,000 groups of one job draining, and
the slots of a SIGKILLed worker."""

from __future__ import annotations

import itertools
import signal
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from tests.support.processes import ProcessManager, SpawnedProcess
from tests.support.waiting import async_wait_for

from conveyor import Queue, RateLimit

pytestmark = pytest.mark.fault

Entry = tuple[str, str, str, float, str]  # kind, job id, group, epoch s, worker


@pytest.fixture
def ledger_file(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.txt"
    path.touch()
    return path


def read_ledger(path: Path) -> list[Entry]:
    entries = []
    for line in path.read_text().splitlines():
        kind, job_id, group, at, worker = line.split()
        entries.append((kind, job_id, group, float(at), worker))
    return entries


def starts(path: Path) -> list[Entry]:
    return [e for e in read_ledger(path) if e[0] == "start"]


@pytest.fixture
def start_worker(
    spawn: ProcessManager, redis_url: str, key_prefix: str, ledger_file: Path
) -> Callable[..., SpawnedProcess]:
    def start(name: str, **env: Any) -> SpawnedProcess:
        variables = {
            "CT_URL": redis_url,
            "CT_PREFIX": key_prefix,
            "CT_WORKER": name,
            "CT_LEDGER_FILE": str(ledger_file),
        }
        variables.update({f"CT_{k.upper()}": str(v) for k, v in env.items()})
        code = "from tests.support.flow_worker_app import main; main()"
        proc = spawn(code, env=variables, name=name)
        proc.wait_for_output("started: redis=", timeout=15)
        return proc

    return start


@pytest.fixture
async def jobs(redis_url: str, key_prefix: str) -> AsyncIterator[Queue]:
    queue = Queue("jobs", url=redis_url, prefix=key_prefix)
    yield queue
    await queue.close()


def most_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


@pytest.mark.timeout(60)
async def test_a_rate_limit_of_20_a_second_holds_over_two_processes_of_50_slots(
    start_worker: Callable[..., SpawnedProcess], jobs: Queue, ledger_file: Path
) -> None:
    await jobs.set_rate_limit(RateLimit(20, per=1))
    await jobs.add_bulk([{"name": "t", "data": i} for i in range(100)])
    start_worker("A", concurrency=50)
    start_worker("B", concurrency=50)
    await async_wait_for(lambda: len(starts(ledger_file)) == 100, timeout=30)
    times = [e[3] for e in starts(ledger_file)]
    # The limit counts starts as the fetch script sees them (Redis time); the handlers note
    # theirs a little later, by up to a few ms of scheduling in their own process.
    assert most_in_window(times, 0.99) <= 20
    assert max(times) - min(times) >= 3.9  # 100 jobs at 20 a second: five windows
    assert {e[4] for e in starts(ledger_file)} == {"A", "B"}
    counts = await jobs.counts()
    assert (counts["completed"], counts["failed"]) == (100, 0)


@pytest.mark.timeout(60)
async def test_group_concurrency_1_holds_over_four_processes(
    start_worker: Callable[..., SpawnedProcess], jobs: Queue, ledger_file: Path
) -> None:
    await jobs.set_group_defaults(concurrency=1)
    for name in "ABCD":
        start_worker(name, concurrency=20)
    await jobs.add_bulk(
        [{"name": "t", "data": {"sleep": 0.01}, "group": f"g{i % 5}"} for i in range(150)]
    )
    await async_wait_for(
        lambda: sum(1 for e in read_ledger(ledger_file) if e[0] == "end") == 150, timeout=40
    )
    spans: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    begun: dict[str, Entry] = {}
    for entry in read_ledger(ledger_file):
        if entry[0] == "start":
            begun[entry[1]] = entry
        else:
            start = begun[entry[1]]
            spans[entry[2]].append((start[3], entry[3], start[4]))
    assert sorted(spans) == [f"g{i}" for i in range(5)]
    workers = set()
    for group, runs in spans.items():
        runs.sort()
        for (_, end, _), (next_start, _, _) in itertools.pairwise(runs):
            assert next_start >= end, f"two jobs of {group} ran at once"
        workers.update(w for _, _, w in runs)
    assert len(workers) >= 2  # the groups really were spread over the processes


@pytest.mark.timeout(90)
async def test_a_small_group_added_behind_a_big_one_starts_within_about_100_starts(
    start_worker: Callable[..., SpawnedProcess], jobs: Queue, ledger_file: Path
) -> None:
    await jobs.add_bulk([{"name": "t", "data": i, "group": "A"} for i in range(5000)])
    start_worker("W1", concurrency=10)
    start_worker("W2", concurrency=10)
    await async_wait_for(lambda: len(starts(ledger_file)) >= 300, timeout=30)
    await jobs.add_bulk([{"name": "t", "data": i, "group": "B"} for i in range(50)])
    added_at = time.time()  # the add was stored by then
    await async_wait_for(
        lambda: sum(1 for e in starts(ledger_file) if e[2] == "B") == 50, timeout=30
    )
    ledger = sorted(starts(ledger_file), key=lambda e: e[3])
    order = [e[2] for e in ledger]
    before = sum(1 for e in ledger if e[3] < added_at)
    last_b = max(i for i, group in enumerate(order) if group == "B")
    # Round robin: B's 50 alternate with A's 50 (100 starts), plus the jobs already handed
    # out when B was added (at most the 20 slots).
    assert last_b - before <= 125, (last_b, before)
    assert "A" in order[last_b + 1 :] or (await jobs.counts())["waiting"] == 0


def _ended(path: Path) -> int:
    return path.read_bytes().count(b"\nend ") + path.read_bytes().startswith(b"end ")


async def _completed(queue: Queue, n: int) -> bool:
    return (await queue.counts())["completed"] >= n


@pytest.mark.timeout(120)
async def test_10000_groups_of_one_job_each_drain_every_job_once_and_leave_no_group(
    start_worker: Callable[..., SpawnedProcess], jobs: Queue, ledger_file: Path
) -> None:
    # How fast they drain against the same jobs without groups is a figure, not a check, on a
    # shared machine: CONVEYOR_BENCH_GROUPS=10000 benchmarks/run.py (docs/flow-control.md).
    n = 10_000
    await jobs.add_bulk([{"name": "t", "group": f"g{i}"} for i in range(n)])
    start_worker("G", concurrency=100)
    await async_wait_for(lambda: _ended(ledger_file) >= n, timeout=90, interval=0.1)
    ended = [entry[1] for entry in read_ledger(ledger_file) if entry[0] == "end"]
    assert len(ended) == n and len(set(ended)) == n  # every job ran, none twice

    async def acknowledged() -> bool:  # a handler's "end" comes before its job's completion
        counts = await jobs.counts()
        return counts["waiting"] == counts["active"] == 0

    await async_wait_for(acknowledged, timeout=30)
    assert (await jobs.counts())["failed"] == 0
    assert await jobs.groups() == []  # and nothing of 10,000 groups is left behind


@pytest.mark.timeout(60)
async def test_a_sigkilled_worker_gives_its_group_slots_back_with_its_leases(
    start_worker: Callable[..., SpawnedProcess],
    jobs: Queue,
    ledger_file: Path,
    redis_url: str,
    key_prefix: str,
) -> None:
    await jobs.set_group("g", concurrency=2)
    await jobs.add_bulk(
        [{"name": "t", "data": {"sleep": 30, "once": True}, "group": "g"} for _ in range(2)]
        + [{"name": "t", "data": {"sleep": 0.01}, "group": "g"} for _ in range(4)]
    )
    a = start_worker("A", concurrency=10)
    await async_wait_for(lambda: len(starts(ledger_file)) == 2, timeout=10)
    info = await jobs.get_group("g")
    assert info is not None and (info.active, info.waiting) == (2, 4)
    a.send_signal(signal.SIGKILL)
    a.wait(timeout=5)
    start_worker("B", concurrency=10)  # reclaims A's leases once A's beats are silent
    await async_wait_for(lambda: _completed(jobs, 6), timeout=30)
    ran_on = {e[1]: e[4] for e in read_ledger(ledger_file) if e[0] == "end"}
    assert len(ran_on) == 6 and set(ran_on.values()) == {"B"}
    g = await jobs.get_group("g")
    assert g is not None and (g.active, g.waiting) == (0, 0)
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        assert await client.hgetall(f"{key_prefix}:{{jobs}}:gactive") == {}
        assert await client.hget(f"{key_prefix}:{{jobs}}:g:g", "active") is None
    finally:
        await client.aclose()
