"""Authentication, CSRF and browser-hardening rules of the web app.

* Credentials: a bearer token, HTTP Basic username/password, a session cookie set by
  ``POST /api/login`` (HttpOnly, SameSite=Strict, HMAC-signed), or the host app's own check
  (``authenticate=`` hook). Every route needs them except ``/api/health``, ``/api/config``,
  ``/api/login`` and the static dashboard shell (which holds no data).
* With no credentials and no hook the app is "open": it then answers loopback clients only,
  and only for loopback ``Host`` names (which also defeats DNS rebinding).
* State-changing requests (POST/PUT/PATCH/DELETE) are refused when the browser says they are
  cross-site (``Sec-Fetch-Site``), when ``Origin`` names another host, or when a body is not
  JSON (HTML forms cannot send JSON without a CORS preflight, which is never granted).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import inspect
import ipaddress
import secrets
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CSP",
    "SECURITY_HEADERS",
    "Authenticator",
    "SecurityConfig",
    "SecurityHeadersMiddleware",
    "WebError",
]

Authenticator = Callable[[Request], bool | Awaitable[bool]]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
SESSION_COOKIE = "conveyor_session"
SESSION_SECONDS = 12 * 3600
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class WebError(Exception):
    """An error with an HTTP status and a stable code, rendered as ``{"error": {...}}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(netloc: str) -> str:
    """The host part of a ``Host`` header or netloc, without the port."""
    if netloc.startswith("["):
        return netloc.split("]", 1)[0] + "]"
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


@dataclasses.dataclass(slots=True)
class SecurityConfig:
    token: str | None = None
    username: str | None = None
    password: str | None = None
    authenticate: Authenticator | None = None
    read_only: bool = False
    #: Extra Host names accepted in open mode (no credentials), besides loopback names.
    allowed_hosts: tuple[str, ...] = ()
    secret_key: bytes = dataclasses.field(default_factory=lambda: secrets.token_bytes(32))

    def __post_init__(self) -> None:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password, or neither")
        if self.token is not None and len(self.token) < 8:
            raise ValueError("the token must be at least 8 characters long")

    @property
    def has_credentials(self) -> bool:
        return bool(self.token or self.username)

    @property
    def is_open(self) -> bool:
        return not self.has_credentials and self.authenticate is None

    @property
    def kind(self) -> str:
        if self.authenticate is not None and not self.has_credentials:
            return "host"
        if self.token and self.username:
            return "token+password"
        if self.token:
            return "token"
        if self.username:
            return "password"
        return "none"

    # -- credentials ---------------------------------------------------------------------------

    def check_credentials(
        self, token: str | None, username: str | None, password: str | None
    ) -> bool:
        if token and self.token and hmac.compare_digest(token.encode(), self.token.encode()):
            return True
        if username is not None and password is not None and self.username and self.password:
            user_ok = hmac.compare_digest(username.encode(), self.username.encode())
            pass_ok = hmac.compare_digest(password.encode(), self.password.encode())
            return user_ok and pass_ok
        return False

    def make_session(self, now: float | None = None) -> str:
        expires = int((now or time.time()) + SESSION_SECONDS)
        return f"{expires}.{self._sign(str(expires))}"

    def valid_session(self, value: str | None) -> bool:
        if not value or "." not in value:
            return False
        expires, signature = value.split(".", 1)
        if not expires.isdigit() or int(expires) < time.time():
            return False
        return hmac.compare_digest(signature, self._sign(expires))

    def _sign(self, text: str) -> str:
        digest = hmac.new(self.secret_key, f"session:{text}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    async def authorize(self, conn: HTTPConnection) -> None:
        """Raise ``WebError`` unless the request may read data."""
        if self.is_open:
            self.check_open_access(conn)
            return
        if self._header_credentials(conn) or self.valid_session(conn.cookies.get(SESSION_COOKIE)):
            return
        if self.authenticate is not None and isinstance(conn, Request):
            verdict = self.authenticate(conn)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if verdict:
                return
        raise WebError(401, "unauthorized", "authentication required: log in or send a token")

    def _header_credentials(self, conn: HTTPConnection) -> bool:
        header = conn.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            return self.check_credentials(value.strip(), None, None)
        if scheme == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                return False
            username, sep, password = decoded.partition(":")
            return bool(sep) and self.check_credentials(None, username, password)
        return False

    def check_open_access(self, conn: HTTPConnection) -> None:
        """Open mode: loopback clients and loopback (or allowed) Host names only."""
        client = conn.client.host if conn.client else None
        if client is not None and client != "testclient" and not is_loopback(client):
            raise WebError(
                403,
                "forbidden",
                "no credentials are configured, so only loopback clients are served",
            )
        host = _host_name(conn.headers.get("host", ""))
        if (
            host
            and not is_loopback(host)
            and host not in self.allowed_hosts
            and host != "testserver"
        ):
            raise WebError(
                403, "host_not_allowed", f"Host {host!r} is not allowed without credentials"
            )

    # -- CSRF ----------------------------------------------------------------------------------

    def check_csrf(self, request: Request) -> None:
        """Refuse cross-site state changes (see the module docstring)."""
        if request.method not in UNSAFE_METHODS:
            return
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            raise WebError(403, "csrf", f"cross-site request refused (Sec-Fetch-Site: {site})")
        origin = request.headers.get("origin")
        if origin is not None:
            own = request.headers.get("host", "")
            theirs = urlsplit(origin).netloc if origin != "null" else "null"
            if not own or theirs.lower() != own.lower():
                raise WebError(403, "csrf", f"cross-origin request refused (Origin: {origin})")


class SecurityHeadersMiddleware:
    """Adds CSP and friends to every response, and ``no-store`` to API responses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_api = "/api/" in scope.get("path", "") or scope.get("path", "").endswith("/metrics")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {bytes(k).lower() for k, _ in headers}
                for key, value in SECURITY_HEADERS.items():
                    if key.encode() not in present:
                        headers.append((key.encode(), value.encode()))
                if is_api and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
