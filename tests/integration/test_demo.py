"""``conveyor demo`` end to end: start it, send an email, see it complete, Ctrl-C, nothing left."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess

import httpx
import pytest
from tests.support.processes import ProcessManager, SpawnedProcess
from tests.support.redis_server import find_free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(90)

CLI = "import sys; from conveyor.cli import main; main()"


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers kill(0); it is gone when /proc says so.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def start_demo(spawn: ProcessManager, *args: str) -> tuple[SpawnedProcess, str, str]:
    port, dashboard_port = find_free_port(), find_free_port()
    proc = spawn(
        CLI,
        args=["demo", "--port", str(port), "--dashboard-port", str(dashboard_port), *args],
        env={"EMAIL_FAILURE_RATE": "0", "EMAIL_SECONDS": "0.4", "REDIS_URL": ""},
        name="demo",
    )
    proc.wait_for_output("Press Ctrl-C to stop.", timeout=30)
    return proc, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{dashboard_port}"


def stop_demo(proc: SpawnedProcess) -> None:
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0, proc.describe()
    assert "demo stopped" in proc.stdout()
    wait_for(lambda: _group_gone(proc.pid), timeout=10, message="processes left behind")


def test_demo_sends_an_email_job_and_stops_cleanly(
    spawn: ProcessManager, redis_url: str, key_prefix: str
) -> None:
    proc, app, dashboard = start_demo(spawn, "--url", redis_url, "--prefix", key_prefix)
    out = proc.stdout()
    assert f"{app.replace('127.0.0.1', 'localhost')}/send-email" in out
    assert f"'{key_prefix}:*'" in out  # says where it writes
    with httpx.Client(timeout=10) as client:
        sent = client.get(f"{app}/send-email", params={"to": "ada@example.com", "title": "Hi"})
        assert sent.status_code == 201, sent.text
        job_id = sent.json()["id"]
        posted = client.post(f"{app}/send-email", json={"to": "bob@example.com", "body": "x"})
        assert posted.status_code == 201 and posted.json()["id"] != job_id

        def finished() -> dict[str, object] | None:
            job = client.get(f"{app}/jobs/{job_id}.json").json()
            return job if job["state"] == "completed" else None

        job = wait_for(finished, timeout=30, interval=0.1, message="email job not completed")
        assert job["progress"] == 100
        assert job["result"] == {
            "delivered_to": "ada@example.com",
            "message_id": f"<{job_id}@conveyor.demo>",
        }
        assert "done" in job["logs"]
        page = client.get(f"{app}/jobs/{job_id}")
        assert page.status_code == 200 and f"{job_id}.json" in page.text
        # the page words the attempt as the job's log does ("attempt 1 of 5"), issue 20 item 7
        assert "attempts made" not in page.text and '"attempt " + attempt + " of "' in page.text
        # a browser is sent on to the job's live page (303); curl and scripts still get JSON
        html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        browsed = client.get(
            f"{app}/send-email", params={"to": "eve@example.com"}, headers={"accept": html}
        )
        assert browsed.status_code == 303, browsed.text
        assert re.fullmatch(r"/jobs/[^/]+", browsed.headers["location"]), browsed.headers
        assert client.get(f"{app}{browsed.headers['location']}").status_code == 200
        curl = client.get(f"{app}/send-email", headers={"accept": "*/*"})
        assert curl.status_code == 201 and curl.json()["id"]
        assert client.get(f"{app}/send-email", params={"to": "nobody"}).status_code == 400
        queues = client.get(f"{dashboard}/api/queues")
        assert queues.status_code == 200
        assert "email" in queues.text
    wait_for(lambda: f"[email job {job_id}] completed" in proc.stdout(), timeout=10)
    # The banner's CLI command works as shown, from a shell whose PATH has no venv in it.
    hint = re.search(r"Try the CLI:\s+(.+)", out)
    assert hint, out
    shown = subprocess.run(
        hint.group(1), shell=True, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "120"},
    )  # fmt: skip
    assert shown.returncode == 0 and "email" in shown.stdout, shown.stderr
    stop_demo(proc)


def test_demo_with_a_private_redis_stops_it_on_exit(spawn: ProcessManager) -> None:
    proc, app, _dashboard = start_demo(spawn, "--private-redis")
    match = re.search(r"a private redis-server \(pid (\d+)\)", proc.stdout())
    assert match, proc.stdout()
    redis_pid = int(match.group(1))
    assert not _pid_gone(redis_pid)
    with httpx.Client(timeout=10) as client:
        job_id = client.get(f"{app}/send-email").json()["id"]
        wait_for(
            lambda: client.get(f"{app}/jobs/{job_id}.json").json()["state"] == "completed",
            timeout=30,
            interval=0.1,
        )
    stop_demo(proc)
    wait_for(lambda: _pid_gone(redis_pid), timeout=10, message="private redis-server left")


def test_demo_says_clearly_when_a_port_is_taken(spawn: ProcessManager, redis_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = spawn(CLI, args=["demo", "--url", redis_url, "--port", str(port)], name="busy")
        assert proc.wait(timeout=30) == 2
    assert "--port" in proc.stderr() and str(port) in proc.stderr()
