"""The package as a user installs it: the wheel in a fresh virtualenv, nothing from the tree.

scripts/test-wheel runs this file once per virtualenv, with CONVEYOR_WHEEL_VENV naming it and
CONVEYOR_WHEEL_EXTRA saying what was installed: ``base`` (``pip install conveyor-queue``) or
``web`` (``conveyor-queue[web]``). Everything runs in that virtualenv's interpreter and
``conveyor`` script, from a temporary folder, with no PYTHONPATH; pytest itself runs elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.redis_server import RedisServer, find_free_port

VENV = Path(os.environ["CONVEYOR_WHEEL_VENV"]).resolve()
EXTRA = os.environ.get("CONVEYOR_WHEEL_EXTRA", "base")
BIN = VENV / "bin"
SOURCE_PACKAGE = Path(__file__).resolve().parents[2] / "src" / "conveyor"

#: Distributions the base install must not pull in: the web extra's and the dev tools.
NOT_IN_BASE = [
    "starlette", "uvicorn", "prometheus-client", "pytest", "pytest-asyncio", "mypy", "ruff",
    "httpx", "fastapi", "flask", "django", "schemathesis", "playwright",
    # ecosystem extras: [outbox], [otel], [django] and what their tests use
    "psycopg", "psycopg-binary", "opentelemetry-api", "opentelemetry-sdk", "django-tasks",
    "sqlalchemy",
]  # fmt: skip

TASKS = """
from conveyor import Queue

queue = Queue("wheel")


@queue.handler("add")
def add(job):
    return job.data["a"] + job.data["b"]
"""


def _env() -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "REDIS_URL")
        and not key.startswith("CONVEYOR_")
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(args: list[str], cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def python(code: str, cwd: Path, *args: str) -> str:
    """Run ``code`` in the virtualenv's interpreter; its stdout (it must exit 0)."""
    done = run([str(BIN / "python"), "-c", code, *args], cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with RedisServer(maxmemory_policy="noeviction", save="", appendonly=False) as server:
        yield server.url


def test_conveyor_is_imported_from_the_virtualenv(tmp_path: Path) -> None:
    out = python(
        "import json, conveyor, conveyor.cli; "
        "print(json.dumps([conveyor.__file__, conveyor.__version__]))",
        tmp_path,
    )
    file, version = json.loads(out)
    package = Path(file).resolve().parent
    assert VENV in package.parents, f"conveyor imported from {package}, not from {VENV}"
    assert package != SOURCE_PACKAGE.resolve()
    assert (package / "py.typed").is_file()
    # Every Lua script of the tree is in the wheel (the storage layer reads them at import).
    lua = sorted(p.relative_to(SOURCE_PACKAGE).as_posix() for p in SOURCE_PACKAGE.rglob("*.lua"))
    shipped = sorted(p.relative_to(package).as_posix() for p in package.rglob("*.lua"))
    assert lua and shipped == lua
    installed = python(
        "import importlib.metadata as m; print(m.version('conveyor-queue'))", tmp_path
    )
    assert version == installed.strip()


def test_cli_help(tmp_path: Path) -> None:
    done = run([str(BIN / "conveyor"), "--help"], tmp_path)
    assert done.returncode == 0, done.stderr
    for command in ("worker", "dashboard", "info", "enqueue", "outbox-relay"):
        assert re.search(rf"^\s+{command}\s", done.stdout, re.MULTILINE), done.stdout


def test_a_job_through_a_worker(tmp_path: Path, redis_url: str) -> None:
    (tmp_path / "tasks.py").write_text(TASKS, encoding="utf-8")
    job_id = python(
        "import sys; from conveyor import SyncQueue\n"
        "with SyncQueue('wheel', sys.argv[1]) as q: print(q.add('add', {'a': 2, 'b': 3}).id)",
        tmp_path,
        redis_url,
    ).strip()
    done = run(
        [str(BIN / "conveyor"), "worker", "tasks:queue", "--burst", "--url", redis_url],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    out = python(
        "import json, sys; from conveyor import SyncQueue\n"
        "with SyncQueue('wheel', sys.argv[1]) as q: job = q.get_job(sys.argv[2])\n"
        "print(json.dumps([job.state.value, job.result]))",
        tmp_path,
        redis_url,
        job_id,
    )
    assert json.loads(out) == ["completed", 5], done.stderr


@pytest.mark.skipif(EXTRA != "base", reason="the base install only")
def test_base_install_has_no_web_or_dev_dependency(tmp_path: Path) -> None:
    out = python(
        "import importlib.metadata as m, json, sys\n"
        "found = []\n"
        "for name in sys.argv[1:]:\n"
        "    try: found.append(f'{name} {m.version(name)}')\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(found))",
        tmp_path,
        *NOT_IN_BASE,
    )
    assert json.loads(out) == []
    # Importing everything a producer or worker touches loads no web module either.
    out = python(
        "import sys, conveyor, conveyor.cli, conveyor.admin, conveyor.testing\n"
        "web = {'starlette', 'uvicorn', 'prometheus_client'}\n"
        "print(sorted(m for m in sys.modules\n"
        "             if m.split('.')[0] in web or m.split('.')[:2] == ['conveyor', 'web']))",
        tmp_path,
    )
    assert out.strip() == "[]"


@pytest.mark.skipif(EXTRA != "base", reason="the base install only")
def test_dashboard_without_the_web_extra_says_what_to_install(tmp_path: Path) -> None:
    done = run([str(BIN / "conveyor"), "dashboard", "--port", str(find_free_port())], tmp_path)
    assert done.returncode != 0
    assert "pip install 'conveyor-queue[web]'" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.skipif(EXTRA != "base", reason="the base install only")
def test_extras_not_installed_cost_nothing_and_say_what_to_install(
    tmp_path: Path, redis_url: str
) -> None:
    # ecosystem: the outbox relay without psycopg names its extra; queues and workers run, and
    # import neither the outbox's nor OpenTelemetry's modules.
    done = run(
        [str(BIN / "conveyor"), "outbox-relay", "orders", "--once", "--url", redis_url,
         "--dsn", "postgresql://127.0.0.1:1/none"],
        tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "pip install 'conveyor-queue[outbox]'" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    out = python(
        "import sys\n"
        "from conveyor import SyncQueue\n"
        "from conveyor.outbox import Outbox\n"
        "with SyncQueue('lean', sys.argv[1]) as q: q.add('x')\n"
        "Outbox('lean')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'opentelemetry')"
        " or m == 'conveyor.otel'))",
        tmp_path,
        redis_url,
    )
    assert out.strip() == "[]"


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.headers.get("content-type", ""), response.read()


@pytest.mark.skipif(EXTRA != "web", reason="the [web] install only")
def test_dashboard_serves_the_built_assets(tmp_path: Path, redis_url: str) -> None:
    port = find_free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "dashboard.log"
    with open(log, "wb") as output:
        proc = subprocess.Popen(
            [str(BIN / "conveyor"), "dashboard", "--port", str(port), "--url", redis_url],
            cwd=tmp_path, env=_env(), stdin=subprocess.DEVNULL, stdout=output, stderr=output,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                status, kind, body = _get(f"{base}/")
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        assert status == 200 and kind.startswith("text/html"), (status, kind)
        html = body.decode()
        scripts = re.findall(r'<script[^>]*\ssrc="([^"]+\.js)"', html)
        assert scripts, f"index.html links no script (is the dashboard built?):\n{html}"
        status, kind, body = _get(f"{base}/{scripts[0].removeprefix('./').lstrip('/')}")
        assert status == 200 and "javascript" in kind, (status, kind)
        assert body, scripts[0]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
