"""The ``conveyor`` command line, run as a subprocess against a real Redis."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
from tests.support.processes import ProcessManager, python_env
from tests.support.redis_server import RedisServer, find_free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(60)

CLI = "import sys; from conveyor.cli import main; main()"

TASKS = """
import gc
import os
from conveyor import Queue, Unrecoverable

queue = Queue("mail")

@queue.handler("add")
async def add(job):
    return job.data["a"] + job.data["b"]

@queue.handler("boom")
async def boom(job):
    raise Unrecoverable("boom: bad recipient")

@queue.handler("flaky")
async def flaky(job):
    if job.attempt == 1:
        raise RuntimeError("first try fails")
    return {"sent": True}

@queue.handler("steps")
async def steps(job):
    import asyncio
    for percent in (25, 50, 100):
        await job.update_progress(percent)
        await asyncio.sleep(0.2)
    return "done"

@queue.handler("frozen")
async def frozen(job):
    return gc.get_freeze_count()
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "tasks.py").write_text(textwrap.dedent(TASKS))
    return tmp_path


@pytest.fixture
def cli(
    project: Path, redis_url: str, key_prefix: str
) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        child_env = python_env(
            {
                "REDIS_URL": redis_url,
                "CONVEYOR_PREFIX": key_prefix,
                "CONVEYOR_ALLOW_EVICTING_REDIS": "",
                "COLUMNS": "200",
                **(env or {}),
            }
        )
        return subprocess.run(
            [sys.executable, "-c", CLI, *args],
            cwd=project,
            env=child_env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        )

    return run


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_enqueue_then_burst_worker_processes_the_job(cli: Callable[..., Any]) -> None:
    job_id = ok(cli("enqueue", "mail", "add", "--data", '{"a": 2, "b": 3}')).strip()
    assert job_id
    result = cli("worker", "tasks:queue", "--burst")
    ok(result)
    assert "queues:      mail" in result.stderr  # the banner
    assert "handlers:    add, boom, flaky, frozen" in result.stderr
    shown = json.loads(ok(cli("show", "mail", job_id, "--json")))
    assert (shown["state"], shown["result"]) == ("completed", 5)
    listed = json.loads(ok(cli("jobs", "mail", "--state", "completed", "--json")))
    assert [j["id"] for j in listed] == [job_id]


def test_the_worker_process_runs_with_its_start_up_heap_frozen(cli: Callable[..., Any]) -> None:
    """Full collections then skip the modules and the app (see eventloop.run)."""
    job_id = ok(cli("enqueue", "mail", "frozen")).strip()
    ok(cli("worker", "tasks:queue", "--burst"))
    shown = json.loads(ok(cli("show", "mail", job_id, "--json")))
    assert shown["state"] == "completed"
    assert shown["result"] > 10_000, shown  # objects of the interpreter, modules and the app


def test_module_dot_attr_and_env_vars_for_flags(cli: Callable[..., Any]) -> None:
    ok(cli("enqueue", "mail", "add", "--data", '{"a": 1, "b": 1}'))
    result = cli("worker", "tasks.queue", env={"CONVEYOR_BURST": "1", "CONVEYOR_CONCURRENCY": "7"})
    ok(result)
    assert "concurrency: 7" in result.stderr
    assert "stopped after 1 jobs" in result.stderr


def test_queues_flag_sets_the_fetch_order(cli: Callable[..., Any]) -> None:
    result = cli("worker", "tasks:queue", "--queues", "urgent,mail", "--burst")
    ok(result)
    assert "queues:      urgent, mail  (in this order)" in result.stderr


def test_json_logs_carry_the_job_fields(cli: Callable[..., Any]) -> None:
    job_id = ok(cli("enqueue", "mail", "boom")).strip()
    result = cli("worker", "tasks:queue", "--burst", "--log-format", "json")
    ok(result)
    records = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    failed = [r for r in records if r.get("job_id") == job_id]
    assert failed, result.stderr
    record = failed[0]
    assert record["queue"] == "mail" and record["job_name"] == "boom"
    assert record["attempt"] == 1 and isinstance(record["duration_ms"], int)
    assert record["level"] == "info" and "boom: bad recipient" in record["message"]
    assert any(r.get("event") == "banner" for r in records)


def test_the_banner_hides_the_redis_password(
    cli: Callable[..., Any], make_redis: Callable[..., RedisServer]
) -> None:
    server = make_redis()
    server.command("CONFIG", "SET", "requirepass", "s3cret-pw")  # after start: it PINGs first
    url = f"redis://:s3cret-pw@127.0.0.1:{server.port}/0"
    result = cli("worker", "tasks:queue", "--burst", "--url", url)
    ok(result)
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert f"redis://:***@127.0.0.1:{server.port}/0" in result.stderr


