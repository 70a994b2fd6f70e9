"""Security of the web app: auth on every route, CSRF, read-only, open-mode limits, headers;
the body limit, sessions, login throttling and the public answers against a real server."""

from __future__ import annotations

import base64
import contextlib
import select
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from tests.support.dashboard import CLI, rss_kib, serve_app, start_dashboard
from tests.support.processes import ProcessManager, SpawnedProcess
from tests.support.redis_server import find_free_port

from conveyor import Queue
from conveyor.errors import ConfigurationError
from conveyor.web import create_app
from conveyor.web.openapi import build_spec

pytestmark = pytest.mark.timeout(60)

TOKEN = "s3cret-token-123"
PUBLIC = {"/api/health", "/api/config", "/api/login", "/api/logout"}


def _concrete(path: str) -> str:
    return path.replace("{queue}", "q").replace("{id}", "1")


def every_route() -> list[tuple[str, str]]:
    routes = [("GET", "/metrics"), ("GET", "/api/openapi.json")]
    for path, ops in build_spec()["paths"].items():
        routes += [(method.upper(), _concrete(path)) for method in ops if path not in PUBLIC]
    return routes


@pytest.fixture
async def app(redis_url: str, key_prefix: str) -> AsyncIterator[Starlette]:
    app = create_app(
        url=redis_url, prefix=key_prefix, token=TOKEN, username="admin", password="pw-123456"
    )
    yield app
    await app.state.admin.close()


def _client(app: Any, base: str = "http://127.0.0.1", **kw: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base, **kw)


@pytest.mark.parametrize(("method", "path"), every_route())
async def test_every_route_needs_credentials(app: Starlette, method: str, path: str) -> None:
    async with _client(app) as c:
        r = await c.request(method, path, json={} if method != "GET" else None)
        assert r.status_code == 401, (method, path, r.text)
        assert r.json()["error"]["code"] == "unauthorized"
        r = await c.request(method, path, headers={"authorization": "Bearer wrong-token"})
        assert r.status_code == 401


