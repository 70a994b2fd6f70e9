"""Dashboard sessions shared by several real server processes: with one secret key each accepts
the others' sessions; a logout holds in every process that uses the same Redis and prefix, and
across restarts; a weak key is refused at start."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
import redis
from tests.support.dashboard import CLI, serve_app, start_dashboard
from tests.support.processes import ProcessManager
from tests.support.redis_server import find_free_port

from conveyor.storage.keys import revoked_session_key
from conveyor.web.sessions import SESSION_SECONDS

pytestmark = pytest.mark.timeout(60)

USER, PASSWORD = "admin", "pw-123456"
KEY = b"shared-secret-key-of-32-bytes-or-more"


@pytest.fixture
def server(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def _status(base: str, cookie: str) -> int:
    with httpx.Client(base_url=base, timeout=15, cookies={"conveyor_session": cookie}) as c:
        return c.get("/api/queues").status_code


def test_a_logout_holds_in_every_dashboard_process_and_after_a_restart(
    spawn: ProcessManager, redis_url: str, key_prefix: str, server: redis.Redis
) -> None:
    common = {"url": redis_url, "prefix": key_prefix, "secret_key": KEY}
    common.update(username=USER, password=PASSWORD)
    (first, one), (second, two) = serve_app(spawn, **common), serve_app(spawn, **common)
    with httpx.Client(base_url=one, timeout=15) as c:
        assert c.post("/api/login", json={"username": USER, "password": PASSWORD}).is_success
        cookie = c.cookies["conveyor_session"]
        assert _status(two, cookie) == 200  # one key: the other process accepts it
        logout = c.post("/api/logout", headers={"x-conveyor-request": "1"})
        assert logout.status_code == 200
    assert _status(one, cookie) == 401
    assert _status(two, cookie) == 401  # logged out on the first, refused by the second
    # The mark lives as long as the cookie could, and names the session by its digest only.
    session_id = cookie.split(".")[1]
    key = revoked_session_key(key_prefix, session_id)
    ttl = server.pttl(key)
    expires = int(cookie.split(".")[0])
    assert (expires - time.time()) * 1000 - 5000 < ttl <= SESSION_SECONDS * 1000
    assert session_id not in key
    second.terminate()
    _, again = serve_app(spawn, **common)
    assert _status(again, cookie) == 401  # and after a restart
    # A session that was not logged out still works everywhere.
    with httpx.Client(base_url=again, timeout=15) as c:
        assert c.post("/api/login", json={"username": USER, "password": PASSWORD}).is_success
        assert _status(one, c.cookies["conveyor_session"]) == 200
    assert "Traceback" not in first.output()


def _login(base: str) -> str:
    with httpx.Client(base_url=base, timeout=15) as c:
        r = c.post("/api/login", json={"username": USER, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return c.cookies["conveyor_session"]


def test_dashboards_given_one_secret_key_accept_each_others_sessions(
    spawn: ProcessManager, redis_url: str, key_prefix: str
) -> None:
    args = ["--url", redis_url, "--prefix", key_prefix, "--username", USER, "--password", PASSWORD]
    key = KEY.decode()
    _, one = start_dashboard(spawn, *args, "--secret-key", key)
    second, two = start_dashboard(spawn, *args, env={"CONVEYOR_SECRET_KEY": key})
    _, other = start_dashboard(spawn, *args)  # a key of its own
    cookie = _login(one)
    assert _status(two, cookie) == 200
    assert _status(other, cookie) == 401
    assert _status(one, _login(two)) == 200
    assert key not in second.output()


@pytest.mark.parametrize("key", ["short-key", "x" * 31, ""])
def test_a_weak_secret_key_is_refused_at_start_without_echoing_it(
    key: str, spawn: ProcessManager, redis_url: str
) -> None:
    args = ["dashboard", "--port", str(find_free_port()), "--url", redis_url]
    proc = spawn(CLI, args=[*args, "--username", USER, "--password", PASSWORD, "--secret-key", key])
    assert proc.wait(timeout=20) == 2
    assert "--secret-key" in proc.stderr() and "at least 32 bytes" in proc.stderr()
    assert not key or key not in proc.output()