def test_exit_codes(cli: Callable[..., Any], make_redis: Callable[..., RedisServer]) -> None:
    assert cli("worker", "nosuchmodule:queue").returncode == 2
    assert cli("worker", "tasks:nothing").returncode == 2
    assert cli("worker", "tasks").returncode == 2
    dead = f"redis://127.0.0.1:{find_free_port()}/0"
    unreachable = cli("worker", "tasks:queue", "--burst", "--url", dead)
    assert unreachable.returncode == 3, unreachable.stderr
    assert "unreachable" in unreachable.stderr
    evicting = make_redis(maxmemory_policy="allkeys-lru")
    refused = cli("worker", "tasks:queue", "--burst", "--url", evicting.url)
    assert refused.returncode == 4, refused.stderr
    assert "noeviction" in refused.stderr
    ok(cli("enqueue", "mail", "add", "--data", '{"a": 1, "b": 1}'))  # a known queue, no such job
    missing = cli("show", "mail", "does-not-exist")
    assert missing.returncode == 1 and "no job" in missing.stderr
    assert cli("enqueue", "mail", "add", "--data", "{not json").returncode == 2
    assert cli("jobs", "bad queue name").returncode == 2


def test_check_is_a_health_probe(
    cli: Callable[..., Any], spawn: ProcessManager, project: Path, redis_url: str, key_prefix: str
) -> None:
    unhealthy = cli("worker", "tasks:queue", "--check")
    assert unhealthy.returncode == 1 and "no live worker" in unhealthy.stderr
    proc = spawn(
        CLI,
        args=["worker", "tasks:queue"],
        env={"REDIS_URL": redis_url, "CONVEYOR_PREFIX": key_prefix},
        cwd=project,
    )
    proc.wait_for_output("started", timeout=20)
    wait_for(lambda: cli("worker", "tasks:queue", "--check").returncode == 0, timeout=20)
    assert proc.terminate(timeout=20) == 0


def test_retry_and_clean_need_yes_without_a_terminal(cli: Callable[..., Any]) -> None:
    ids = [ok(cli("enqueue", "mail", "boom")).strip() for _ in range(3)]
    ok(cli("worker", "tasks:queue", "--burst"))
    refused = cli("retry", "mail", "--all")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    result = cli("retry", "mail", "--all", "--yes")
    assert "retried 3 jobs" in ok(result)
    counts = json.loads(ok(cli("info", "--json")))["queues"][0]["counts"]
    assert (counts["waiting"], counts["failed"]) == (3, 0)
    ok(cli("worker", "tasks:queue", "--burst"))
    assert "retried" in ok(cli("retry", "mail", ids[0]))
    assert cli("clean", "mail", "--state", "failed").returncode == 2
    assert "deleted 2 jobs" in ok(cli("clean", "mail", "--state", "failed", "--yes"))
    assert cli("retry", "mail").returncode == 2  # neither ids nor --all


def test_clean_respects_older_than(cli: Callable[..., Any]) -> None:
    ok(cli("enqueue", "mail", "add", "--data", '{"a": 1, "b": 2}'))
    ok(cli("worker", "tasks:queue", "--burst"))
    assert "deleted 0 jobs" in ok(cli("clean", "mail", "--older-than", "1h", "--yes"))
    assert "deleted 1 jobs" in ok(cli("clean", "mail", "--older-than", "0s", "--yes"))
    assert cli("clean", "mail", "--older-than", "soon", "--yes").returncode == 2


def test_pause_resume_and_info(cli: Callable[..., Any]) -> None:
    ok(cli("enqueue", "mail", "add", "--data", '{"a": 1, "b": 2}'))
    assert "paused" in ok(cli("pause", "mail"))
    info = json.loads(ok(cli("info", "--json")))
    [queue] = info["queues"]
    assert queue["name"] == "mail" and queue["paused"] is True
    assert queue["counts"]["waiting"] == 1
    ok(cli("worker", "tasks:queue", "--burst"))  # a paused queue hands out nothing
    assert json.loads(ok(cli("info", "--json")))["queues"][0]["counts"]["waiting"] == 1
    assert "resumed" in ok(cli("resume", "mail"))
    ok(cli("worker", "tasks:queue", "--burst"))
    info = json.loads(ok(cli("info", "--json")))
    assert info["queues"][0]["counts"]["completed"] == 1
    assert info["queues"][0]["last_5m"]["completed"] == 1
    table = ok(cli("info"))
    assert "mail" in table and "completed" in table


