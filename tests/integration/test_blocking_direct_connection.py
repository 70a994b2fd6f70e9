"""The pooled connection script calls take from blocking code (``storage.blocking_resp``, under
``SyncQueue``), against real Redis: threads get their own replies, a forked child its own
connections, and a dead, stopped or restarted server, a link reset, cut or slowed, a login and a
unix socket behave as they do through redis-py."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from tests.support.redis_server import RedisServer, find_free_port
from tests.support.tcp_proxy import TcpProxy

from conveyor import SyncQueue
from conveyor.errors import CommandRefused, ConnectionError
from conveyor.storage import resp
from conveyor.storage.blocking_resp import BlockingDirectClient


def _connections(server_url: str) -> int:
    with redis.Redis.from_url(server_url) as client:
        return len(client.client_list()) - 1  # less this one


def test_threads_share_the_pool_and_get_their_own_replies(
    make_redis: Callable[..., RedisServer], key_prefix: str
) -> None:
    server = make_redis()
    with SyncQueue("q", url=server.url, prefix=key_prefix) as queue:
        results: dict[int, list[int]] = {}
        start = threading.Barrier(8)  # every first call at once: still one client is made

        def produce(thread: int) -> None:
            start.wait()
            results[thread] = [
                queue.add("echo", {"t": thread, "n": n}).data["n"] for n in range(200)
            ]

        threads = [threading.Thread(target=produce, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert queue.redis.direct is not None  # the path under test was taken
        for t in range(8):
            assert results[t] == list(range(200))
        stored = queue.get_jobs("waiting", 0, -1, newest_first=False)
        assert len({job.id for job in stored}) == 1600
        for t in range(8):  # FIFO within each producer
            assert [j.data["n"] for j in stored if j.data["t"] == t] == list(range(200))
        # One connection per thread at most (plus redis-py's for the reads), none leaked.
        assert _connections(server.url) <= 9
        queue.close()
        assert _connections(server.url) == 0


def test_a_forked_child_opens_its_own_connection(
    make_redis: Callable[..., RedisServer], key_prefix: str
) -> None:
    server = make_redis()
    with SyncQueue("q", url=server.url, prefix=key_prefix) as queue:
        queue.add("parent", {"n": 0})  # the pool now holds a connection the child inherits
        pid = os.fork()
        if pid == 0:  # the child: its replies must be its own, and the parent's theirs
            try:
                ok = all(queue.add("child", {"n": n}).data == {"n": n} for n in range(300))
            except BaseException:
                ok = False
            os._exit(0 if ok else 1)
        parent_ok = all(queue.add("parent", {"n": n}).data == {"n": n} for n in range(1, 301))
        _, status = os.waitpid(pid, 0)
        assert parent_ok
        assert os.waitstatus_to_exitcode(status) == 0
        assert queue.counts()["waiting"] == 601


def test_a_restarted_server_costs_no_failed_call(
    make_redis: Callable[..., RedisServer], key_prefix: str
) -> None:
    server = make_redis()
    with SyncQueue("q", url=server.url, prefix=key_prefix) as queue:
        queue.add("before")
        server.restart()  # empty, and without the script cache
        # The pooled connection is seen closed before it is used, and the script is sent
        # again: the first call after the restart succeeds.
        job = queue.add("after")
        assert queue.get_job(job.id) is not None
        assert queue.counts()["waiting"] == 1


def test_scripts_the_server_forgot_cost_one_extra_round_trip(
    make_redis: Callable[..., RedisServer], key_prefix: str
) -> None:
    server = make_redis()
    with SyncQueue("q", url=server.url, prefix=key_prefix) as queue:
        queue.add("before")
        with redis.Redis.from_url(server.url) as client:
            client.script_flush()
            client.config_resetstat()
            queue.add("after")
            stats = client.info("commandstats")
        assert stats["cmdstat_evalsha"]["calls"] == 1  # answered NOSCRIPT
        assert stats["cmdstat_eval"]["calls"] == 1
        assert queue.counts()["waiting"] == 2


def test_a_server_that_stops_answering_fails_calls_within_the_timeout(
    make_redis: Callable[..., RedisServer], key_prefix: str
) -> None:
    server = make_redis()
    with SyncQueue("q", url=server.url, prefix=key_prefix, socket_timeout_seconds=0.5) as queue:
        queue.add("before")
        server.pause()
        try:
            started = time.monotonic()
            with pytest.raises(ConnectionError, match=r"no reply from .* within 0\.5 s"):
                queue.add("stuck", {"n": 1})
            assert time.monotonic() - started < 3
        finally:
            server.resume()
        # A fresh connection: the late reply to "stuck" does not land on this call.
        assert queue.add("after", {"n": 2}).data == {"n": 2}


def test_an_unreachable_server_is_a_connection_error_naming_it(key_prefix: str) -> None:
    port = find_free_port()
    url = f"redis://127.0.0.1:{port}/0"
    with SyncQueue("q", url=url, prefix=key_prefix, socket_timeout_seconds=1) as queue:
        started = time.monotonic()
        with pytest.raises(ConnectionError, match=f"cannot connect to 127.0.0.1:{port}"):
            queue.add("x")
        assert time.monotonic() - started < 2


def test_password_and_database_from_the_url(
    make_redis: Callable[..., RedisServer], key_prefix: str
) -> None:
    server = make_redis()
    server.command("CONFIG", "SET", "requirepass", "s3cret")
    url = f"redis://:s3cret@127.0.0.1:{server.port}/3"
    with SyncQueue("q", url=url, prefix=key_prefix) as queue:
        job = queue.add("x")
        assert queue.get_job(job.id) is not None
    with redis.Redis(port=server.port, password="s3cret", db=3) as client:
        assert client.exists(f"{key_prefix}:{{q}}:job:{job.id}") == 1
    bad = f"redis://:wrong@127.0.0.1:{server.port}/0"
    with (
        SyncQueue("q", url=bad, prefix=key_prefix) as queue,
        pytest.raises(ConnectionError, match="refused the login"),
    ):
        queue.add("x")


def test_unix_socket(
    make_redis: Callable[..., RedisServer], key_prefix: str, tmp_path: Path
) -> None:
    path = tmp_path / "redis.sock"
    make_redis(extra_config={"unixsocket": str(path), "unixsocketperm": "700"})
    with SyncQueue("q", url=f"unix://{path}?db=0", prefix=key_prefix) as queue:
        job = queue.add("x", {"via": "unix"})
        assert queue.redis.direct is not None and queue.redis.direct.endpoint.path == str(path)
        assert queue.get_job(job.id).data == {"via": "unix"}  # type: ignore[union-attr]


def test_error_replies_come_back_as_values_and_leave_the_connection_in_step(
    redis_url: str,
) -> None:
    client = BlockingDirectClient(redis_url, 2.0, 2.0)
    try:
        replies = client.execute(
            resp.pack(("EVAL", "return redis.error_reply('ERR boom')", 0))
            + resp.pack(("EVAL", "return 7", 0)),
            2,
        )
        assert replies[1] == 7
        error = resp.reply_error(str(replies[0]))
        assert isinstance(error, CommandRefused) and "boom" in str(error)
        assert client.execute(resp.pack(("ECHO", "next")), 1) == ["next"]
    finally:
        client.close()


def test_a_link_reset_dropped_or_slowed_between_client_and_redis(
    make_redis: Callable[..., RedisServer], key_prefix: str
) -> None:
    server = make_redis()
    with (
        TcpProxy(server.port) as proxy,
        SyncQueue("q", url=proxy.url, prefix=key_prefix, socket_timeout_seconds=0.5) as queue,
    ):
        queue.add("before")
        assert proxy.reset() >= 1  # the pooled connection dies while idle...
        assert queue.add("after reset", {"n": 1}).data == {"n": 1}  # ...and is not used
        proxy.drop()
        started = time.monotonic()
        with pytest.raises(ConnectionError, match="no reply"):
            queue.add("dropped")
        assert time.monotonic() - started < 3
        proxy.heal()
        proxy.delay(0.05)
        # Fresh connections through a slow link; each reply is its own call's.
        assert [queue.add("slow", {"n": n}).data["n"] for n in range(5)] == list(range(5))
    with SyncQueue("q", url=server.url, prefix=key_prefix) as direct:
        names = [job.name for job in direct.get_jobs("waiting", 0, -1, newest_first=False)]
    # The dropped call never reached Redis (the proxy black-holed it both ways).
    assert names == ["before", "after reset"] + ["slow"] * 5
