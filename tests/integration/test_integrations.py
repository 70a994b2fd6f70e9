"""The FastAPI, Flask and Django examples in ``examples/``, each run in its own interpreter
(they share module names and Django's settings are per process), against a real Redis."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests.support.processes import REPO_ROOT, python_env
from tests.support.redis_server import find_free_port

from conveyor import SyncQueue

pytestmark = pytest.mark.timeout(90)

EXAMPLES = REPO_ROOT / "examples"
CLI = "import sys; from conveyor.cli import main; main()"


def run(
    args: list[str], cwd: Path, redis_url: str, prefix: str
) -> subprocess.CompletedProcess[str]:
    env = python_env({"REDIS_URL": redis_url, "CONVEYOR_PREFIX": prefix})
    env["PYTHONPATH"] = f"{cwd}:{env['PYTHONPATH']}"
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def check_processed(redis_url: str, prefix: str, job_id: str, cwd: Path, target: str) -> None:
    with SyncQueue("email", url=redis_url, prefix=prefix) as queue:
        job = queue.get_job(job_id)
        assert job is not None and job.data == {"to": "ada@example.com"}
        assert job.state == "waiting"
        if target.startswith("manage.py"):
            ok(run([*target.split(), "--burst"], cwd, redis_url, prefix))
        else:
            ok(run(["-c", CLI, "worker", target, "--burst"], cwd, redis_url, prefix))
        assert queue.wait(job_id, timeout=20)["sent_to"] == "ada@example.com"


FASTAPI_CLIENT = """
from fastapi.testclient import TestClient
from main import app, conveyor

with TestClient(app) as client:
    created = client.post("/signup", json={"email": "ada@example.com"})
    assert created.status_code == 201, created.text
    job_id = created.json()["job"]
    status = client.get(f"/jobs/{job_id}").json()
    assert status["state"] == "waiting", status
    assert client.get("/jobs/nope").status_code == 404
    assert conveyor.queue()._redis is not None
assert conveyor.queue()._redis is None  # the lifespan closed the connection
print(job_id)
"""


def test_fastapi_example(redis_url: str, key_prefix: str) -> None:
    cwd = EXAMPLES / "fastapi_app"
    job_id = ok(run(["-c", FASTAPI_CLIENT], cwd, redis_url, key_prefix)).strip()
    check_processed(redis_url, key_prefix, job_id, cwd, "tasks:queue")


def test_fastapi_lifespan_fails_at_startup_when_redis_is_down(key_prefix: str) -> None:
    dead = f"redis://127.0.0.1:{find_free_port()}/0"
    result = run(["-c", FASTAPI_CLIENT], EXAMPLES / "fastapi_app", dead, key_prefix)
    assert result.returncode != 0
    assert "Redis is unreachable" in result.stderr


def test_fastapi_dependency_and_starlette_state(redis_url: str, key_prefix: str) -> None:
    code = textwrap.dedent(
        """
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse
        from starlette.routing import Route
        from starlette.testclient import TestClient
        from conveyor.integrations.fastapi import Conveyor

        conveyor = Conveyor("email", "reports")

        async def add(request):
            queue = request.state.conveyor.queue("reports")
            job = await queue.add("build", {"n": 1})
            return JSONResponse({"queue": queue.name, "job": job.id})

        app = Starlette(routes=[Route("/", add, methods=["POST"])], lifespan=conveyor.lifespan)
        with TestClient(app) as client:
            print(client.post("/").json()["queue"])
        assert conveyor.dependency("email")() is conveyor.queue("email")
        try:
            conveyor.queue("nope")
        except ValueError as exc:
            print("error:", exc)
        """
    )
    out = ok(run(["-c", code], REPO_ROOT, redis_url, key_prefix))
    assert out.splitlines()[0] == "reports"
    assert "no queue 'nope'" in out


FLASK_CLIENT = """
from app import conveyor, create_app

app = create_app()
client = app.test_client()
created = client.post("/signup", json={"email": "ada@example.com"})
assert created.status_code == 201, created.data
job_id = created.get_json()["job"]
assert client.get(f"/jobs/{job_id}").get_json()["state"] == "waiting"
assert client.post("/signup", json={}).status_code == 400
with app.app_context():
    assert conveyor.queue("email") is conveyor.queue("email")
print(job_id)
"""


def test_flask_example(redis_url: str, key_prefix: str) -> None:
    cwd = EXAMPLES / "flask_app"
    job_id = ok(run(["-c", FLASK_CLIENT], cwd, redis_url, key_prefix)).strip()
    check_processed(redis_url, key_prefix, job_id, cwd, "tasks:queue")


DJANGO_CLIENT = """
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
import django
django.setup()
from django.test import Client

client = Client()
created = client.post("/signup/", {"email": "ada@example.com"}, content_type="application/json")
assert created.status_code == 201, created.content
job_id = created.json()["job"]
assert client.get(f"/jobs/{job_id}/").json()["state"] == "waiting"
print(job_id)
"""


def test_django_example_and_management_command(redis_url: str, key_prefix: str) -> None:
    cwd = EXAMPLES / "django_app"
    job_id = ok(run(["-c", DJANGO_CLIENT], cwd, redis_url, key_prefix)).strip()
    check_processed(
        redis_url, key_prefix, job_id, cwd, "manage.py conveyor_worker shop.tasks:queue"
    )
    with SyncQueue("email", url=redis_url, prefix=key_prefix) as queue:
        job = queue.get_job(job_id)
        assert job is not None and job.result["debug"] == "True"  # Django was set up


def test_django_management_command_help(redis_url: str, key_prefix: str) -> None:
    out = ok(
        run(["manage.py", "conveyor_worker", "--help"], EXAMPLES / "django_app", redis_url, "x")
    )
    assert "--concurrency" in out and "--workers" in out
