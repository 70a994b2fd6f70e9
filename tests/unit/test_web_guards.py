"""The web app's guards without a server: the failure throttle's pace and bounds, session
cookies (signature, expiry, epoch; logouts are kept in Redis, see
tests/integration/test_web_security.py), and the minimum credentials."""

from __future__ import annotations

import time

import pytest

from conveyor.web.security import SecurityConfig
from conveyor.web.sessions import SESSION_SECONDS, Sessions
from conveyor.web.throttle import FailureThrottle, client_key

KEY = b"k" * 40


def test_the_throttle_lets_a_few_failures_pass_then_doubles_the_wait() -> None:
    throttle = FailureThrottle(free_failures=3, first_delay=1.0, max_delay=8.0)
    waits = []
    for _ in range(8):
        throttle.failed("a", now=100.0)
        waits.append(throttle.retry_after("a", now=100.0))
    assert waits == [0, 0, 0, 1, 2, 4, 8, 8]
    assert throttle.retry_after("b", now=100.0) == 0  # another client
    assert throttle.retry_after("a", now=108.5) == 0  # the wait is over
    throttle.succeeded("a")
    throttle.failed("a", now=109.0)
    assert throttle.retry_after("a", now=109.0) == 0  # a success started it afresh


def test_the_throttle_forgets_old_failures_and_stays_bounded() -> None:
    throttle = FailureThrottle(free_failures=1, forget_after=60.0, max_clients=100)
    throttle.failed("a", now=0.0)
    throttle.failed("a", now=61.0)  # the first one is forgotten: this is failure 1 again
    assert throttle.retry_after("a", now=61.0) == 0
    for i in range(1000):
        throttle.failed(f"client-{i}", now=70.0)
    assert len(throttle._records) == 100
    assert "client-999" in throttle._records and "client-0" not in throttle._records


def test_failures_of_one_ipv6_host_count_together() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2")
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("10.0.0.1") != client_key("10.0.0.2")
    # IPv4 clients of a dual-stack server are told apart, not lumped into ::ffff:0:0/64.
    assert client_key("::ffff:10.0.0.1") == client_key("10.0.0.1") == "10.0.0.1"
    assert client_key("::ffff:10.0.0.1") != client_key("::ffff:10.0.0.2")


def test_a_session_is_valid_until_it_expires_under_the_key_it_was_made_with() -> None:
    store = Sessions()
    cookie = store.make(KEY)
    assert store.session_id(KEY, cookie) is not None
    assert store.expires(cookie) > time.time() + SESSION_SECONDS - 5
    assert store.session_id(b"another key" * 4, cookie) is None
    old = store.make(KEY, now=time.time() - SESSION_SECONDS - 1)
    assert store.session_id(KEY, old) is None
    assert Sessions().session_id(KEY, cookie) is not None  # another process, the same key


@pytest.mark.parametrize(
    "cookie", ["", ".", "².x", "9" * 5000 + ".x", "1.2.3", "x" * 10_000, "é.é.é", None]
)
def test_a_malformed_cookie_is_no_session(cookie: str | None) -> None:
    assert Sessions().session_id(KEY, cookie) is None


async def test_changing_the_password_ends_the_sessions_made_with_the_old_one() -> None:
    config = SecurityConfig(username="admin", password="first-password", secret_key=KEY)
    cookie = config.sessions.make(config.session_key)
    assert await config.valid_session(cookie)
    config.password = "second-password"
    assert not await config.valid_session(cookie)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"username": "", "password": "long-enough"}, "username must not be empty"),
        ({"username": "admin", "password": "short"}, "at least 8 characters"),
        ({"token": "short"}, "at least 8 characters"),
        ({"username": "admin"}, "give both username and password"),
        ({"token": "long-enough", "secret_key": b"k" * 31}, "at least 32 bytes long"),
    ],
)
def test_weak_or_half_credentials_are_refused(options: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SecurityConfig(**options)  # type: ignore[arg-type]
