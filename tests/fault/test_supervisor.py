"""``conveyor worker --workers N``: the supervisor restarts dead workers with backoff, stops
them all on SIGTERM, and leaves nothing behind even when it is killed itself."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import textwrap
from pathlib import Path

import pytest
from tests.support.processes import ProcessManager, SpawnedProcess
from tests.support.waiting import wait_for

from conveyor import SyncQueue
from conveyor.admin.discovery import QueueDiscovery
from conveyor.settings import Settings
from conveyor.supervisor import Supervisor

pytestmark = [pytest.mark.fault, pytest.mark.timeout(90)]

CLI = "import sys; from conveyor.cli import main; main()"

TASKS = """
import os
from conveyor import Queue

if os.environ.get("CRASH_ON_START") and os.environ.get("CONVEYOR_WORKER_PROCESS"):
    os._exit(9)

queue = Queue("sup")

@queue.handler("pid")
async def pid(job):
    return os.getpid()
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _children(proc: SpawnedProcess) -> dict[int, int]:
    """Slot number -> pid of the latest start of each worker process."""
    found: dict[int, int] = {}
    for slot, pid in re.findall(r"worker process (\d+) started \(pid (\d+)\)", proc.output()):
        found[int(slot)] = int(pid)
    return found


def _restarts(redis_url: str, key_prefix: str) -> dict[int, int]:
    """pid -> the restarts its heartbeat publishes, for every live worker."""

    async def read() -> dict[int, int]:
        settings = Settings(url=redis_url, prefix=key_prefix)
        async with QueueDiscovery(settings=settings) as discovery:
            return {w["pid"]: w["restarts"] for w in await discovery.workers()}

    return asyncio.run(read())


@pytest.fixture
def supervised(
    tmp_path: Path, spawn: ProcessManager, redis_url: str, key_prefix: str
) -> tuple[Path, dict[str, str]]:
    (tmp_path / "tasks.py").write_text(textwrap.dedent(TASKS))
    return tmp_path, {"REDIS_URL": redis_url, "CONVEYOR_PREFIX": key_prefix}


def test_a_killed_worker_is_restarted_and_sigterm_stops_all(
    spawn: ProcessManager, supervised: tuple[Path, dict[str, str]], redis_url: str, key_prefix: str
) -> None:
    cwd, env = supervised
    proc = spawn(CLI, args=["worker", "tasks:queue", "--workers", "2"], env=env, cwd=cwd)
    wait_for(lambda: len(_children(proc)) == 2, timeout=20, message=proc.describe)
    first = _children(proc)
    wait_for(lambda: proc.output().count("started: redis=") == 2, timeout=20, message=proc.describe)

    os.kill(first[1], signal.SIGKILL)
    proc.wait_for_output("was killed by SIGKILL", timeout=10)
    wait_for(lambda: _children(proc)[1] != first[1], timeout=20, message=proc.describe)
    assert _children(proc)[2] == first[2]  # the other one was left alone

    with SyncQueue("sup", url=redis_url, prefix=key_prefix) as queue:
        jobs = [queue.add("pid") for _ in range(10)]
        pids = {queue.wait(job.id, timeout=20) for job in jobs}
    current = set(_children(proc).values())
    assert pids <= current
    # Each worker's heartbeat says how often its slot was restarted (the workers view shows it).
    restarted, untouched = _children(proc)[1], first[2]
    wait_for(lambda: _restarts(redis_url, key_prefix).get(restarted) == 1, timeout=10)
    assert _restarts(redis_url, key_prefix)[untouched] == 0

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, proc.describe()
    for pid in current:
        wait_for(lambda pid=pid: not _alive(pid), timeout=10, message=f"worker {pid} left")


def test_restarts_back_off_when_workers_keep_dying(
    spawn: ProcessManager, supervised: tuple[Path, dict[str, str]]
) -> None:
    cwd, env = supervised
    proc = spawn(
        CLI,
        args=["worker", "tasks:queue", "--workers", "1"],
        env={**env, "CRASH_ON_START": "1", "CONVEYOR_RELOAD": "1"},
        cwd=cwd,
    )
    # --reload runs the supervisor too; the target crashes each time it is imported.
    wait_for(lambda: proc.output().count("restarting in") >= 3, timeout=30, message=proc.describe)
    delays = [float(d) for d in re.findall(r"restarting in ([\d.]+) s", proc.output())]
    assert delays[:3] == [0.5, 1.0, 2.0]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


def test_a_configuration_error_stops_the_supervisor(
    spawn: ProcessManager, supervised: tuple[Path, dict[str, str]]
) -> None:
    cwd, env = supervised
    proc = spawn(CLI, args=["worker", "tasks:nothing", "--workers", "2"], env=env, cwd=cwd)
    assert proc.wait(timeout=30) == 2, proc.describe()


def test_workers_stop_by_themselves_when_the_supervisor_is_killed(
    spawn: ProcessManager, supervised: tuple[Path, dict[str, str]]
) -> None:
    cwd, env = supervised
    proc = spawn(CLI, args=["worker", "tasks:queue", "--workers", "2"], env=env, cwd=cwd)
    wait_for(lambda: len(_children(proc)) == 2, timeout=20, message=proc.describe)
    pids = list(_children(proc).values())
    wait_for(lambda: proc.output().count("started: redis=") == 2, timeout=20, message=proc.describe)
    os.kill(proc.pid, signal.SIGKILL)  # only the supervisor: its children are in other groups
    proc.popen.wait()
    for pid in pids:
        wait_for(lambda pid=pid: not _alive(pid), timeout=15, message=f"orphan worker {pid} left")


def test_reload_restarts_workers_when_code_changes(
    spawn: ProcessManager, supervised: tuple[Path, dict[str, str]]
) -> None:
    cwd, env = supervised
    proc = spawn(CLI, args=["worker", "tasks:queue", "--reload"], env=env, cwd=cwd)
    wait_for(lambda: 1 in _children(proc), timeout=20, message=proc.describe)
    before = _children(proc)[1]
    proc.wait_for_output("started: redis=", timeout=20)
    tasks = cwd / "tasks.py"
    tasks.write_text(tasks.read_text() + "\n# changed\n")
    os.utime(tasks, (tasks.stat().st_atime, tasks.stat().st_mtime + 5))
    proc.wait_for_output("changes detected", timeout=15)
    wait_for(lambda: _children(proc)[1] != before, timeout=20, message=proc.describe)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_backoff_policy() -> None:
    supervisor = Supervisor(["true"], 1, backoff_base=0.5, backoff_max=4.0)
    assert [supervisor.backoff(n) for n in range(6)] == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0]
