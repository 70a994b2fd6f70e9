"""Security of the web app: auth on every route, CSRF, read-only, open-mode limits, headers."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

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
        # same-origin is fine
        r = await c.post(
            "/api/queues/q/pause",
            headers={**auth, "origin": "http://127.0.0.1", "sec-fetch-site": "same-origin"},
        )
        assert r.status_code == 200


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
