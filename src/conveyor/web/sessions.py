"""Session cookies set by ``POST /api/login``: signed, bound to the credentials, revocable.

A cookie is ``<expiry>.<session id>.<signature>``. The signature covers the expiry, the id and
a fingerprint of the configured credentials, under the secret key, so a cookie stops working
when it expires, when the token or password changes (even with the same secret key), when the
secret key changes (every session at once, in every process that shares it), and when its
session is logged out.

A logout is kept in Redis (``Revocations``: one key per session, living until its cookie would
expire, revoke_session.lua), so it holds in every dashboard process that shares the Redis and
prefix, and across restarts; each request with a session cookie checks it there.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time

from ..storage.ops import revoke_session, session_revoked
from ..storage.redis import AsyncRedis

__all__ = ["SESSION_COOKIE", "SESSION_SECONDS", "Revocations", "Sessions"]

SESSION_COOKIE = "conveyor_session"
SESSION_SECONDS = 12 * 3600
# Anything else, a 5,000-digit expiry or a '²' included, is not a session: no int() of it.
_COOKIE = re.compile(r"^([0-9]{1,12})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class Revocations:
    """Logged-out sessions, in Redis under ``prefix`` (see the module docstring)."""

    def __init__(self, redis: AsyncRedis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def revoke(self, session_id: str, expires: int) -> None:
        """Refuse ``session_id`` from now until ``expires`` (epoch seconds), everywhere."""
        ttl_ms = int((expires - time.time()) * 1000)
        if ttl_ms > 0:  # an expired cookie is refused anyway
            await self._redis.run(revoke_session(self._prefix, session_id, ttl_ms))

    async def is_revoked(self, session_id: str) -> bool:
        return await self._redis.run(session_revoked(self._prefix, session_id))


class Sessions:
    """Makes and checks session cookies; ``key`` is the secret key with the credentials'
    fingerprint (``SecurityConfig.session_key``), passed on every call so that a change of
    either takes effect at once."""

    def make(self, key: bytes, now: float | None = None) -> str:
        expires = int(now if now is not None else time.time()) + SESSION_SECONDS
        body = f"{expires}.{_b64(secrets.token_bytes(16))}"
        return f"{body}.{self._sign(key, body)}"

    def session_id(self, key: bytes, cookie: str | None) -> str | None:
        """The id of the session ``cookie`` holds, or None unless its signature is good and it
        has not expired (whether it was logged out is for ``Revocations``)."""
        match = _COOKIE.match(cookie or "")
        if match is None:
            return None
        expires, session, signature = match.groups()
        body = f"{expires}.{session}"
        if not hmac.compare_digest(signature.encode(), self._sign(key, body).encode()):
            return None
        if int(expires) < time.time():
            return None
        return session

    @staticmethod
    def expires(cookie: str) -> int:
        """The expiry (epoch seconds) of a cookie ``session_id`` accepted."""
        return int(cookie.split(".", 1)[0])

    @staticmethod
    def _sign(key: bytes, body: str) -> str:
        message = f"session:{body}".encode()
        return _b64(hmac.new(key, message, hashlib.sha256).digest())