def test_enqueue_wait_prints_the_result(
    cli: Callable[..., Any], spawn: ProcessManager, project: Path, redis_url: str, key_prefix: str
) -> None:
    proc = spawn(
        CLI,
        args=["worker", "tasks:queue"],
        env={"REDIS_URL": redis_url, "CONVEYOR_PREFIX": key_prefix},
        cwd=project,
    )
    proc.wait_for_output("started", timeout=20)
    out = json.loads(ok(cli("enqueue", "mail", "add", "-d", '{"a": 20, "b": 22}', "--wait")))
    assert out["result"] == 42
    failed = cli("enqueue", "mail", "boom", "--wait", "--wait-timeout", "20")
    assert failed.returncode == 1 and "bad recipient" in failed.stderr
    # What the job does shows on stderr while stdout keeps the result.
    stepped = cli("enqueue", "mail", "steps", "--wait")
    assert json.loads(ok(stepped))["result"] == "done"
    job_id = json.loads(stepped.stdout)["id"]
    assert [f"job {job_id}: {line}" for line in ("running", "progress 25", "progress 50",
            "progress 100")] == stepped.stderr.splitlines()  # fmt: skip
    retried = cli("enqueue", "mail", "flaky", "--wait", "--attempts", "2", "--backoff", "fixed:0.2")
    assert json.loads(ok(retried))["result"] == {"sent": True}
    assert "attempt 1 failed (RuntimeError: first try fails); retrying in 0.2 s" in retried.stderr
    proc.terminate(timeout=20)


def test_admin_flags_read_conveyor_env_vars(cli: Callable[..., Any]) -> None:
    job_id = ok(cli("enqueue", "mail", "add", "--data", '{"a": 1, "b": 2}')).strip()
    ok(cli("worker", "tasks:queue", "--burst"))
    # --state from CONVEYOR_JOBS_STATE, --json from CONVEYOR_JOBS_JSON (auto_envvar_prefix)
    listed = json.loads(
        ok(cli("jobs", "mail", env={"CONVEYOR_JOBS_STATE": "completed", "CONVEYOR_JOBS_JSON": "1"}))
    )
    assert [j["id"] for j in listed] == [job_id]
    # and a destructive command's --older-than, read from the env, keeps the job
    kept = cli("clean", "mail", "--yes", env={"CONVEYOR_CLEAN_OLDER_THAN": "1h"})
    assert "deleted 0 jobs" in ok(kept)


def test_info_filters_queues_and_lists_workers(
    cli: Callable[..., Any], spawn: ProcessManager, project: Path, redis_url: str, key_prefix: str
) -> None:
    ok(cli("enqueue", "mail", "add", "--data", '{"a": 1, "b": 2}'))
    ok(cli("enqueue", "other", "noop"))
    proc = spawn(
        CLI,
        args=["worker", "tasks:queue"],
        env={"REDIS_URL": redis_url, "CONVEYOR_PREFIX": key_prefix},
        cwd=project,
    )
    proc.wait_for_output("started", timeout=20)

    def mail_done() -> dict[str, Any] | None:
        info = json.loads(ok(cli("info", "--json", "--queue", "mail")))
        return info if info["queues"][0]["counts"]["completed"] == 1 and info["workers"] else None

    info = wait_for(mail_done, timeout=20)
    [queue] = info["queues"]
    assert queue["name"] == "mail" and queue["workers"] == 1
    assert queue["last_5m"] == {"completed": 1, "failed": 0, "retried": 0}
    [worker_info] = info["workers"]
    assert worker_info["queues"] == ["mail"] and worker_info["concurrency"] >= 1
    everything = json.loads(ok(cli("info", "--json")))
    assert [q["name"] for q in everything["queues"]] == ["mail", "other"]
    assert everything["queues"][1]["oldest_waiting_ms"] is not None
    assert json.loads(ok(cli("info", "--json", "--queue", "other")))["workers"] == []
    proc.terminate(timeout=20)


