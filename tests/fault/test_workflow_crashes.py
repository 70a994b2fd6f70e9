"""Workers SIGKILLed at each step between a flow or batch job's outcome and what it owes
(tests/support/workflow_app.py): no parent or batch is left stuck, and no callback or job
runs twice, as a ledger file outside Redis shows."""

from __future__ import annotations

import asyncio
import collections
import random
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from tests.support.processes import ProcessManager, SpawnedProcess
from tests.support.waiting import async_wait_for

from conveyor import Callback, FlowJob, JobState, Queue

pytestmark = [pytest.mark.fault, pytest.mark.timeout(120)]

Start = Callable[..., SpawnedProcess]


@pytest.fixture
def ledger_file(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.txt"
    path.touch()
    return path


@pytest.fixture
def start(spawn: ProcessManager, redis_url: str, key_prefix: str, ledger_file: Path) -> Start:
    def start_worker(
        name: str, crash: str = "", queues: str = "main", concurrency: int = 1
    ) -> SpawnedProcess:
        env = {
            "CT_URL": redis_url,
            "CT_PREFIX": key_prefix,
            "CT_WORKER": name,
            "CT_WF_CRASH": crash,
            "CT_LEDGER_FILE": str(ledger_file),
            "CT_QUEUES": queues,
            "CT_CONCURRENCY": str(concurrency),
        }
        code = "from tests.support.workflow_app import main; main()"
        proc = spawn(code, env=env, name=name)
        proc.wait_for_output("started: redis=", timeout=15)
        return proc

    return start_worker


@pytest.fixture
async def queues(redis_url: str, key_prefix: str) -> AsyncIterator[dict[str, Queue]]:
    made = {name: Queue(name, url=redis_url, prefix=key_prefix) for name in ("main", "side")}
    yield made
    for queue in made.values():
        await queue.close()


def read_ledger(path: Path) -> dict[str, collections.Counter[str]]:
    entries: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in path.read_text().splitlines():
        kind, job_id, _worker = line.split(" ")
        entries[kind][job_id] += 1
    return entries


def assert_ran_once_but_in_flight(ledger_file: Path, jobs: set[str]) -> None:
    """Every job ran, and a job ran twice only if its first run was on the killed worker,
    before its outcome was recorded (at-least-once delivery, not the workflow, re-runs a
    job: the healer never runs a job twice)."""
    runs: dict[str, list[str]] = collections.defaultdict(list)
    for line in ledger_file.read_text().splitlines():
        kind, job_id, worker = line.split(" ")
        if kind == "ran":
            runs[job_id].append(worker)
    assert set(runs) == jobs
    for job_id, workers in runs.items():
        assert workers in (["doomed"], ["healer"], ["doomed", "healer"]), (job_id, workers)


async def crash_then_recover(start: Start, crash: str, queues: str = "main") -> SpawnedProcess:
    """A worker that dies at ``crash``, then one that does not (and pays what is left)."""
    doomed = start("doomed", crash=crash, queues=queues)
    await async_wait_for(lambda: not doomed.alive, timeout=30, message="the worker never crashed")
    assert doomed.returncode == -signal.SIGKILL, doomed.describe()
    return start("healer", queues=queues)


async def owed_entries(queue: Queue) -> int:
    from conveyor.storage.ops import Op

    return int(await queue.redis.run(Op((("HLEN", queue.commands.keys.owed),), lambda r: r[0])))


async def batch_settled(queue: Queue, batch_id: str) -> bool:
    info = await queue.get_batch(batch_id)
    return info is not None and info.state != "running" and await owed_entries(queue) == 0


@pytest.mark.parametrize("failing", [False, True], ids=["all-succeed", "one-fails"])
@pytest.mark.parametrize("crash", ["after_ack", "before_callback", "after_callback"])
async def test_a_batch_fires_each_callback_once_whatever_step_the_worker_dies_at(
    start: Start, queues: dict[str, Queue], ledger_file: Path, crash: str, failing: bool
) -> None:
    main = queues["main"]
    jobs = [{"name": "leaf", "data": {"n": i, "fail": failing and i == 5}} for i in range(6)]
    batch = await main.add_batch(
        jobs,
        on_complete=Callback("callback", {"k": "complete"}),
        on_success=Callback("callback", {"k": "success"}, queue="side"),
        on_death=Callback("callback", {"k": "death"}),
    )
    await crash_then_recover(start, crash, queues="main,side")
    await async_wait_for(lambda: batch_settled(main, batch.id), timeout=30)
    ledger = read_ledger(ledger_file)
    assert ledger["crash"] == {crash: 1}
    second = "death" if failing else "success"
    expected = {f"batch:{batch.id}:complete": 1, f"batch:{batch.id}:{second}": 1}
    await async_wait_for(lambda: len(read_ledger(ledger_file)["callback"]) == 2, timeout=20)
    ledger = read_ledger(ledger_file)
    assert ledger["callback"] == expected
    assert_ran_once_but_in_flight(ledger_file, {str(i) for i in range(1, 7)})
    info = await main.get_batch(batch.id)
    assert info is not None
    assert (info.total, info.completed, info.failed, info.pending) == (
        6, 5 if failing else 6, 1 if failing else 0, 0,
    )  # fmt: skip
    assert info.state == ("complete" if failing else "success")
    await async_wait_for(lambda: _all_paid(queues), timeout=10)


async def test_a_job_killed_after_growing_its_batch_adds_nothing_twice(
    start: Start, queues: dict[str, Queue], ledger_file: Path
) -> None:
    main = queues["main"]
    batch = await main.add_batch(
        [{"name": "grower", "job_id": "g"}], on_complete=Callback("callback")
    )
    await crash_then_recover(start, "after_grow")
    await async_wait_for(lambda: batch_settled(main, batch.id), timeout=40)
    await async_wait_for(lambda: read_ledger(ledger_file)["callback"], timeout=20)
    ledger = read_ledger(ledger_file)
    assert ledger["started"]["g"] == 2 and ledger["ran"]["g"] == 1  # ran again after the kill
    assert set(ledger["ran"]) == {"g", "g.0", "g.1", "g.2"}
    assert set(ledger["ran"].values()) == {1}
    assert ledger["callback"] == {f"batch:{batch.id}:complete": 1}
    info = await main.get_batch(batch.id)
    assert info is not None and (info.total, info.completed, info.state) == (4, 4, "success")


@pytest.mark.parametrize("crash", ["after_ack", "after_release"])
async def test_a_parent_is_released_once_whatever_step_the_worker_dies_at(
    start: Start, queues: dict[str, Queue], ledger_file: Path, crash: str
) -> None:
    main = queues["main"]
    flow = FlowJob(
        "gather",
        job_id="root",
        children=[FlowJob("leaf", {"n": i}, queue="side", job_id=f"c{i}") for i in range(4)]
        + [FlowJob("leaf", {"n": 9}, job_id="local")],
    )
    await main.add_flow(flow)
    await crash_then_recover(start, crash, queues="main,side")

    async def done() -> bool:
        job = await main.get_job("root")
        return job is not None and job.state is JobState.COMPLETED

    await async_wait_for(done, timeout=30)
    root = await main.get_job("root")
    assert root is not None and root.result == 0 + 10 + 20 + 30 + 90
    ledger = read_ledger(ledger_file)
    assert ledger["crash"] == {crash: 1}
    assert_ran_once_but_in_flight(ledger_file, {"root", "c0", "c1", "c2", "c3", "local"})
    assert ledger["ran"]["root"] == 1 and ledger["started"]["root"] == 1
    await async_wait_for(lambda: _all_paid(queues), timeout=10)


async def _all_paid(queues: dict[str, Queue]) -> bool:
    return all([await owed_entries(q) == 0 for q in queues.values()])


async def test_a_producer_killed_half_way_through_a_flow_leaves_it_to_a_worker(
    spawn: ProcessManager,
    redis_url: str,
    key_prefix: str,
    queues: dict[str, Queue],
    ledger_file: Path,
) -> None:
    env = {
        "CT_URL": redis_url,
        "CT_PREFIX": key_prefix,
        "CT_LEDGER_FILE": str(ledger_file),
        "CT_QUEUES": "main,side",
    }
    code = "from tests.support.workflow_app import produce_flow; produce_flow()"
    producer = spawn(code, env=env, name="producer")
    await async_wait_for(lambda: not producer.alive, timeout=30)
    assert producer.returncode == -signal.SIGKILL, producer.describe()
    top = await queues["main"].get_job("top")
    assert top is not None and top.state is JobState.WAITING_CHILDREN
    assert await queues["side"].get_job("s1") is None  # never added: the producer died first
    worker_env = {**env, "CT_WORKER": "healer", "CT_WF_CRASH": "", "CT_ADDS_GRACE": "0"}
    healer = spawn("from tests.support.workflow_app import main; main()", env=worker_env)
    healer.wait_for_output("started: redis=", timeout=15)

    async def done() -> bool:
        job = await queues["main"].get_job("top")
        return job is not None and job.state is JobState.COMPLETED

    await async_wait_for(done, timeout=30)
    top = await queues["main"].get_job("top")
    assert top is not None and top.result == 30
    assert read_ledger(ledger_file)["ran"] == {"top": 1, "s1": 1, "s2": 1}
    await async_wait_for(lambda: _all_paid(queues), timeout=10)


async def test_a_producer_stopped_half_way_through_a_flow_is_finished_by_a_worker(
    start: Start, queues: dict[str, Queue], ledger_file: Path, monkeypatch: Any
) -> None:
    """The state a producer killed after the first of a flow's calls leaves (the calls are
    made by hand up to there), then a worker makes the rest."""
    from conveyor.workflows import adding, settling

    main = queues["main"]
    flow = FlowJob("gather", job_id="top", children=[FlowJob("leaf", queue="side", job_id="s")])
    _root, calls = adding.flow_calls(main.settings, "main", flow)
    procedure = adding.run_flow_calls(main.settings, calls, first=True)
    await main.redis.run(next(procedure))  # registers the queue
    await main.redis.run(procedure.send(None))  # the root's call: the producer dies here
    procedure.close()
    assert await queues["side"].get_job("s") is None
    monkeypatch.setattr(settling, "ADDS_GRACE_SECONDS", 0.0)
    await main.settle_workflows()  # what a worker's sweep does (after a grace period)
    assert await queues["side"].get_job("s") is not None
    start("healer", queues="main,side")

    async def done() -> bool:
        job = await main.get_job("top")
        return job is not None and job.state is JobState.COMPLETED

    await async_wait_for(done, timeout=30)
    assert read_ledger(ledger_file)["ran"] == {"top": 1, "s": 1}


async def test_workers_killed_at_random_moments_leave_no_stuck_batch_or_flow(
    start: Start, queues: dict[str, Queue], ledger_file: Path
) -> None:
    """Two workers (concurrency 8) SIGKILLed and replaced every 0.2-0.6 s, six times, while a
    batch of 150 jobs (some failing) and a flow of 60 children on another queue run: whatever
    step each kill interrupts, every callback is added once, the counts are exact and the
    parent completes with every child's result."""
    main = queues["main"]
    jobs = [
        {"name": "leaf", "data": {"n": i, "sleep": 0.01, "fail": i % 50 == 7}} for i in range(150)
    ]
    batch = await main.add_batch(
        jobs,
        on_complete=Callback("callback", {"k": "complete"}),
        on_success=Callback("callback", {"k": "success"}),
        on_death=Callback("callback", {"k": "death"}, queue="side"),
    )
    flow = FlowJob(
        "gather",
        job_id="root",
        children=[FlowJob("leaf", {"n": 1, "sleep": 0.01}, queue="side") for _ in range(60)],
    )
    await main.add_flow(flow)
    rng = random.Random(7)
    workers = [start(f"w{i}", queues="main,side", concurrency=8) for i in range(2)]
    for kill in range(6):
        await asyncio.sleep(rng.uniform(0.2, 0.6))
        victim = workers.pop(rng.randrange(len(workers)))
        victim.kill()
        workers.append(start(f"r{kill}", queues="main,side", concurrency=8))

    async def done() -> bool:
        root = await main.get_job("root")
        return (
            root is not None
            and root.state is JobState.COMPLETED
            and await batch_settled(main, batch.id)
            and len(read_ledger(ledger_file)["callback"]) >= 2
        )

    await async_wait_for(done, timeout=60, interval=0.1)
    await async_wait_for(lambda: _all_paid(queues), timeout=10)
    info = await main.get_batch(batch.id)
    assert info is not None
    assert (info.total, info.completed, info.failed, info.pending) == (150, 147, 3, 0)
    assert info.state == "complete"
    ledger = read_ledger(ledger_file)
    assert ledger["callback"] == {f"batch:{batch.id}:complete": 1, f"batch:{batch.id}:death": 1}
    root = await main.get_job("root")
    assert root is not None and root.result == 600
    assert ledger["ran"]["root"] >= 1
