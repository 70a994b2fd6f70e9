"""Workflows in the JSON API (a job's parent, children and batch; the batch route) and in the
CLI (``conveyor batch``, run as a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import httpx
import pytest
from tests.support.processes import python_env

from conveyor import Callback, FlowJob, Queue

pytestmark = pytest.mark.timeout(60)

CLI = "import sys; from conveyor.cli import main; main()"


async def test_a_jobs_json_names_its_parent_children_and_batch(
    queue: Queue, client: httpx.AsyncClient
) -> None:
    parent = await queue.add_flow(FlowJob("p", children=[FlowJob("c", job_id="kid")]))
    body = (await client.get(f"/api/queues/q/jobs/{parent.id}")).json()
    assert body["state"] == "waiting-children"
    assert body["children"] == [{"queue": "q", "id": "kid"}] and body["parent"] is None
    kid = (await client.get("/api/queues/q/jobs/kid")).json()
    assert kid["parent"] == {"queue": "q", "id": parent.id} and kid["batch"] is None
    counts = (await client.get("/api/queues/q")).json()["counts"]
    assert counts["waiting-children"] == 1
    listed = (await client.get("/api/queues/q/jobs", params={"state": "waiting-children"})).json()
    assert [job["id"] for job in listed["jobs"]] == [parent.id]
    assert [job.id for job in await queue.get_jobs("waiting-children")] == [parent.id]

    batch = await queue.add_batch([{"name": "b", "job_id": "in-batch"}], on_complete=Callback("x"))
    member = (await client.get("/api/queues/q/jobs/in-batch")).json()
    assert member["batch"] == batch.id
    got = await client.get(f"/api/queues/q/batches/{batch.id}")
    assert got.status_code == 200
    assert got.json() | {"created_at": None} == {
        "id": batch.id,
        "queue": "q",
        "total": 1,
        "pending": 1,
        "completed": 0,
        "failed": 0,
        "state": "running",
        "created_at": None,
        "finished_at": None,
        "callbacks": {},
    }
    missing = await client.get("/api/queues/q/batches/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "job_not_found"
    assert (await client.get("/api/queues/unknown/batches/x")).status_code == 404


def _cli(redis_url: str, key_prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = python_env({"REDIS_URL": redis_url, "CONVEYOR_PREFIX": key_prefix, "COLUMNS": "200"})
    return subprocess.run(
        [sys.executable, "-c", CLI, *args],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )


async def test_conveyor_batch_shows_the_counts(
    queue: Queue, redis_url: str, key_prefix: str
) -> None:
    batch = await queue.add_batch([], on_complete=Callback("done"))
    shown = _cli(redis_url, key_prefix, "batch", "q", batch.id, "--json")
    assert shown.returncode == 0, shown.stderr
    data: dict[str, Any] = json.loads(shown.stdout)
    assert (data["state"], data["total"], data["pending"]) == ("success", 0, 0)
    assert data["callbacks"] == {"complete": f"q|batch:{batch.id}:complete"}
    table = _cli(redis_url, key_prefix, "batch", "q", batch.id)
    assert table.returncode == 0 and "success" in table.stdout and "on_complete" in table.stdout
    anywhere = json.loads(_cli(redis_url, key_prefix, "batch", batch.id, "--json").stdout)
    assert anywhere == data  # without the queue: looked for in every queue
    missing = _cli(redis_url, key_prefix, "batch", "q", "nope")
    assert missing.returncode == 1 and "no batch 'nope'" in missing.stderr
    nowhere = _cli(redis_url, key_prefix, "batch", "nope")
    assert nowhere.returncode == 1 and "in any queue" in nowhere.stderr
    usage = _cli(redis_url, key_prefix, "batch")
    assert usage.returncode == 2
