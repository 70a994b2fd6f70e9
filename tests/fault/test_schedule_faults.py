"""Job schedulers hold under many workers and their deaths, checked from a ledger of runs kept
outside Redis (a file each worker process appends to): one job per tick, no tick missing and
none twice, with 3 worker processes and an ``every=1`` schedule for 20 s, also while workers
are SIGKILLed and restarted; concurrent upserts from 4 processes; Redis restarted with AOF."""

from __future__ import annotations

import asyncio
import collections
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.support.processes import ProcessManager, SpawnedProcess
from tests.support.waiting import async_wait_for

from conveyor import Queue, SyncQueue

pytestmark = [pytest.mark.fault, pytest.mark.timeout(120)]

StartWorker = Callable[..., SpawnedProcess]


@pytest.fixture
def ledger_file(tmp_path: Path) -> Path:
    return tmp_path / "ledger.txt"


@pytest.fixture
def start_ticker(
    spawn: ProcessManager, redis_url: str, key_prefix: str, ledger_file: Path
) -> StartWorker:
    """``start_ticker(name, url=...)``: a worker process (tests/support/schedule_worker.py)."""

    def start(name: str, **env: Any) -> SpawnedProcess:
        variables = {
            "CT_URL": redis_url,
            "CT_PREFIX": key_prefix,
            "CT_WORKER": name,
            "CT_LEDGER_FILE": str(ledger_file),
            "CT_LIVENESS": "2",
        }
        variables.update({f"CT_{k.upper()}": str(v) for k, v in env.items()})
        code = "from tests.support.schedule_worker import main; main()"
        proc = spawn(code, env=variables, name=name)
        proc.wait_for_output("started: redis=", timeout=20)
        return proc

    return start


def _runs(ledger_file: Path) -> collections.Counter[str]:
    """Job id -> how many times it ran."""
    if not ledger_file.exists():
        return collections.Counter()
    lines = ledger_file.read_text().splitlines()
    return collections.Counter(line.split(" ")[1] for line in lines if line.startswith("ran "))


def _ticks(runs: collections.Counter[str], schedule_id: str) -> list[int]:
    prefix = f"schedule:{schedule_id}:"
    assert all(job_id.startswith(prefix) for job_id in runs), runs
    return sorted(int(job_id.removeprefix(prefix)) for job_id in runs)


def _assert_every_tick_once(ticks: list[int], first_ms: float, last_ms: float) -> None:
    """Ticks on the whole second, consecutive (none missing), each once, spanning the run."""
    assert ticks, "no tick ran"
    assert len(ticks) == len(set(ticks)), "a tick ran as two jobs"
    assert all(t % 1000 == 0 for t in ticks)
    missing = sorted(set(range(ticks[0], ticks[-1] + 1, 1000)) - set(ticks))
    assert missing == [], f"ticks missing: {missing}"
    assert ticks[0] <= first_ms + 2000, "the first ticks did not run"
    assert ticks[-1] >= last_ms - 2000, "the last ticks did not run"


async def _run_schedule_for(
    queue: Queue, seconds: float, ledger_file: Path, during: Callable[[float], None] | None = None
) -> tuple[list[int], collections.Counter[str], float, float]:
    made = await queue.schedule("every-second", "tick", every=1)
    assert made.next_run is not None
    first_ms = made.next_run.timestamp() * 1000
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        if during is not None:
            during(elapsed)
        await asyncio.sleep(0.1)  # the scheduled run lasts this long; nothing to poll for
    assert await queue.unschedule("every-second")
    last_ms = time.time() * 1000
    stored = await queue.counts()

    async def settled() -> bool:
        counts = await queue.counts()
        return counts["waiting"] == 0 and counts["active"] == 0

    await async_wait_for(settled, timeout=20, message=lambda: f"jobs left: {stored}")
    runs = _runs(ledger_file)
    return _ticks(runs, "every-second"), runs, first_ms, last_ms


async def test_three_workers_run_one_job_per_tick_for_20_seconds(
    start_ticker: StartWorker, redis_url: str, key_prefix: str, ledger_file: Path
) -> None:
    for name in ("A", "B", "C"):
        start_ticker(name)
    async with Queue("ticks", url=redis_url, prefix=key_prefix) as queue:
        ticks, runs, first_ms, last_ms = await _run_schedule_for(queue, 20, ledger_file)
        completed = await queue.get_jobs("completed", 0, -1)
    _assert_every_tick_once(ticks, first_ms, last_ms)
    assert len(ticks) >= 18
    assert set(runs.values()) == {1}, "a job ran twice"
    assert {job.id for job in completed} == set(runs)  # Redis made no job the ledger lacks