async def test_token_basic_and_session_cookie(app: Starlette) -> None:
    async with _client(app) as c:
        assert (await c.get("/api/health")).status_code == 200
        r = await c.get("/api/queues", headers={"authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200
        basic = base64.b64encode(b"admin:pw-123456").decode()
        assert (await c.get("/api/queues", headers={"authorization": f"Basic {basic}"})).is_success
        assert (await c.post("/api/login", json={"token": "nope"})).status_code == 401
        r = await c.post("/api/login", json={"username": "admin", "password": "pw-123456"})
        assert r.status_code == 200
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert (await c.get("/api/queues")).status_code == 200  # the cookie now
        assert (await c.get("/api/config")).json()["auth"] == "token+password"
        await c.post("/api/logout")
        c.cookies.clear()
        assert (await c.get("/api/queues")).status_code == 401


async def test_cross_site_posts_are_refused(app: Starlette) -> None:
    auth = {"authorization": f"Bearer {TOKEN}"}
    async with _client(app) as c:
        await c.post("/api/queues/q/jobs", json={"name": "x"}, headers=auth)
        cross = [
            {"origin": "https://evil.example"},
            {"sec-fetch-site": "cross-site"},
            {"sec-fetch-site": "same-site"},
            {"origin": "null"},
        ]
        for headers in cross:
            r = await c.post("/api/queues/q/pause", headers={**auth, **headers})
            assert r.status_code == 403, headers
            assert r.json()["error"]["code"] == "csrf"
        # an HTML form cannot send JSON: a form-encoded body is refused
        r = await c.post("/api/queues/q/jobs", data={"name": "x"}, headers=auth)
        assert r.status_code == 415
        # same-origin is fine, with the header the dashboard sends on every state change
        same_origin = {"origin": "http://127.0.0.1", "sec-fetch-site": "same-origin"}
        r = await c.post(
            "/api/queues/q/pause", headers={**auth, **same_origin, "x-conveyor-request": "1"}
        )
        assert r.status_code == 200
        # ...and not without it (with credentials a form could carry too: Basic, as a browser
        # resends them): the browser's word alone does not prove a script sent it
        basic = {"authorization": "Basic " + base64.b64encode(b"admin:pw-123456").decode()}
        r = await c.post("/api/queues/q/pause", headers={**basic, **same_origin})
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "csrf"


async def test_read_only_mode(redis_url: str, key_prefix: str) -> None:
    app = create_app(url=redis_url, prefix=key_prefix, token=TOKEN, read_only=True)
    auth = {"authorization": f"Bearer {TOKEN}"}
    async with _client(app) as c:
        r = await c.post("/api/queues/q/jobs", json={"name": "x"}, headers=auth)
        assert r.status_code == 403 and r.json()["error"]["code"] == "read_only"
        assert (await c.get("/api/queues", headers=auth)).status_code == 200
        assert (await c.get("/api/config")).json()["read_only"] is True
    await app.state.admin.close()


async def test_open_mode_serves_loopback_only(redis_url: str, key_prefix: str) -> None:
    app = create_app(url=redis_url, prefix=key_prefix)
    async with _client(app) as c:
        assert (await c.get("/api/queues")).status_code == 200
        # DNS rebinding: a loopback client but a foreign Host name
        r = await c.get("/api/queues", headers={"host": "evil.example"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "host_not_allowed"
    remote = httpx.ASGITransport(app=app, client=("10.1.2.3", 5555))
    async with httpx.AsyncClient(transport=remote, base_url="http://127.0.0.1") as c:
        assert (await c.get("/api/queues")).status_code == 403
    await app.state.admin.close()


async def test_host_app_auth_hook_when_mounted(redis_url: str, key_prefix: str) -> None:
    inner = create_app(
        url=redis_url,
        prefix=key_prefix,
        authenticate=lambda request: request.headers.get("x-user") == "alice",
    )
    host = Starlette(routes=[Mount("/admin/queues", app=inner)])
    async with _client(host) as c:
        assert (await c.get("/admin/queues/api/queues")).status_code == 401
        r = await c.get("/admin/queues/api/queues", headers={"x-user": "alice"})
        assert r.status_code == 200
        index = await c.get("/admin/queues/")
        assert index.status_code == 200
    await inner.state.admin.close()


async def test_security_headers(app: Starlette) -> None:
    async with _client(app) as c:
        for path in ("/", "/api/health", "/api/queues"):
            r = await c.get(path)
            csp = r.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            assert "frame-ancestors 'none'" in csp
            assert r.headers["x-content-type-options"] == "nosniff"


# -- against a real server process -------------------------------------------------------------

USER, PASSWORD = "admin", "pw-123456"


@pytest.fixture
def dashboard(spawn: ProcessManager, redis_url: str, key_prefix: str) -> tuple[SpawnedProcess, str]:
    """``conveyor dashboard`` with a token and a username/password, on a real Redis."""
    return start_dashboard(
        spawn,
        "--url", redis_url, "--prefix", key_prefix,
        "--token", TOKEN, "--username", USER, "--password", PASSWORD,
    )  # fmt: skip


@contextlib.contextmanager
def _login(base: str, **client: Any) -> Iterator[httpx.Client]:
    """A client logged in with the session cookie."""
    with httpx.Client(base_url=base, timeout=15, **client) as c:
        r = c.post("/api/login", json={"username": USER, "password": PASSWORD})
        assert r.status_code == 200, r.text
        yield c


def _chunked_post(port: int, path: str, total: int, chunk: int = 1024 * 1024) -> bytes:
    """POST ``total`` bytes with chunked transfer encoding; stop sending as soon as the server
    answers. Returns what the server sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        piece = f"{chunk:x}\r\n".encode() + b"x" * chunk + b"\r\n"
        sent = 0
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < total and not select.select([sock], [], [], 0)[0]:
                sock.sendall(piece)
                sent += chunk
            sock.sendall(b"0\r\n\r\n")
        answer = b""
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            while b"\r\n\r\n" not in answer or b"}" not in answer:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
    assert sent < total, "the server read the whole body"
    return answer


def test_a_huge_chunked_body_is_refused_with_413_without_buffering_it(
    dashboard: tuple[SpawnedProcess, str],
) -> None:
    proc, base = dashboard
    port = int(base.rsplit(":", 1)[1])
    before = rss_kib(proc.pid)
    answer = _chunked_post(port, "/api/login", 200 * 1024 * 1024)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"payload_too_large" in answer
    grown_mib = (rss_kib(proc.pid) - before) / 1024
    assert grown_mib < 50, f"RSS grew by {grown_mib:.0f} MiB"
    # A declared Content-Length over the limit is refused before a byte of the body is sent.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"POST /api/queues/q/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {200 * 1024 * 1024}\r\n\r\n"
            .encode()
        )  # fmt: skip
        assert sock.recv(65536).startswith(b"HTTP/1.1 413")
    assert rss_kib(proc.pid) - before < 50 * 1024
    assert (httpx.get(f"{base}/api/health")).status_code == 200  # and it still serves
    assert "Traceback" not in proc.output()


def test_logout_needs_the_csrf_check_and_revokes_the_session(
    dashboard: tuple[SpawnedProcess, str],
) -> None:
    _, base = dashboard
    with _login(base) as c:
        cookie = c.cookies["conveyor_session"]
        forged = [
            {"origin": "https://evil.example"},
            {"sec-fetch-site": "cross-site"},
            {"content-type": "application/x-www-form-urlencoded"},  # a form, no Origin
            {"content-type": "text/plain"},
        ]
        for headers in forged:
            r = c.post("/api/logout", headers=headers)
            assert r.status_code == 403 and r.json()["error"]["code"] == "csrf", headers
            assert c.get("/api/queues").status_code == 200  # still logged in
        assert c.post("/api/logout", headers={"x-conveyor-request": "1"}).status_code == 200
    # The server forgot the session: the old cookie no longer works anywhere.
    with httpx.Client(base_url=base, timeout=15, cookies={"conveyor_session": cookie}) as c:
        assert c.get("/api/queues").status_code == 401


def test_crafted_session_cookies_answer_401_without_a_traceback(
    dashboard: tuple[SpawnedProcess, str],
) -> None:
    proc, base = dashboard
    with _login(base) as c:
        good = c.cookies["conveyor_session"]
    expiry, session, signature = good.split(".")
    crafted = [
        "².x",
        "²" * 3 + "." + signature,
        "9" * 5000 + ".x",
        "9" * 5000 + f".{session}.{signature}",
        f"{expiry}.{session}.{'A' * 43}",
        f"{int(expiry) + 3600}.{session}.{signature}",
        f"{expiry}.{session}",
        ".",
        "",
        "é" * 100,
        good + "x",
    ]
    for value in crafted:
        for encoding in ("latin-1", "utf-8"):  # '²' as one byte, as the server decodes it too
            cookie = f"conveyor_session={value}".encode(encoding)
            r = httpx.get(f"{base}/api/queues", headers={"cookie": cookie})
            assert r.status_code == 401, (value[:40], encoding, r.text)
    assert "Traceback" not in proc.output()


def test_actions_need_json_or_the_request_header_and_the_origin_scheme_must_match(
    dashboard: tuple[SpawnedProcess, str],
) -> None:
    _, base = dashboard
    with _login(base) as c:
        assert c.post("/api/queues/q/jobs", json={"name": "x"}).status_code == 201
        for ctype in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data"):
            for path in ("/api/queues/q/pause", "/api/queues/q/clean", "/api/queues/q/retry-all"):
                r = c.post(path, headers={"content-type": ctype})
                assert r.status_code == 403 and r.json()["error"]["code"] == "csrf", (path, ctype)
        r = c.post("/api/queues/q/pause")  # no body, no type, no Origin
        assert r.status_code == 403
        r = c.post("/api/queues/q/pause", headers={"origin": base.replace("http:", "https:")})
        assert r.status_code == 403 and "Origin" in r.json()["error"]["message"]
        # The page's own Origin is not enough on its own: the request header proves a script.
        assert c.post("/api/queues/q/pause", headers={"origin": base}).status_code == 403
        own = {"origin": base, "x-conveyor-request": "1"}
        assert c.post("/api/queues/q/pause", headers=own).status_code == 200
        assert c.post("/api/queues/q/resume", headers={"x-conveyor-request": "1"}).is_success
        r = c.post("/api/queues/q/clean", json={"state": "completed"})
        assert r.status_code == 200


def test_repeated_failed_logins_are_slowed_down_per_client(
    dashboard: tuple[SpawnedProcess, str],
) -> None:
    _, base = dashboard
    statuses = []
    started = time.monotonic()
    with httpx.Client(base_url=base, timeout=15) as c:
        for i in range(20):
            r = c.post("/api/login", json={"username": USER, "password": f"guess-{i}"})
            statuses.append(r.status_code)
        assert statuses[:5] == [401] * 5
        assert statuses.count(429) >= 10, statuses
        refused = c.post("/api/login", json={"username": USER, "password": "guess-x"})
        assert int(refused.headers["retry-after"]) >= 1
        # Guessing the token in a header instead is throttled the same way.
        r = c.get("/api/queues", headers={"authorization": "Bearer wrong-token-123"})
        assert r.status_code == 429
        # Even the right password waits: a throttled client learns nothing from an answer.
        r = c.post("/api/login", json={"username": USER, "password": PASSWORD})
        assert r.status_code == 429
        # Posing as another client through a proxy header does not help: no proxy is trusted
        # unless --forwarded-allow-ips names it.
        posed = {"x-forwarded-for": "203.0.113.9"}
        r = c.post("/api/login", json={"username": USER, "password": "guess-y"}, headers=posed)
        assert r.status_code == 429
    print(f"20 wrong guesses took {time.monotonic() - started:.2f} s: {statuses}")
    # Another client (another loopback address) is not blocked.
    other = httpx.HTTPTransport(local_address="127.0.0.2")
    with _login(base, transport=other) as c:
        assert c.get("/api/queues").status_code == 200


def test_a_session_is_bound_to_the_credentials_and_the_secret_key(
    spawn: ProcessManager, redis_url: str, key_prefix: str
) -> None:
    key = b"k" * 32
    common = {"url": redis_url, "prefix": key_prefix, "username": USER}
    first, base = serve_app(spawn, password=PASSWORD, secret_key=key, **common)
    with _login(base) as c:
        cookie = c.cookies["conveyor_session"]
    first.terminate()

    def works_on(password: str, secret_key: bytes = key) -> bool:
        proc, base = serve_app(spawn, password=password, secret_key=secret_key, **common)
        with httpx.Client(base_url=base, cookies={"conveyor_session": cookie}) as c:
            status = c.get("/api/queues").status_code
        proc.terminate()
        assert status in (200, 401)
        return status == 200

    assert works_on(PASSWORD)  # same key and password: a restart keeps the session
    assert not works_on("a-new-password")  # a changed password ends it
    assert not works_on(PASSWORD, b"n" * 32)  # a new secret key ends every session


def test_health_and_config_without_credentials_tell_only_a_status(
    dashboard: tuple[SpawnedProcess, str], spawn: ProcessManager
) -> None:
    _, base = dashboard
    public = httpx.get(f"{base}/api/health")
    assert public.status_code == 200 and public.json() == {"status": "ok"}
    private = httpx.get(f"{base}/api/health", headers={"authorization": f"Bearer {TOKEN}"})
    assert private.json()["redis"] == "ok" and "version" in private.json()
    config = httpx.get(f"{base}/api/config").json()
    assert "redis" not in config and "prefix" not in config
    assert config["auth"] == "token+password"
    dead_port = find_free_port()
    _, dead = start_dashboard(spawn, "--url", f"redis://127.0.0.1:{dead_port}/0", "--token", TOKEN)
    down = httpx.get(f"{dead}/api/health")
    assert down.status_code == 503
    assert str(dead_port) not in down.text and "127.0.0.1" not in down.text
    assert down.json()["error"]["code"] == "redis_unavailable"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--username", "", "--password", "long-enough-pw"], "username must not be empty"),
        (["--username", "admin", "--password", "short"], "at least 8 characters"),
        (["--token", "short"], "at least 8 characters"),
    ],
)
def test_weak_credentials_are_refused_at_start(
    args: list[str], message: str, spawn: ProcessManager, redis_url: str
) -> None:
    proc = spawn(
        CLI, args=["dashboard", "--port", str(find_free_port()), "--url", redis_url, *args]
    )
    assert proc.wait(timeout=20) == 2
    assert message in proc.stderr()


async def test_the_product_serves_no_test_client_names_in_open_mode(
    redis_url: str, key_prefix: str
) -> None:
    app = create_app(url=redis_url, prefix=key_prefix)
    named = httpx.ASGITransport(app=app, client=("testclient", 50000))
    async with httpx.AsyncClient(transport=named, base_url="http://127.0.0.1") as c:
        assert (await c.get("/api/queues")).status_code == 403
    async with _client(app, base="http://testserver") as c:
        r = await c.get("/api/queues")
        assert r.status_code == 403 and r.json()["error"]["code"] == "host_not_allowed"
    await app.state.admin.close()


async def test_a_job_id_with_a_slash_is_refused_at_add(app: Starlette, redis_url: str) -> None:
    # GET and DELETE address a job as one path segment: such a job could never be reached.
    auth = {"authorization": f"Bearer {TOKEN}"}
    async with _client(app) as c:
        for job_id in ("a/b", "/", "../x"):
            body = {"name": "x", "options": {"job_id": job_id}}
            r = await c.post("/api/queues/q/jobs", json=body, headers=auth)
            assert r.status_code == 400, r.text
            assert "must not contain '/'" in r.json()["error"]["message"]
        ok = {"name": "x", "options": {"job_id": "a.b:c-d"}}
        assert (await c.post("/api/queues/q/jobs", json=ok, headers=auth)).status_code == 201
        assert (await c.get("/api/queues/q/jobs/a.b:c-d", headers=auth)).status_code == 200
    queue = Queue("q", url=redis_url, prefix="slash-test")
    with pytest.raises(ConfigurationError, match="must not contain '/'"):
        await queue.add("x", job_id="a/b")
    await queue.close()
