"""A lone add once its queue is registered goes out without an Op (``sends_alone``): every
reply but "added" still takes the general path, for ``Queue`` and ``SyncQueue`` alike."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from tests.support.redis_server import RedisServer

from conveyor import Queue, SyncQueue
from conveyor.errors import NotReplicated, OutOfMemory
from conveyor.flow_control import GroupFull
from conveyor.options import default_spec

MakeRedis = Callable[..., RedisServer]


class Both:
    """One queue as ``Queue`` and as ``SyncQueue``: ``call`` runs a method on the flavour under
    test (awaited for ``Queue``)."""

    def __init__(self, flavour: str, url: str, prefix: str, **overrides: Any) -> None:
        self.flavour = flavour
        self.async_queue = Queue("lone", url=url, prefix=prefix, **overrides)
        self.sync_queue = SyncQueue("lone", url=url, prefix=prefix, **overrides)

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if self.flavour == "sync":
            return getattr(self.sync_queue, method)(*args, **kwargs)
        return await getattr(self.async_queue, method)(*args, **kwargs)

    async def close(self) -> None:
        await self.async_queue.close()
        self.sync_queue.close()


@pytest.fixture(params=["async", "sync"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(make_redis: MakeRedis) -> RedisServer:
    return make_redis(maxmemory_policy="noeviction")


@pytest.fixture
def admin(server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(server.url)
    yield client
    client.close()


async def _registered(flavour: str, server: RedisServer, prefix: str) -> Both:
    queue = Both(flavour, server.url, prefix)
    await queue.call("add", "first")  # registers the queue: later lone adds take the lane
    return queue


async def test_an_added_job_comes_back_as_the_worker_will_see_it(
    flavour: str, server: RedisServer, key_prefix: str
) -> None:
    queue = await _registered(flavour, server, key_prefix)
    core = queue.sync_queue if flavour == "sync" else queue.async_queue
    assert core.sends_alone(default_spec(core.settings, "send"))  # the lane these tests take
    job = await queue.call("add", "send", {"to": "ada", "tags": ("a", "b")})
    assert (job.name, job.data, job.state, job.queue) == (
        "send",
        {"to": "ada", "tags": ["a", "b"]},
        "waiting",
        "lone",
    )
    stored = await queue.call("get_job", job.id)
    assert stored is not None and stored.data == job.data
    await queue.close()


async def test_an_id_that_exists_returns_the_stored_job_and_adds_nothing(
    flavour: str, server: RedisServer, key_prefix: str
) -> None:
    queue = await _registered(flavour, server, key_prefix)
    first = await queue.call("add", "send", {"n": 1}, job_id="order-7")
    again = await queue.call("add", "send", {"n": 2}, job_id="order-7")
    assert again.id == first.id and again.data == {"n": 1}
    assert (await queue.call("counts"))["waiting"] == 2
    await queue.close()


async def test_scripts_the_server_forgot_are_sent_again_once(
    flavour: str, server: RedisServer, admin: redis.Redis, key_prefix: str
) -> None:
    queue = await _registered(flavour, server, key_prefix)
    admin.script_flush()  # what a restart or a failover does
    admin.config_resetstat()
    job = await queue.call("add", "after")
    stats = admin.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 1  # answered NOSCRIPT
    assert stats["cmdstat_eval"]["calls"] == 1
    assert await queue.call("get_job", job.id) is not None
    assert (await queue.call("counts"))["waiting"] == 2
    await queue.close()


async def test_a_full_redis_refuses_a_lone_add_clearly(
    flavour: str, server: RedisServer, admin: redis.Redis, key_prefix: str
) -> None:
    queue = await _registered(flavour, server, key_prefix)
    used = int(admin.info("memory")["used_memory"])
    admin.config_set("maxmemory", str(used))
    with pytest.raises(OutOfMemory, match="maxmemory"):
        await queue.call("add", "refused", {"pad": "x" * 1000})
    admin.config_set("maxmemory", "0")
    assert (await queue.call("counts"))["waiting"] == 1
    await queue.close()


async def test_a_full_group_refuses_a_lone_add_and_names_the_group(
    flavour: str, server: RedisServer, key_prefix: str
) -> None:
    queue = await _registered(flavour, server, key_prefix)
    await queue.async_queue.set_group("small", max_size=1)
    await queue.call("add", "t", group="small")
    with pytest.raises(GroupFull, match="small"):
        await queue.call("add", "t", group="small")
    assert (await queue.call("counts"))["waiting"] == 2
    await queue.close()


async def test_adds_that_wait_for_replicas_still_do(
    flavour: str, server: RedisServer, key_prefix: str
) -> None:
    queue = Both(
        flavour, server.url, key_prefix, wait_replicas=1, wait_replicas_timeout_seconds=0.05
    )
    for _ in range(2):  # the first registers the queue; no replica confirms either
        with pytest.raises(NotReplicated, match="only 0 of 1 replicas"):
            await queue.call("add", "unconfirmed")
    await queue.close()