async def test_ticks_hold_while_workers_are_sigkilled_and_restarted(
    start_ticker: StartWorker, redis_url: str, key_prefix: str, ledger_file: Path
) -> None:
    workers = {name: start_ticker(name) for name in ("A", "B", "C")}
    plan = {4.0: "A", 9.0: "B", 14.0: "C"}  # kill one, restart it two seconds later
    restarts: dict[float, str] = {}

    def chaos(elapsed: float) -> None:
        for at, name in list(plan.items()):
            if elapsed >= at:
                workers[name].kill()
                del plan[at]
                restarts[at + 2.0] = name
        for at, name in list(restarts.items()):
            if elapsed >= at:
                workers[name] = start_ticker(f"{name}2")
                del restarts[at]

    async with Queue("ticks", url=redis_url, prefix=key_prefix) as queue:
        ticks, runs, first_ms, last_ms = await _run_schedule_for(queue, 20, ledger_file, chaos)
        jobs = await queue.get_jobs("completed", 0, -1)
    assert plan == {} and restarts == {}
    _assert_every_tick_once(ticks, first_ms, last_ms)
    assert len(ticks) >= 17
    # A job whose worker died after running it may run again (at least once), never as a
    # second job for the same tick.
    assert max(runs.values()) <= 2
    assert {job.id for job in jobs} == set(runs)


async def test_a_worker_frozen_mid_turn_cannot_fire_a_stale_plan(
    start_ticker: StartWorker, redis_url: str, key_prefix: str, ledger_file: Path
) -> None:
    # SIGSTOP freezes a worker wherever it is, possibly between reading a due tick and firing
    # it; the others fire that tick and the next ones, and when the frozen one wakes its plan
    # is refused: no tick runs twice.
    workers = [start_ticker(name) for name in ("A", "B", "C")]
    frozen: list[float] = []

    def freeze(elapsed: float) -> None:
        for at, index in ((2.0, 0), (4.0, 1)):
            if elapsed >= at and at not in frozen:
                workers[index].send_signal(signal.SIGSTOP)
                frozen.append(at)
        for at, index in ((6.0, 0), (7.0, 1)):
            if elapsed >= at and at not in frozen:
                workers[index].send_signal(signal.SIGCONT)
                frozen.append(at)

    async with Queue("ticks", url=redis_url, prefix=key_prefix) as queue:
        ticks, runs, first_ms, last_ms = await _run_schedule_for(queue, 10, ledger_file, freeze)
    assert len(frozen) == 4
    _assert_every_tick_once(ticks, first_ms, last_ms)
    # A job leased by a frozen worker may be handed to another (at least once); never a
    # second job for one tick.
    assert max(runs.values()) <= 2


_UPSERTER = """
import sys
from conveyor import SyncQueue
url, prefix, proc = sys.argv[1], sys.argv[2], int(sys.argv[3])
with SyncQueue("ticks", url=url, prefix=prefix) as queue:
    for n in range(40):
        queue.schedule("shared", "tick", {"proc": proc, "n": n}, every=1)
print("upserts done", flush=True)
"""


def test_concurrent_upserts_from_four_processes_leave_one_schedule_with_the_last(
    spawn: ProcessManager,
    start_ticker: StartWorker,
    redis_url: str,
    key_prefix: str,
    ledger_file: Path,
) -> None:
    start_ticker("A")
    start_ticker("B")
    with SyncQueue("ticks", url=redis_url, prefix=key_prefix) as queue:
        queue.schedule("shared", "tick", {"proc": -1, "n": -1}, every=1)
        first_ms = queue.get_schedule("shared").next_run.timestamp() * 1000  # type: ignore[union-attr]
        time.sleep(1.5)  # ticks run before and during the upserts
        procs = [
            spawn(_UPSERTER, args=(redis_url, key_prefix, str(p)), name=f"upsert{p}")
            for p in range(4)
        ]
        for proc in procs:
            proc.wait_for_output("upserts done", timeout=60)
        time.sleep(2.5)  # and after them
        stored = queue.get_schedule("shared")
        assert stored is not None
        assert stored.data in [{"proc": p, "n": 39} for p in range(4)]  # the last upsert
        assert [s.id for s in queue.schedules()] == ["shared"]
        assert stored.next_run is not None and stored.next_run.timestamp() > time.time() - 6
        queue.unschedule("shared")
        last_ms = time.time() * 1000
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            counts = queue.counts()
            if counts["waiting"] == 0 and counts["active"] == 0:
                break
            time.sleep(0.05)
    runs = _runs(ledger_file)
    _assert_every_tick_once(_ticks(runs, "shared"), first_ms, last_ms)
    assert set(runs.values()) == {1}


async def test_ticks_survive_a_redis_restart_with_aof(
    make_redis: Callable[..., Any], start_ticker: StartWorker, key_prefix: str, ledger_file: Path
) -> None:
    server = make_redis(appendonly=True, appendfsync="always")
    start_ticker("A", url=server.url, socket_timeout=2)
    start_ticker("B", url=server.url, socket_timeout=2)
    async with Queue("ticks", url=server.url, prefix=key_prefix) as queue:
        await queue.schedule("durable", "tick", every=1)
        await async_wait_for(lambda: len(_runs(ledger_file)) >= 3, timeout=15)
        server.kill()
        server.start()  # same port and directory: the AOF is replayed
        before = len(_runs(ledger_file))
        await async_wait_for(
            lambda: len(_runs(ledger_file)) >= before + 3,
            timeout=30,
            message="no tick ran after the restart",
        )
        stored = await queue.get_schedule("durable")
        assert stored is not None and stored.next_run is not None
        await queue.unschedule("durable")
    runs = _runs(ledger_file)
    ticks = _ticks(runs, "durable")
    assert len(ticks) == len(set(ticks))
    assert max(runs.values()) <= 2
