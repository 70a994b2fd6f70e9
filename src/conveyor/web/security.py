"""Authentication, CSRF and browser-hardening rules of the web app.

* Credentials: a bearer token, HTTP Basic username/password, a session cookie set by
  ``POST /api/login`` (HttpOnly, SameSite=Strict, signed, revocable in every process through
  Redis: ``web.sessions``), or the
  host app's own check (``authenticate=`` hook). Every route needs them except
  ``/api/health`` (which then answers only a status), ``/api/config``, ``/api/login``,
  ``/api/logout`` and the static dashboard shell (which holds no data). Failed guesses of a
  token or password are slowed down per client (``web.throttle``).
* With no credentials and no hook the app is "open": it then answers loopback clients only,
  and only for loopback ``Host`` names (which also defeats DNS rebinding).
* State-changing requests (POST/PUT/PATCH/DELETE) are refused when the browser says they are
  cross-site (``Sec-Fetch-Site``) or when ``Origin`` is another origin (scheme, host and port).
  Besides, each must prove it is not a plain HTML form, whatever headers the browser sent or
  left out: a JSON body, or a header no form can set (``X-Conveyor-Request``, a bearer token).
  The dashboard sends ``X-Conveyor-Request`` on every state change.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import inspect
import ipaddress
import math
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import errors
from .sessions import SESSION_COOKIE, Revocations, Sessions
from .throttle import FailureThrottle, client_key

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
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
#: The header a script sends to show a state-changing request is not an HTML form.
REQUEST_HEADER = "x-conveyor-request"
#: Shortest token and password accepted (a shorter one is refused at start).
MIN_SECRET_LENGTH = 8
#: Shortest key sessions may be signed with, in bytes (a 256-bit HMAC key).
MIN_SECRET_KEY_BYTES = 32
_DEFAULT_PORTS = {"http": "80", "https": "443"}


class WebError(Exception):
    """An error with an HTTP status and a stable code, rendered as ``{"error": {...}}``;
    ``headers`` go with the response (e.g. ``Retry-After``)."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


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


def _origin(scheme: str, netloc: str) -> str:
    """``scheme://host[:port]`` in one spelling: lower case, without the scheme's default port."""
    scheme, netloc = scheme.lower(), netloc.lower()
    host, _, port = netloc.rpartition(":") if not netloc.endswith("]") else (netloc, "", "")
    if host and port == _DEFAULT_PORTS.get(scheme):
        netloc = host
    return f"{scheme}://{netloc}"


