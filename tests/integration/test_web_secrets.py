"""No secret of a Redis URL in any answer, log line, error message or banner: of
``conveyor dashboard``, ``conveyor worker`` and ``conveyor demo``, for every URL form that
``storage/urls.py`` accepts. Each is tried as an attacker would: every public and private
route, the start-up banner, the error when Redis cannot be reached."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis
from tests.support.dashboard import CLI, start_dashboard
from tests.support.processes import ProcessManager, python_env
from tests.support.redis_server import RedisServer, find_free_port

from conveyor.settings import Settings
from conveyor.storage.urls import redact_url

pytestmark = pytest.mark.timeout(120)

# Distinctive pieces: a password split at '@' or ':' must not show any piece either.
PIECES = ("Zq9xw", "Y7wv3k")
SECRET = "".join(PIECES)
SENTINEL_SECRET = "Kp2sentinel"


def url_forms(port: int, tmp: Path) -> dict[str, str]:
    """Each URL form storage/urls.py accepts, with secrets; nothing listens on ``port``."""
    where = f"127.0.0.1:{port}"
    return {
        "userinfo": f"redis://:{SECRET}@{where}/0",
        "user_and_password": f"redis://alice:{SECRET}@{where}/0",
        "password_with_at": f"redis://:{PIECES[0]}@{PIECES[1]}@{where}/0",
        "password_with_colon": f"redis://alice:{PIECES[0]}:{PIECES[1]}@{where}/0",
        "percent_encoded": f"redis://:{PIECES[0]}%40{PIECES[1]}@{where}/0",
        "query_password": f"redis://{where}/0?password={SECRET}",
        "rediss": f"rediss://alice:{SECRET}@{where}/0?ssl_cert_reqs=none",
        "unix_socket": f"unix://:{SECRET}@{tmp}/nothing.sock?db=0",
        "unix_query": f"unix://{tmp}/nothing.sock?db=0&password={SECRET}",
        "sentinel": (
            f"redis+sentinel://:{SECRET}@{where}/mymaster/0?sentinel_password={SENTINEL_SECRET}"
        ),
        "rediss_sentinel": f"rediss+sentinel://{where}/mymaster?sentinel_password={SECRET}",
        "cluster": f"redis+cluster://alice:{SECRET}@{where},{where}",
    }


@pytest.fixture
def locked_redis(make_redis: Callable[..., RedisServer]) -> Iterator[Callable[[str], RedisServer]]:
    """``locked_redis(password)``: a Redis that requires ``password`` (unlocked at the end, so
    that it shuts down at once)."""
    locked: list[tuple[RedisServer, str]] = []

    def make(password: str) -> RedisServer:
        server = make_redis()
        server.command("CONFIG", "SET", "requirepass", password)  # after start: it PINGs first
        locked.append((server, password))
        return server

    yield make
    for server, password in locked:
        with redis.Redis(port=server.port, password=password) as client:
            client.config_set("requirepass", "")


def leaks(text: str) -> list[str]:
    return [piece for piece in (*PIECES, SECRET, SENTINEL_SECRET) if piece in text]


ROUTES = [
    ("GET", "/api/health"),
    ("GET", "/api/config"),
    ("GET", "/api/queues"),
    ("GET", "/api/queues/q"),
    ("GET", "/api/queues/q/jobs/1"),
    ("GET", "/api/workers"),
    ("GET", "/metrics"),
    ("GET", "/no-such-page"),
    ("POST", "/api/queues/q/jobs"),
    ("POST", "/api/login"),
]


def every_answer(base: str, headers: dict[str, str] | None = None) -> str:
    """Every route's status line, headers and body, as one text (asked all at once: with
    Sentinel unreachable each answer takes seconds)."""
    with httpx.Client(base_url=base, timeout=30, headers=headers) as client:

        def ask(route: tuple[str, str]) -> str:
            method, path = route
            body = {"name": "x"} if path.endswith("/jobs") else {"token": "wrong-token"}
            r = client.request(method, path, json=body if method == "POST" else None)
            return f"{method} {path} {r.status_code} {dict(r.headers)} {r.text}"

        with ThreadPoolExecutor(len(ROUTES)) as pool:
            return "\n".join(pool.map(ask, ROUTES))


@pytest.mark.parametrize("form", list(url_forms(1, Path("/x"))))
def test_no_url_secret_reaches_the_dashboard_answers_or_its_output(
    form: str, spawn: ProcessManager, tmp_path: Path
) -> None:
    url = url_forms(find_free_port(), tmp_path)[form]
    # Open mode (loopback): every route answers this client, so every route is tried.
    proc, base = start_dashboard(spawn, "--url", url)
    answers = every_answer(base)
    assert "/api/config 200" in answers
    proc.terminate()
    output = proc.output()
    assert "Conveyor dashboard on" in output
    assert "Warning: Redis at" in output  # said at start, not only once the page is opened
    assert leaks(answers) == [], answers
    assert leaks(output) == [], output


def test_a_logged_in_client_of_a_reachable_redis_sees_no_secret_either(
    spawn: ProcessManager, locked_redis: Callable[[str], RedisServer]
) -> None:
    server = locked_redis(f"{PIECES[0]}@{PIECES[1]}")
    url = f"redis://:{PIECES[0]}%40{PIECES[1]}@127.0.0.1:{server.port}/0"
    token = "a-token-of-32-characters-or-so-x"
    proc, base = start_dashboard(spawn, "--url", url, "--token", token)
    answers = every_answer(base, {"authorization": f"Bearer {token}"})
    assert "GET /api/queues 200" in answers  # the URL works: Redis answered
    assert f"redis://:***@127.0.0.1:{server.port}/0" in answers  # /api/config
    public = every_answer(base)
    proc.terminate()
    assert "Warning" not in proc.output()
    assert leaks(answers + public + proc.output()) == []
    # Without credentials, not even where Redis is.
    assert f"127.0.0.1:{server.port}" not in public


@pytest.mark.parametrize("form", ["userinfo", "password_with_at", "query_password", "sentinel"])
def test_the_worker_start_and_its_error_show_no_url_secret(form: str, tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text("from conveyor import Queue\nqueue = Queue('mail')\n")
    url = url_forms(find_free_port(), tmp_path)[form]
    result = subprocess.run(
        [sys.executable, "-c", CLI, "worker", "tasks:queue", "--burst", "--url", url],
        cwd=tmp_path,
        env=python_env({"CONVEYOR_ALLOW_EVICTING_REDIS": ""}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0  # nothing listens there
    assert result.stderr.strip()
    assert leaks(result.stdout + result.stderr) == [], result.stderr


def test_the_worker_banner_with_a_reachable_redis_shows_no_secret(
    tmp_path: Path, locked_redis: Callable[[str], RedisServer]
) -> None:
    server = locked_redis(SECRET)
    (tmp_path / "tasks.py").write_text("from conveyor import Queue\nqueue = Queue('mail')\n")
    url = f"redis://127.0.0.1:{server.port}/0?password={SECRET}"
    result = subprocess.run(
        [sys.executable, "-c", CLI, "worker", "tasks:queue", "--burst", "--url", url],
        cwd=tmp_path,
        env=python_env({"CONVEYOR_ALLOW_EVICTING_REDIS": "1"}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "?password=***" in result.stderr  # the banner names the Redis, redacted
    assert leaks(result.stdout + result.stderr) == []


def test_the_demo_banner_and_its_dashboard_show_no_secret(
    spawn: ProcessManager, locked_redis: Callable[[str], RedisServer], key_prefix: str
) -> None:
    server = locked_redis(SECRET)
    url = f"redis://:{SECRET}@127.0.0.1:{server.port}/0"
    port, dashboard_port = find_free_port(), find_free_port()
    proc = spawn(
        CLI,
        args=[
            "demo",
            "--url",
            url,
            "--prefix",
            key_prefix,
            "--port",
            str(port),
            "--dashboard-port",
            str(dashboard_port),
        ],
        env={"EMAIL_FAILURE_RATE": "0", "REDIS_URL": ""},
        name="demo",
    )
    proc.wait_for_output("Press Ctrl-C to stop.", timeout=60)
    assert f"redis://:***@127.0.0.1:{server.port}/0" in proc.stdout()
    answers = every_answer(f"http://127.0.0.1:{dashboard_port}")
    proc.terminate(timeout=30)
    assert leaks(answers) == [], answers
    assert leaks(proc.output()) == [], proc.output()


def test_the_demo_error_for_an_unreachable_redis_shows_no_secret(spawn: ProcessManager) -> None:
    url = f"redis://:{PIECES[0]}@{PIECES[1]}@127.0.0.1:{find_free_port()}/0"
    proc = spawn(
        CLI,
        args=[
            "demo",
            "--url",
            url,
            "--port",
            str(find_free_port()),
            "--dashboard-port",
            str(find_free_port()),
        ],
        env={"REDIS_URL": ""},
        name="demo-unreachable",
    )
    assert proc.wait(timeout=30) != 0
    assert "does not answer" in proc.stderr()
    assert leaks(proc.output()) == [], proc.output()


@pytest.mark.parametrize("form", list(url_forms(1, Path("/x"))))
def test_redact_url_hides_every_secret_and_keeps_where(form: str, tmp_path: Path) -> None:
    url = url_forms(6399, tmp_path)[form]
    shown = redact_url(url)
    assert leaks(shown) == [], shown
    assert "***" in shown
    assert shown.split("://")[0] == url.split("://")[0]
    assert leaks(repr(Settings(url=url))) == []
    assert Settings(url=url).redacted_url() == shown


def test_redact_url_leaves_a_url_without_secrets_alone() -> None:
    for url in ("redis://localhost:6379/0", "unix:///run/redis.sock?db=2", "rediss://h:6380/1"):
        assert redact_url(url) == url
