"""The pipelined connection script calls take on asyncio (``storage.resp``), against real Redis:
replies reach the right caller under concurrency and cancellation, and a dead, stopped or
restarted server, a login and a unix socket all behave as they do through redis-py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from tests.support.redis_server import RedisServer
from tests.support.tcp_proxy import TcpProxy

from conveyor import Queue
from conveyor.errors import CommandRefused, ConnectionError
from conveyor.storage import resp


async def test_concurrent_calls_share_one_socket_and_get_their_own_replies(
    make_queue: Callable[..., Queue],
) -> None:
    queue = make_queue()
    jobs = await asyncio.gather(*(queue.add("echo", {"n": n}) for n in range(500)))
    assert [job.data["n"] for job in jobs] == list(range(500))
    assert len({job.id for job in jobs}) == 500
    stored = await queue.get_jobs("waiting", 0, -1, newest_first=False)
    assert [job.data["n"] for job in stored] == list(range(500))
    assert queue.redis.direct is not None  # the path under test was taken


async def test_cancelled_callers_do_not_shift_replies_onto_others(
    make_queue: Callable[..., Queue],
) -> None:
    queue = make_queue()
    await queue.add("warm")
    tasks = [asyncio.create_task(queue.add("echo", {"n": n})) for n in range(200)]
    await asyncio.sleep(0)  # every request is written; now cancel every other caller
    for task in tasks[::2]:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for n, result in enumerate(results):
        if n % 2:
            assert not isinstance(result, BaseException)
            assert result.data == {"n": n}
    # Later calls on the same socket still line up with their replies.
    after = await asyncio.gather(*(queue.add("after", {"m": m}) for m in range(50)))
    assert [job.data["m"] for job in after] == list(range(50))


async def test_a_restarted_server_is_reconnected_and_gets_the_scripts_again(
    make_redis: Callable[..., RedisServer], key_prefix: str
) -> None:
    server = make_redis()
    async with Queue("q", url=server.url, prefix=key_prefix) as queue:
        await queue.add("before")
        server.restart()  # empty, and without the script cache
        for _ in range(50):  # the first call may see the old socket die
            try:
                job = await queue.add("after")
                break
            except ConnectionError:
                await asyncio.sleep(0.05)
        assert (await queue.get_job(job.id)) is not None
        assert (await queue.counts())["waiting"] == 1


async def test_a_server_that_stops_answering_fails_calls_within_the_timeout(
    make_redis: Callable[..., RedisServer], key_prefix: str
) -> None:
    server = make_redis()
    async with Queue("q", url=server.url, prefix=key_prefix, socket_timeout_seconds=0.5) as queue:
        await queue.add("before")
        server.pause()
        try:
            started = time.monotonic()
            with pytest.raises(ConnectionError, match=r"no reply within 0\.5 s"):
                await queue.add("stuck")
            assert time.monotonic() - started < 3
        finally:
            server.resume()
        await queue.add("after")  # a fresh socket


async def test_a_child_forked_mid_loop_opens_its_own_connection(
    make_redis: Callable[..., RedisServer], key_prefix: str
) -> None:
    # The child runs a loop of its own in the same thread, while its copy of the parent's loop
    # still says it runs: only the fork count tells the parent's socket apart.
    server = make_redis()
    async with Queue("q", url=server.url, prefix=key_prefix) as queue:
        await queue.add("parent", {"n": 0})  # the socket the child inherits
        pid = os.fork()
        if pid == 0:
            try:

                async def adds() -> bool:
                    jobs = [await queue.add("child", {"n": n}) for n in range(300)]
                    return [job.data["n"] for job in jobs] == list(range(300))

                ok = asyncio.run(adds())
            except BaseException:
                ok = False
            os._exit(0 if ok else 1)
        jobs = [await queue.add("parent", {"n": n}) for n in range(1, 301)]
        _, status = await asyncio.to_thread(os.waitpid, pid, 0)
        assert [job.data["n"] for job in jobs] == list(range(1, 301))
        assert os.waitstatus_to_exitcode(status) == 0
        assert (await queue.counts())["waiting"] == 601


def test_one_queue_serves_successive_loops_and_threads(redis_url: str, key_prefix: str) -> None:
    queue = Queue("q", url=redis_url, prefix=key_prefix)

    async def add(n: int) -> int:
        return int((await queue.add("x", {"n": n})).data["n"])

    assert asyncio.run(add(1)) == 1
    assert asyncio.run(add(2)) == 2  # the first loop's socket is closed: a new one
    found: list[int] = []
    thread = threading.Thread(target=lambda: found.append(asyncio.run(add(3))))
    thread.start()
    thread.join()
    assert found == [3]

    async def close() -> dict[str, int]:
        counts = await queue.counts()
        await queue.close()
        return counts

    assert asyncio.run(close())["waiting"] == 3


async def test_an_unreachable_server_is_a_connection_error_naming_it(key_prefix: str) -> None:
    from tests.support.redis_server import find_free_port

    port = find_free_port()
    url = f"redis://127.0.0.1:{port}/0"
    async with Queue("q", url=url, prefix=key_prefix, socket_timeout_seconds=1) as queue:
        with pytest.raises(ConnectionError, match=f"cannot connect to 127.0.0.1:{port}"):
            await queue.add("x")


async def test_password_and_database_from_the_url(
    make_redis: Callable[..., RedisServer], key_prefix: str
) -> None:
    server = make_redis()
    server.command("CONFIG", "SET", "requirepass", "s3cret")
    url = f"redis://:s3cret@127.0.0.1:{server.port}/3"
    async with Queue("q", url=url, prefix=key_prefix) as queue:
        job = await queue.add("x")
        assert (await queue.get_job(job.id)) is not None
    with redis.Redis(port=server.port, password="s3cret", db=3) as client:
        assert client.exists(f"{key_prefix}:{{q}}:job:{job.id}") == 1
    bad = f"redis://:wrong@127.0.0.1:{server.port}/0"
    async with Queue("q", url=bad, prefix=key_prefix) as queue:
        with pytest.raises(ConnectionError, match="refused the login"):
            await queue.add("x")


async def test_unix_socket(
    make_redis: Callable[..., RedisServer], key_prefix: str, tmp_path: Path
) -> None:
    path = tmp_path / "redis.sock"
    make_redis(extra_config={"unixsocket": str(path), "unixsocketperm": "700"})
    async with Queue("q", url=f"unix://{path}?db=0", prefix=key_prefix) as queue:
        job = await queue.add("x", {"via": "unix"})
        assert queue.redis.direct is not None and queue.redis.direct.endpoint.path == str(path)
        assert (await queue.get_job(job.id)).data == {"via": "unix"}  # type: ignore[union-attr]


async def test_error_replies_map_onto_the_exception_tree(redis_url: str) -> None:
    client = resp.DirectClient(redis_url, 2.0, 2.0)
    try:
        replies = await client.execute(
            resp.pack(("EVAL", "return redis.error_reply('ERR boom')", 0))
            + resp.pack(("EVAL", "return 7", 0)),
            2,
        )
        assert replies[1] == 7
        error = resp.reply_error(str(replies[0]))
        assert isinstance(error, CommandRefused) and "boom" in str(error)
        assert isinstance(resp.reply_error("LOADING Redis is loading"), ConnectionError)
    finally:
        client.close()


@contextlib.asynccontextmanager
async def _through_proxy(
    make_redis: Callable[[], RedisServer],
) -> AsyncIterator[tuple[TcpProxy, resp.DirectClient]]:
    """A direct connection to a private Redis through a proxy that can cut it."""
    server = make_redis()
    with TcpProxy(server.port) as proxy:
        client = resp.DirectClient(proxy.url, 2.0, 30.0)
        try:
            yield proxy, client
        finally:
            client.close()


async def _swallowed(proxy: TcpProxy, client: resp.DirectClient, *command: str) -> Any:
    """Send ``command`` into a cut link, then heal it: the request is lost for good."""
    proxy.drop()
    lost = asyncio.ensure_future(client.execute(resp.pack(command), 1))
    await asyncio.sleep(0.3)
    proxy.heal()
    return lost


async def test_a_login_left_hanging_by_an_outage_is_broken_off_too(
    make_redis: Callable[[], RedisServer],
) -> None:
    # A reconnect tried while the link is down sends its login into the outage; once the link
    # is back that login is never answered either, and must not sit out the read timeout.
    async with _through_proxy(make_redis) as (proxy, client):
        hanging = await _swallowed(proxy, client, "PING")  # connected, the login swallowed
        started = time.monotonic()
        assert client.reset_if_stuck(since=asyncio.get_running_loop().time())
        with pytest.raises(ConnectionError, match="lost while the link to Redis was down"):
            await hanging
        assert time.monotonic() - started < 1
        assert await client.execute(resp.pack(("PING",)), 1) == ["PONG"]  # reconnects


async def test_requests_held_back_while_a_swallowed_one_is_broken_off_get_their_own_replies(
    make_redis: Callable[[], RedisServer],
) -> None:
    # Replies are matched in order: a request written behind one the outage swallowed would
    # take nothing of its own and give its reply to that one. Held back, it goes out after.
    async with _through_proxy(make_redis) as (proxy, client):
        assert await client.execute(resp.pack(("PING", "first")), 1) == ["first"]
        swallowed = await _swallowed(proxy, client, "PING", "lost")
        since = asyncio.get_running_loop().time()
        client.hold()
        later = asyncio.ensure_future(client.execute(resp.pack(("PING", "later")), 1))
        await asyncio.sleep(0.3)
        assert not later.done()  # held: not written behind the swallowed request
        assert client.reset_if_stuck(since)
        client.release()
        with pytest.raises(ConnectionError, match="lost while the link to Redis was down"):
            await swallowed
        assert await later == ["later"]


async def test_a_request_left_hanging_before_a_given_time_is_broken_off(
    redis_url: str, key_prefix: str
) -> None:
    # What a worker does once its link to Redis is back: a request sent before then that got
    # no reply since (here a long BLPOP stands in for one the outage swallowed) fails at once.
    client = resp.DirectClient(redis_url, 2.0, 30.0, "conveyor:w-wait:test")
    loop = asyncio.get_running_loop()
    try:
        await client.execute(resp.pack(("PING",)), 1)  # connected
        sent_at = loop.time()
        hanging = asyncio.ensure_future(
            client.execute(resp.pack(("BLPOP", f"{key_prefix}:nothing", 20)), 1)
        )
        await asyncio.sleep(0.2)
        assert not client.reset_if_stuck(since=sent_at - 1)  # sent after: still fair
        assert not hanging.done()
        started = time.monotonic()
        assert client.reset_if_stuck(since=loop.time())
        with pytest.raises(ConnectionError, match="lost while the link to Redis was down"):
            await hanging
        assert time.monotonic() - started < 1
        assert await client.execute(resp.pack(("PING",)), 1) == ["PONG"]  # reconnects
        with redis.Redis.from_url(redis_url, decode_responses=True) as server:
            names = [c["name"] for c in server.client_list()]
        assert "conveyor:w-wait:test" in names  # named, as asked
        assert not client.reset_if_stuck(since=loop.time())  # nothing pending
    finally:
        client.close()