def test_info_interval_keeps_one_connection_pool(
    cli: Callable[..., Any], make_redis: Callable[..., RedisServer], key_prefix: str
) -> None:
    server = make_redis()
    for name in ("a", "b", "c"):
        ok(cli("enqueue", name, "add", "--url", server.url))

    def connections() -> int:
        stats = server.command("INFO", "stats").decode()
        line = next(x for x in stats.splitlines() if x.startswith("total_connections_received"))
        return int(line.split(":", 1)[1])

    before = connections()
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "info", "--json", "--interval", "0.05", "--url", server.url],
        env=python_env({"CONVEYOR_PREFIX": key_prefix}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ticks = [json.loads(proc.stdout.readline()) for _ in range(8)]
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
    assert all([q["name"] for q in t["queues"]] == ["a", "b", "c"] for t in ticks)
    # 8 refreshes of 3 queues; our own INFO calls open 1 connection each (before + after)
    opened = connections() - before - 1
    assert opened <= 2, f"{opened} connections for 8 refreshes"


def test_an_unknown_queue_is_a_usage_error_naming_the_known_ones(cli: Callable[..., Any]) -> None:
    """issue 20 item 8: read and action commands alike, before asking anything."""
    job_id = ok(cli("enqueue", "mail", "add", "--data", '{"a": 1, "b": 1}')).strip()
    for args in (
        ("jobs", "emial"),
        ("show", "emial", job_id),
        ("retry", "emial", job_id),
        ("retry", "emial", "--all", "--yes"),
        ("remove", "emial", job_id),
        ("clean", "emial", "--yes"),
        ("pause", "emial"),
        ("resume", "emial"),
    ):
        result = cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "unknown queue 'emial' (known: mail)" in result.stderr, (args, result.stderr)
    assert json.loads(ok(cli("info", "--json")))["queues"][0]["counts"]["waiting"] == 1


def test_info_with_no_queues_hints_at_the_prefixes_that_hold_some(
    cli: Callable[..., Any], key_prefix: str, make_redis: Callable[..., Any]
) -> None:
    # A Redis of its own: the session's holds the prefixes of every other test, and the hint
    # names only the first few.
    own = {"REDIS_URL": make_redis().url}
    other = f"{key_prefix}x"
    ok(cli("enqueue", "mail", "add", env={**own, "CONVEYOR_PREFIX": other}))
    info = json.loads(ok(cli("info", "--json", env=own)))
    assert info["queues"] == [] and other in info["other_prefixes"]
    table = ok(cli("info", env=own))
    assert "no queues yet" in table and "--prefix" in " ".join(table.split())
    missing = cli("jobs", "mail", env=own)
    assert missing.returncode == 2 and f"no queues under prefix {key_prefix!r}" in missing.stderr
    assert repr(other) in missing.stderr and "--prefix" in missing.stderr


def test_info_fits_80_columns(cli: Callable[..., Any]) -> None:
    for name in ("mail", "reports"):
        ok(cli("enqueue", name, "add", "--data", '{"a": 1, "b": 1}'))
    table = ok(cli("info", env={"COLUMNS": "80"}))
    lines = table.splitlines()
    assert max(len(line) for line in lines) <= 80, table
    header = next(line for line in lines if "waiting" in line)
    for column in ("queue", "waiting", "active", "delayed", "completed", "failed", "workers"):
        assert column in header.split(), table  # whole words on one line, none cut short
    assert any(line.split()[:2] == ["mail", "1"] for line in lines), table


def test_show_and_jobs_tell_an_earlier_failed_attempt_from_the_job_error(
    cli: Callable[..., Any],
) -> None:
    """issue 20 item 2: a completed job's earlier error is its last failed attempt; show prints
    JSON and absolute UTC times, no Python reprs."""
    job_id = ok(
        cli(
            "enqueue",
            "mail",
            "flaky",
            "-d",
            '{"to": "ada"}',
            "--attempts",
            "2",
            "--backoff",
            "fixed:0.01",
        )
    ).strip()

    def completed() -> bool:
        ok(cli("worker", "tasks:queue", "--burst"))
        return json.loads(ok(cli("show", "mail", job_id, "--json")))["state"] == "completed"

    wait_for(completed, timeout=30)
    shown = ok(cli("show", "mail", job_id))
    rows = {line.split("│")[1].strip(): line for line in shown.splitlines() if line.count("│") >= 3}
    assert "error" not in rows, shown
    assert "attempt 1: RuntimeError" in rows["last failed attempt"] or (
        "attempt 1:" in rows["last failed attempt"] and "first try fails" in shown
    ), shown
    assert re.search(r"20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", rows["created_at"]), shown
    assert '"to": "ada"' in shown and '"sent": true' in shown, shown
    assert "{'" not in shown and "None" not in shown and "True" not in shown, shown
    listed = ok(cli("jobs", "mail", "--state", "completed"))
    assert "attempt 1 failed: RuntimeError" in " ".join(listed.split()), listed


def test_every_option_has_help_text() -> None:
    from conveyor.cli import main

    missing = []

    def walk(command: click.Command, path: str) -> None:
        for param in command.params:
            if isinstance(param, click.Option) and not param.help:
                missing.append(f"{path} {param.opts[0]}")
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, f"{path} {name}")

    walk(main, "conveyor")
    assert not missing, missing