def _client_key(conn: HTTPConnection) -> str:
    """Whom this connection's failed guesses count against."""
    return client_key(conn.client.host if conn.client else None)


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


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
    sessions: Sessions = dataclasses.field(default_factory=Sessions)
    #: Where logouts are kept (``create_app`` gives its Redis); without it a logout only
    #: clears the browser's cookie.
    revocations: Revocations | None = None
    throttle: FailureThrottle = dataclasses.field(default_factory=FailureThrottle)

    def __post_init__(self) -> None:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password, or neither")
        if self.username is not None and not self.username:
            raise ValueError("the username must not be empty (leave both out for open mode)")
        for what, value in (("token", self.token), ("password", self.password)):
            if value is not None and len(value) < MIN_SECRET_LENGTH:
                raise ValueError(f"the {what} must be at least {MIN_SECRET_LENGTH} characters long")
        if len(self.secret_key) < MIN_SECRET_KEY_BYTES:
            # The key itself is never part of the message.
            raise ValueError(
                "the secret key (--secret-key, CONVEYOR_SECRET_KEY, create_app(secret_key=)) must "
                f"be at least {MIN_SECRET_KEY_BYTES} bytes long; the one given has "
                f"{len(self.secret_key)}"
            )

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
        if token and self.token and secrets.compare_digest(token.encode(), self.token.encode()):
            return True
        if username is not None and password is not None and self.username and self.password:
            user_ok = secrets.compare_digest(username.encode(), self.username.encode())
            pass_ok = secrets.compare_digest(password.encode(), self.password.encode())
            return user_ok and pass_ok
        return False

    def login(
        self, conn: HTTPConnection, token: str | None, username: str | None, password: str | None
    ) -> str:
        """A new session cookie for these credentials; ``WebError`` 401 or 429 otherwise."""
        self._check_pace(conn)
        if not self.check_credentials(token, username, password):
            self._failed(conn)
            raise WebError(401, "unauthorized", "wrong token or username/password")
        self.throttle.succeeded(_client_key(conn))
        return self.sessions.make(self.session_key)

    async def logout(self, conn: HTTPConnection) -> None:
        """End the session of the request's cookie, in every process (nothing if the cookie
        holds no valid session)."""
        cookie = conn.cookies.get(SESSION_COOKIE)
        session = self.sessions.session_id(self.session_key, cookie)
        if session is not None and cookie is not None and self.revocations is not None:
            try:
                await self.revocations.revoke(session, self.sessions.expires(cookie))
            except errors.ConveyorError:
                raise WebError(
                    503, "redis_unavailable", "cannot log out now: Redis is unavailable"
                ) from None

    @property
    def session_key(self) -> bytes:
        """The key sessions are signed with: the secret key and a fingerprint of the
        credentials, so that changing the token or password ends every session."""
        fingerprint = hashlib.sha256()
        for part in (self.token, self.username, self.password):
            fingerprint.update(b"-" if part is None else b"+" + part.encode() + b"\0")
        return self.secret_key + fingerprint.digest()

    async def valid_session(self, cookie: str | None) -> bool:
        """Whether ``cookie`` holds a session that is signed, unexpired and not logged out.
        When Redis cannot say whether it was logged out, the request is refused (503): a
        revocation that cannot be checked is not ignored."""
        session = self.sessions.session_id(self.session_key, cookie)
        if session is None:
            return False
        if self.revocations is None:
            return True
        try:
            return not await self.revocations.is_revoked(session)
        except errors.ConveyorError:
            raise WebError(
                503, "redis_unavailable", "cannot check the session now: Redis is unavailable"
            ) from None

    async def authorize(self, conn: HTTPConnection) -> None:
        """Raise ``WebError`` unless the request may read data."""
        if self.is_open:
            self.check_open_access(conn)
            return
        if await self.valid_session(conn.cookies.get(SESSION_COOKIE)):
            return
        header = conn.headers.get("authorization")
        throttled = None
        if header and self.has_credentials:
            try:
                self._check_pace(conn)
            except WebError as exc:
                throttled = exc  # the host app's hook may still let it in
            else:
                if self._header_credentials(header):
                    self.throttle.succeeded(_client_key(conn))
                    return
                self._failed(conn)
        if self.authenticate is not None and isinstance(conn, Request):
            verdict = self.authenticate(conn)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if verdict:
                return
        if throttled is not None:
            raise throttled
        raise WebError(401, "unauthorized", "authentication required: log in or send a token")

    def _check_pace(self, conn: HTTPConnection) -> None:
        """Raise 429 while this client's failed guesses keep it waiting."""
        wait = self.throttle.retry_after(_client_key(conn))
        if wait > 0:
            raise WebError(
                429,
                "too_many_attempts",
                f"too many failed logins from this client: try again in {math.ceil(wait)} s",
                {"retry-after": str(math.ceil(wait))},
            )

    def _failed(self, conn: HTTPConnection) -> None:
        self.throttle.failed(_client_key(conn))

    def _header_credentials(self, header: str) -> bool:
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
        if client is not None and not is_loopback(client):
            raise WebError(
                403,
                "forbidden",
                "no credentials are configured, so only loopback clients are served",
            )
        host = _host_name(conn.headers.get("host", ""))
        if host and not is_loopback(host) and host not in self.allowed_hosts:
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
        own = _origin(request.url.scheme, request.headers.get("host", ""))
        if origin is not None:
            parts = urlsplit(origin) if origin != "null" else None
            theirs = _origin(parts.scheme, parts.netloc) if parts else "null"
            if not request.headers.get("host") or theirs != own:
                raise WebError(403, "csrf", f"cross-origin request refused (Origin: {origin})")
        if not (
            _content_type(request) == "application/json"
            or REQUEST_HEADER in request.headers
            or request.headers.get("authorization", "").lower().startswith("bearer ")
        ):
            raise WebError(
                403,
                "csrf",
                "a state-changing request must send a JSON body (content-type "
                f"application/json) or the {REQUEST_HEADER} header",
            )


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
