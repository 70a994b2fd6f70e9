"""``conveyor schedules`` (list, pause, resume, trigger, remove), run as a subprocess against a
real Redis."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.support.processes import python_env

from conveyor import SyncQueue

pytestmark = pytest.mark.timeout(60)

CLI = "import sys; from conveyor.cli import main; main()"
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(tmp_path: Path, redis_url: str, key_prefix: str) -> Run:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = python_env({"REDIS_URL": redis_url, "CONVEYOR_PREFIX": key_prefix, "COLUMNS": "250"})
        return subprocess.run(
            [sys.executable, "-c", CLI, *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=30,
        )

    return run


@pytest.fixture
def queue(redis_url: str, key_prefix: str) -> SyncQueue:
    with SyncQueue("reports", url=redis_url, prefix=key_prefix) as q:
        q.schedule("nightly", "report", {"kind": "daily"}, cron="0 3 * * *", tz="Europe/Berlin")
        q.schedule("poll", "poll", every=30)
        yield q  # type: ignore[misc]


def test_list_shows_timetable_next_run_and_last_job(cli: Run, queue: SyncQueue) -> None:
    job = queue.trigger_schedule("poll")
    done = cli("schedules", "reports")
    assert done.returncode == 0, done.stderr
    assert "nightly" in done.stdout and "cron 0 3 * * * (Europe/Berlin)" in done.stdout
    assert "every 30s" in done.stdout and f"{job.id} (waiting)" in done.stdout
    as_json = cli("schedules", "list", "reports", "--json")
    assert as_json.returncode == 0, as_json.stderr
    listed = {s["id"]: s for s in json.loads(as_json.stdout)}
    assert set(listed) == {"nightly", "poll"}
    assert listed["poll"]["last_job"] == job.id and listed["poll"]["last_job_state"] == "waiting"
    assert listed["nightly"]["next_run"] is not None


def test_pause_resume_trigger_and_remove(cli: Run, queue: SyncQueue) -> None:
    done = cli("schedules", "pause", "reports", "nightly")
    assert done.returncode == 0 and "paused" in done.stdout, done.stderr
    assert queue.get_schedule("nightly").paused  # type: ignore[union-attr]
    assert "paused" in cli("schedules", "reports").stdout
    assert "(already)" in cli("schedules", "pause", "reports", "nightly").stdout
    done = cli("schedules", "resume", "reports", "nightly")
    assert done.returncode == 0 and "resumed" in done.stdout
    assert not queue.get_schedule("nightly").paused  # type: ignore[union-attr]

    done = cli("schedules", "trigger", "reports", "nightly")
    assert done.returncode == 0, done.stderr
    job = queue.get_job(done.stdout.strip())
    assert job is not None and job.data == {"kind": "daily"}
    keyed = [cli("schedules", "trigger", "reports", "nightly", "--key", "k1") for _ in range(2)]
    assert [d.returncode for d in keyed] == [0, 0], keyed[0].stderr
    assert keyed[0].stdout == keyed[1].stdout != done.stdout  # the retry: the same job

    refused = cli("schedules", "remove", "reports", "nightly")
    assert refused.returncode != 0 and "--yes" in refused.stderr
    assert queue.get_schedule("nightly") is not None
    done = cli("schedules", "remove", "reports", "nightly", "--yes")
    assert done.returncode == 0 and "removed" in done.stdout
    assert queue.get_schedule("nightly") is None


def test_unknown_schedule_and_queue_fail_with_a_message(cli: Run, queue: SyncQueue) -> None:
    for action in ("pause", "resume", "trigger"):
        done = cli("schedules", action, "reports", "ghost")
        assert done.returncode == 1 and "no schedule 'ghost'" in done.stderr, action
    done = cli("schedules", "remove", "reports", "ghost", "--yes")
    assert done.returncode == 1 and "no schedule 'ghost'" in done.stderr
    done = cli("schedules", "nowhere")
    assert done.returncode == 2 and "unknown queue 'nowhere'" in done.stderr
