"""Tests of the test support code itself (tests/support, tests/conftest.py)."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import time
from collections.abc import Callable

import pytest
from tests.support import prerequisites
from tests.support import redis_server as redis_server_module
from tests.support.processes import ProcessManager
from tests.support.redis_server import RedisServer, RedisServerError
from tests.support.waiting import async_wait_for, wait_for


def _pid_exists(pid: int) -> bool:
    """True while ``pid`` is a live (non-zombie) process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def test_session_server_answers(redis_server: RedisServer, redis_url: str) -> None:
    assert redis_server.ping()
    assert redis_url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert redis_server.host == "127.0.0.1"
    assert redis_server.dir.is_dir()


def test_key_prefix_is_unique(key_prefix: str) -> None:
    assert re.fullmatch(r"ct[0-9a-f]{8}", key_prefix)


def test_servers_get_distinct_ports(make_redis: Callable[..., RedisServer]) -> None:
    a, b = make_redis(), make_redis()
    assert a.port != b.port
    assert a.dir != b.dir
    assert a.ping() and b.ping()


def test_kill_and_restart_with_aof_keeps_fsynced_key() -> None:
    with RedisServer(appendonly=True, appendfsync="always") as server:
        port, directory, first_pid = server.port, server.dir, server.pid
        assert server.command("SET", "support:key", "kept") == b"OK"
        server.kill()
        assert not server.running
        assert not _pid_exists(first_pid) or not server.ping()

        server.start()
        assert (server.port, server.dir) == (port, directory)
        assert server.pid != first_pid
        assert server.command("GET", "support:key") == b"kept"

        server.restart()  # graceful restart keeps it too
        assert server.command("GET", "support:key") == b"kept"
    assert not _pid_exists(first_pid)


def test_without_persistence_restart_loses_data() -> None:
    with RedisServer() as server:
        server.command("SET", "support:key", "gone")
        server.restart(graceful=False)
        assert server.command("EXISTS", "support:key") == b"0"


def test_stop_is_idempotent_and_close_removes_dir() -> None:
    server = RedisServer().start()
    pid, directory = server.pid, server.dir
    server.stop()
    server.stop()
    assert not server.running
    server.close()
    assert not directory.exists()
    wait_for(lambda: not _pid_exists(pid), 5, message="redis-server still alive")


def test_a_refused_shutdown_goes_straight_to_sigterm(monkeypatch: pytest.MonkeyPatch) -> None:
    # With a password, SHUTDOWN gets NOAUTH: stop() must not wait out its timeout for an exit
    # that is not coming, but send SIGTERM at once.
    server = RedisServer().start()
    server.command("CONFIG", "SET", "requirepass", "s3cret")
    waits: list[float] = []
    exited = redis_server_module._exited

    def counting(proc: object, timeout: float) -> bool:
        waits.append(timeout)
        return exited(proc, timeout)  # type: ignore[arg-type]

    monkeypatch.setattr(redis_server_module, "_exited", counting)
    pid = server.pid
    server.stop()
    assert not server.running
    assert waits == [10.0]  # one wait, after the SIGTERM; none for the refused SHUTDOWN
    wait_for(lambda: not _pid_exists(pid), 5, message="redis-server still alive")
    server.close()


def test_pause_and_resume() -> None:
    with RedisServer() as server:
        server.pause()
        assert server.paused
        assert not server.ping(timeout=0.2)
        server.resume()
        assert server.ping()
        server.pause()
    # closing a paused server works (it is resumed, then shut down)


def test_maxmemory_options_are_applied() -> None:
    with RedisServer(maxmemory="10mb", maxmemory_policy="allkeys-lru") as server:
        info = server.command("INFO", "memory").decode()
        assert "maxmemory:10485760" in info
        assert "maxmemory_policy:allkeys-lru" in info


def test_start_picks_another_port_when_the_free_one_was_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Simulate the race: the port found free is taken before redis-server binds it.
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        ports = iter([taken])
        real = redis_server_module.find_free_port
        monkeypatch.setattr(
            redis_server_module, "find_free_port", lambda host: next(ports, None) or real(host)
        )
        with RedisServer() as server:
            assert server.port != taken
            assert server.ping()
            assert "Address already in use" in server.log()


def test_explicit_port_in_use_fails_with_clear_error() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        server = RedisServer(port=blocker.getsockname()[1], start_timeout=0.3)
        with pytest.raises(RedisServerError, match="Address already in use"):
            server.start()
        server.close()


def test_wait_for_returns_value_and_raises_on_deadline() -> None:
    assert wait_for(lambda: 42, timeout=0.1) == 42
    started = time.monotonic()
    with pytest.raises(AssertionError, match="never true"):
        wait_for(lambda: False, timeout=0.1, message="never true")
    assert time.monotonic() - started < 2


def test_wait_for_ignore_and_lazy_message() -> None:
    def flaky() -> bool:
        raise ConnectionError("nope")

    with pytest.raises(AssertionError, match=r"lazy 1.*ConnectionError"):
        wait_for(flaky, timeout=0.05, message=lambda: "lazy 1", ignore=(ConnectionError,))
    with pytest.raises(ConnectionError):
        wait_for(flaky, timeout=0.05)


async def test_async_wait_for_sync_and_async_predicates() -> None:
    calls = 0

    async def eventually() -> str | None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        return "done" if calls >= 3 else None

    assert await async_wait_for(eventually, timeout=2) == "done"
    assert await async_wait_for(lambda: True, timeout=0.1) is True
    with pytest.raises(AssertionError, match="still false"):
        await async_wait_for(lambda: False, timeout=0.05, message="still false")


def test_spawn_captures_output_and_env(spawn: ProcessManager) -> None:
    proc = spawn(
        """
        import os, sys
        print("hello", os.environ["SUPPORT_TEST"])
        print("oops", file=sys.stderr)
        """,
        env={"SUPPORT_TEST": "value"},
    )
    assert proc.wait(10) == 0
    assert proc.stdout() == "hello value\n"
    assert proc.stderr() == "oops\n"


def test_spawn_terminate_kills_stubborn_process_group(spawn: ProcessManager) -> None:
    proc = spawn(
        """
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print("child", child.pid, flush=True)
        time.sleep(60)
        """
    )
    proc.wait_for_output("child ")
    child_pid = int(proc.stdout().split()[1])
    assert proc.terminate(timeout=0.2) == -signal.SIGKILL
    wait_for(lambda: not _pid_exists(child_pid), 5, message="grandchild survived")


def test_a_missing_prerequisite_skips_locally_and_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no frobnicator"):
        prerequisites.missing("no frobnicator")
    with pytest.raises(pytest.skip.Exception, match="install it"):
        prerequisites.require_module("conveyor_no_such_module", "install it")
    for value in ("true", "1", "TRUE"):
        monkeypatch.setenv("CI", value)
        with pytest.raises(pytest.fail.Exception, match="missing under CI: no frobnicator"):
            prerequisites.missing("no frobnicator")
    monkeypatch.setenv("CI", "false")
    assert not prerequisites.in_ci()
    assert prerequisites.require_module("json", "stdlib").dumps([]) == "[]"
