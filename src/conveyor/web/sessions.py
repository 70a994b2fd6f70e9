"""Session cookies set by ``POST /api/login``: signed, bound to the credentials, revocable.

A cookie is ``<expiry>.<session id>.<signature>``. The signature covers the expiry, the id, a
fingerprint of the configured credentials and a server-side epoch, so a cookie stops working
when it expires, when the token or password changes (even with the same secret key), when its
session is logged out, and when the epoch moves on (``revoke_all``). Revocations are kept in
this process until the cookies they name expire.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time

__all__ = ["SESSION_COOKIE", "SESSION_SECONDS", "Sessions"]

SESSION_COOKIE = "conveyor_session"
SESSION_SECONDS = 12 * 3600
#: More revoked sessions than this at once and every session is revoked instead (epoch + 1):
#: the list must stay bounded however many logins an attacker makes.
MAX_REVOKED = 100_000
# Anything else, a 5,000-digit expiry or a '²' included, is not a session: no int() of it.
_COOKIE = re.compile(r"^([0-9]{1,12})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class Sessions:
    """Makes and checks session cookies; ``key`` is the secret key with the credentials'
    fingerprint (``SecurityConfig.session_key``), passed on every call so that a change of
    either takes effect at once."""

    def __init__(self) -> None:
        self.epoch = 0
        self._revoked: dict[str, int] = {}  # session id -> its expiry

    def make(self, key: bytes, now: float | None = None) -> str:
        expires = int(now if now is not None else time.time()) + SESSION_SECONDS
        body = f"{expires}.{_b64(secrets.token_bytes(16))}"
        return f"{body}.{self._sign(key, body)}"

    def session_id(self, key: bytes, cookie: str | None) -> str | None:
        """The id of the session ``cookie`` holds, or None unless it is valid right now."""
        match = _COOKIE.match(cookie or "")
        if match is None:
            return None
        expires, session, signature = match.groups()
        body = f"{expires}.{session}"
        if not hmac.compare_digest(signature.encode(), self._sign(key, body).encode()):
            return None
        if int(expires) < time.time() or session in self._revoked:
            return None
        return session

    def revoke(self, key: bytes, cookie: str | None) -> None:
        """Log out the session of ``cookie`` (nothing if it is not valid)."""
        session = self.session_id(key, cookie)
        if session is None:
            return
        now = time.time()
        self._revoked = {s: exp for s, exp in self._revoked.items() if exp >= now}
        if len(self._revoked) >= MAX_REVOKED:
            self.revoke_all()
            return
        expires = int((cookie or "").split(".", 1)[0])
        self._revoked[session] = expires

    def revoke_all(self) -> None:
        """End every session made so far."""
        self.epoch += 1
        self._revoked.clear()

    def _sign(self, key: bytes, body: str) -> str:
        message = f"session:{self.epoch}:{body}".encode()
        return _b64(hmac.new(key, message, hashlib.sha256).digest())
