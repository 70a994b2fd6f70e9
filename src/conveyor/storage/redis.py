"""The one door to Redis for the rest of Conveyor: executes ``Op``s, async or blocking.

Commands of one Op go out in one round trip (a non-transactional pipeline when there are
several). Script calls to a plain ``redis://``/``unix://`` server take a lean direct
connection (``storage.resp`` on asyncio, ``storage.blocking_resp`` for blocking callers);
everything else goes through redis-py. Scripts are called by SHA; a server that does not know
one (restarted, flushed, failed over) gets the source once and the call is repeated, so script
loading costs nothing on the hot path. Redis errors are mapped onto Conveyor's exception tree
here and in the direct connections, nowhere else."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable, Generator, Iterator, Sequence
from typing import Any, TypeVar

import hiredis
import redis as sync_redis
import redis.asyncio as async_redis
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.cluster
import redis.sentinel
from redis import exceptions as rex

from .. import errors
from ..settings import Settings
from . import resp
from .blocking_resp import BlockingDirectClient
from .commands import Command, Op, ScriptCommand
from .urls import parse_url

__all__ = ["MAX_BLOCK_SECONDS", "AsyncRedis", "SyncRedis"]

#: The longest a blocking read (XREAD BLOCK for events and waits) blocks in one call.
MAX_BLOCK_SECONDS = 10.0

T = TypeVar("T")

#: Whether this redis-py's asyncio client has maintenance notifications to switch off: releases
#: before 7 have none, and 7.0 has them on its blocking client only.
_ASYNC_MAINT_NOTIFICATIONS = (
    "maint_notifications_config" in inspect.signature(async_redis.Redis.__init__).parameters
)


def _being_cancelled() -> bool:
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop: the blocking client
        return False
    return task is not None and task.cancelling() > 0


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    try:
        yield
    except rex.NoScriptError:
        raise
    except rex.RedisClusterException as exc:
        # Refused by the Cluster client itself (e.g. a keyless command it cannot route, such
        # as CONFIG GET save): this made the worker's start-up check crash on a Cluster.
        raise errors.CommandRefused(f"the Redis Cluster client refused the command: {exc}") from exc
    except rex.RedisError as exc:
        # redis-py may turn a cancellation that lands mid-command into a ConnectionError; a
        # cancelled task must see CancelledError, or its loop would carry on as if Redis failed.
        if _being_cancelled():
            raise asyncio.CancelledError() from exc
        raise _mapped(exc) from exc
    except (OSError, AttributeError) as exc:
        # A socket error redis-py did not wrap, or its asyncio connection racing a disconnect
        # ("'NoneType' object has no attribute 'writelines'", seen on Cluster clients under
        # load): the connection is unusable, which callers handle as an outage.
        raise errors.ConnectionError(f"Redis connection failed: {exc!r}") from exc


def _mapped(exc: rex.RedisError) -> errors.ConveyorError:
    if isinstance(exc, rex.ConnectionError | rex.TimeoutError):
        return errors.ConnectionError(f"Redis is unreachable: {exc}")
    # redis-py strips the "OOM" code off the message and raises its own OutOfMemoryError.
    if isinstance(exc, rex.OutOfMemoryError) or (
        isinstance(exc, rex.ResponseError) and str(exc).startswith("OOM")
    ):
        return errors.OutOfMemory(
            f"Redis refused the write because it is out of memory (maxmemory): {exc}"
        )
    if isinstance(exc, rex.ResponseError):
        return errors.CommandRefused(f"Redis refused the command: {exc}")
    return errors.ConnectionError(f"Redis error: {exc}")


def _args(command: Command) -> tuple[Any, ...]:
    return command.evalsha() if isinstance(command, ScriptCommand) else command


def _client_options(settings: Settings, blocking: bool) -> dict[str, Any]:
    return {
        "decode_responses": True,
        # Bytes that are not UTF-8 (garbage written into a job by something else) must not
        # break a whole fetch: they decode as U+FFFD and the job fails its JSON check instead.
        "encoding_errors": "replace",
        "socket_connect_timeout": settings.socket_timeout_seconds,
        # A blocking client waits in BZPOPMIN/XREAD; its socket must outlast the longest block
        # (idle_wake_seconds, or MAX_BLOCK_SECONDS), but not wait forever on a dead link.
        "socket_timeout": (
            max(settings.idle_wake_seconds, MAX_BLOCK_SECONDS) + settings.socket_timeout_seconds
            if blocking
            else settings.socket_timeout_seconds
        ),
        "health_check_interval": 30,
    }


def _is_noscript(reply: Any) -> bool:
    return isinstance(reply, rex.NoScriptError) or resp.is_noscript(reply)


def _missing_scripts(commands: Sequence[Command], replies: list[Any]) -> list[int]:
    """Which commands of a pipeline to send again after the server did not know a script.

    The scripts answered with NOSCRIPT did nothing, so they go again (with their source); so
    do the plain commands after the first of them, which ran before those scripts did (a WAIT
    after an add must count replicas after the add). Scripts that ran are not repeated."""
    failed = [i for i, reply in enumerate(replies) if _is_noscript(reply)]
    if not failed:
        return []
    return [
        i
        for i in range(failed[0], len(commands))
        if i in failed or not isinstance(commands[i], ScriptCommand)
    ]


def _has_error(replies: list[Any]) -> bool:
    # A plain loop: cheaper than any() over a generator for the one reply of most calls.
    for reply in replies:  # noqa: SIM110
        if isinstance(reply, Exception):  # hiredis.ReplyError from the direct connection too
            return True
    return False


def _recovery(
    commands: Sequence[Command], replies: list[Any]
) -> Generator[list[int], list[Any], list[Any]]:
    """What follows a pipeline that came back with an error reply, without the I/O (the same for
    every transport): yields the indexes of the commands to send again with their scripts'
    source, receives their replies, then raises the first error or returns all replies.

    Redis forgets scripts on a restart, a failover or SCRIPT FLUSH: their sources go in ONE
    more round trip. Retrying them one by one cost two round trips per script, which under
    500 ms of latency made the first housekeeping after a Redis restart outlast a lease."""
    missing = _missing_scripts(commands, replies)
    if missing:
        resent = yield missing
        for i, reply in zip(missing, resent, strict=True):
            replies[i] = reply
    _raise_first_error(replies)
    return replies


def _payload(commands: Sequence[Command], resend: list[int] | None) -> tuple[bytes, int]:
    """RESP for the direct connection, and how many commands it holds: every command, or
    those of ``resend`` with their scripts' source."""
    if resend is None:
        if len(commands) == 1:  # most calls: no join
            return _packed(commands[0]), 1
        return b"".join(map(_packed, commands)), len(commands)
    return b"".join(_packed(commands[i], with_source=True) for i in resend), len(resend)


def _fill(pipe: Any, commands: Sequence[Command], resend: list[int] | None) -> None:
    """The same for a redis-py pipeline."""
    if resend is None:
        for command in commands:
            pipe.execute_command(*_args(command))
    else:
        for i in resend:
            pipe.execute_command(*_eval_args(commands[i]))


def _eval_args(command: Command) -> tuple[Any, ...]:
    return command.eval() if isinstance(command, ScriptCommand) else command


def _raise_first_error(replies: list[Any]) -> None:
    for reply in replies:
        if isinstance(reply, hiredis.ReplyError):  # from the direct connection
            raise resp.reply_error(str(reply))
        if isinstance(reply, Exception):
            with _mapped_errors():
                raise reply


#: Commands whose raw reply is what callers expect (redis-py would not reshape it), so they
#: may take the direct connection; script calls always may. SADD registers a queue on its
#: first add, which may be hundreds of concurrent adds; BZPOPMIN is a worker's idle wait.
_DIRECT_COMMANDS = frozenset({"WAIT", "SADD", "BZPOPMIN"})


def _direct_ok(command: Command) -> bool:
    return isinstance(command, ScriptCommand) or command[0] in _DIRECT_COMMANDS


def _packed(command: Command, *, with_source: bool = False) -> bytes:
    if not isinstance(command, ScriptCommand):
        return resp.pack(command)
    if with_source:
        return resp.pack(command.eval())
    return resp.pack_evalsha(command.head, len(command.keys), command.args)


def _direct_url(settings: Settings) -> bool:
    """Whether the lean direct connections serve this URL: a plain server, TCP or unix socket.
    TLS stays on redis-py (certificate options are redis-py's), as do Sentinel and Cluster."""
    return settings.url.startswith(("redis://", "unix://"))


def _direct_client(
    settings: Settings, blocking: bool, single_caller: bool, client_name: str | None
) -> resp.DirectClient | None:
    # Blocking reads shared by many callers stay on redis-py: on one socket a blocked XREAD
    # would hold up every call queued behind it. A blocking client with a single caller (a
    # worker's idle wait) has no such problem.
    if (blocking and not single_caller) or not _direct_url(settings):
        return None
    timeout = settings.socket_timeout_seconds
    if blocking:  # the socket must outlast the longest block, as redis-py's does
        timeout += max(settings.idle_wake_seconds, MAX_BLOCK_SECONDS)
    return resp.DirectClient(settings.url, settings.socket_timeout_seconds, timeout, client_name)


def _blocking_direct_client(
    settings: Settings, client_name: str | None
) -> BlockingDirectClient | None:
    if not _direct_url(settings):
        return None
    timeout = settings.socket_timeout_seconds
    return BlockingDirectClient(settings.url, timeout, timeout, client_name)


def _make_client(
    settings: Settings, blocking: bool, lib: Any, client_name: str | None = None
) -> Any:
    """A client for the URL's target; ``lib`` is redis-py's blocking or asyncio flavour;
    ``client_name`` names its connections (CLIENT SETNAME; on a Cluster, those to every node)."""
    target = parse_url(settings.url)
    options: dict[str, Any] = _client_options(settings, blocking)
    if client_name:
        options["client_name"] = client_name
    if _ASYNC_MAINT_NOTIFICATIONS and lib is async_redis and target.kind != "cluster":
        # redis-py 8's asyncio pool skips its check for connections the server closed while
        # maintenance notifications are on "auto" (the default, and useless on RESP2): after
        # every Redis restart or failover each pooled connection then failed one command with
        # "Connection closed by server". Switched off, a dead connection is replaced unseen.
        from redis.maint_notifications import MaintNotificationsConfig

        options["maint_notifications_config"] = MaintNotificationsConfig(enabled=False)
    if target.kind == "standalone":
        return lib.Redis.from_url(settings.url, **options)
    options.update(username=target.username, password=target.password, ssl=target.ssl)
    if target.kind == "cluster":
        options.pop("health_check_interval")
        if blocking:
            # redis-py's asyncio Cluster connections race a disconnect while connecting when a
            # read timeout is set (AttributeError on a dropped writer, seen under load); blocking
            # Cluster reads go without one, as redis-py's own blocking commands do.
            options["socket_timeout"] = None
        nodes = [lib.cluster.ClusterNode(host, port) for host, port in target.hosts]
        return lib.cluster.RedisCluster(startup_nodes=nodes, **options)
    sentinel_options = {"password": target.sentinel_password, **_sentinel_options(settings)}
    sentinel = lib.sentinel.Sentinel(
        list(target.hosts), sentinel_kwargs=sentinel_options, db=target.db, **options
    )
    return sentinel.master_for(target.master_name or "")


def _sentinel_options(settings: Settings) -> dict[str, Any]:
    return {
        "socket_connect_timeout": settings.socket_timeout_seconds,
        "socket_timeout": settings.socket_timeout_seconds,
        "decode_responses": True,
    }


class AsyncRedis:
    """Executes Ops on asyncio: script calls over the direct connection where one applies
    (``storage.resp``), the rest on a redis-py client (one server, Sentinel's master or a
    Cluster)."""

    def __init__(
        self,
        settings: Settings,
        *,
        blocking: bool = False,
        single_caller: bool = False,
        client_name: str | None = None,
    ) -> None:
        """``blocking``: for blocking reads (a longer socket timeout). ``single_caller``: one
        task uses this client, one command at a time (a worker's idle wait). ``client_name``:
        every connection of this client says so (CLIENT SETNAME)."""
        self.settings = settings
        self.client: Any = _make_client(settings, blocking, async_redis, client_name)
        self.is_cluster = isinstance(self.client, async_redis.cluster.RedisCluster)
        self.direct = _direct_client(settings, blocking, single_caller, client_name)

    @property
    def keeps_order(self) -> bool:
        """Whether concurrent script calls reach Redis in the order they were made (they share
        the direct connection), so a caller may pipeline dependent calls as separate tasks."""
        return self.direct is not None

    async def run(self, op: Op[T], replied: Callable[[], bool] | None = None) -> T:
        """``op``'s value. ``replied``: called once the replies are in, before they are parsed;
        when it says it started tasks, they run before the parsing does (the add coalescer
        sends its next call then, so that Redis runs it while this client parses)."""
        replies = await self._execute(op.commands)
        if replied is not None and replied():
            await asyncio.sleep(0)
        value = op.parse(replies)
        while isinstance(value, Op):
            value = value.parse(await self._execute(value.commands))
        return value

    async def run_many(self, ops: Sequence[Op[Any]]) -> list[Any]:
        """Several Ops in one round trip; their values in order."""
        replies = await self._execute([c for op in ops for c in op.commands])
        values, offset = [], 0
        for op in ops:
            value = op.parse(replies[offset : offset + len(op.commands)])
            offset += len(op.commands)
            while isinstance(value, Op):
                value = value.parse(await self._execute(value.commands))
            values.append(value)
        return values

    async def _execute(self, commands: Sequence[Command]) -> list[Any]:
        if not commands:
            return []
        send: Callable[[Sequence[Command], list[int] | None], Awaitable[list[Any]]]
        direct = self.direct
        if direct is not None and all(map(_direct_ok, commands)):
            send = self._send_direct
            replies = await direct.execute(*_payload(commands, None))  # (the hot path, inline)
        elif len(commands) == 1:
            return [await self._one(commands[0])]
        else:
            send = self._send_pipeline
            replies = await send(commands, None)
        if not _has_error(replies):
            return replies  # nothing to resend or raise (nearly every call)
        return await self._recovered(commands, replies, send)

    async def _recovered(
        self,
        commands: Sequence[Command],
        replies: list[Any],
        send: Callable[[Sequence[Command], list[int] | None], Awaitable[list[Any]]],
    ) -> list[Any]:
        recovery = _recovery(commands, replies)
        try:
            resend = next(recovery)
            while True:
                resend = recovery.send(await send(commands, resend))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def settle(self, op: Op[T], replies: list[Any]) -> T:
        """``op``'s value from the replies to its commands, which the caller sent over
        ``direct`` itself (a lone add does): an error is recovered from or raised as in
        ``run``."""
        if _has_error(replies):
            replies = await self._recovered(op.commands, replies, self._send_direct)
        value = op.parse(replies)
        while isinstance(value, Op):
            value = value.parse(await self._execute(value.commands))
        return value

    def _send_direct(
        self, commands: Sequence[Command], resend: list[int] | None
    ) -> Awaitable[list[Any]]:
        # Not a coroutine: the direct connection's awaitable is awaited by the caller as is.
        assert self.direct is not None
        return self.direct.execute(*_payload(commands, resend))

    async def _send_pipeline(
        self, commands: Sequence[Command], resend: list[int] | None
    ) -> list[Any]:
        with _mapped_errors():
            pipe = self.client.pipeline(transaction=False)
            _fill(pipe, commands, resend)
            return await pipe.execute(raise_on_error=False)  # type: ignore[no-any-return]

    async def _one(self, command: Command) -> Any:
        with _mapped_errors():
            try:
                return await self.client.execute_command(*_args(command))
            except rex.NoScriptError:
                assert isinstance(command, ScriptCommand)
                return await self.client.execute_command(*command.eval())

    async def command(self, *args: Any) -> Any:
        """One plain command (server checks, admin reads that have no Op)."""
        with _mapped_errors():
            return await self.client.execute_command(*args)

    async def close(self) -> None:
        if self.direct is not None:
            self.direct.close()
        await self.client.aclose()


class SyncRedis:
    """Executes Ops from blocking code (SyncQueue in Flask, Django, scripts and threads): over
    the blocking direct connection (``storage.blocking_resp``) where the asyncio client would
    take the direct one, else on a blocking redis-py client."""

    def __init__(self, settings: Settings, *, client_name: str | None = None) -> None:
        """``client_name``: every connection of this client says so (CLIENT SETNAME), so
        CLIENT LIST shows whose it is."""
        self.settings = settings
        target = parse_url(settings.url)
        self.is_cluster = target.kind == "cluster"
        self.client: Any = _make_client(settings, False, sync_redis, client_name)
        self.direct = _blocking_direct_client(settings, client_name)

    def run(self, op: Op[T]) -> T:
        value = op.parse(self._execute(op.commands))
        while isinstance(value, Op):
            value = value.parse(self._execute(value.commands))
        return value

    def _execute(self, commands: Sequence[Command]) -> list[Any]:
        # The same course as AsyncRedis._execute, without the awaits.
        if not commands:
            return []
        if self.direct is not None and all(map(_direct_ok, commands)):
            send = self._send_direct
        elif len(commands) == 1:
            return [self._one(commands[0])]
        else:
            send = self._send_pipeline
        replies = send(commands, None)
        if not _has_error(replies):
            return replies
        return self._recovered(commands, replies, send)

    def _recovered(
        self,
        commands: Sequence[Command],
        replies: list[Any],
        send: Callable[[Sequence[Command], list[int] | None], list[Any]],
    ) -> list[Any]:
        recovery = _recovery(commands, replies)
        try:
            resend = next(recovery)
            while True:
                resend = recovery.send(send(commands, resend))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def settle(self, op: Op[T], replies: list[Any]) -> T:
        """As ``AsyncRedis.settle``: ``op``'s value from replies sent over ``direct``."""
        if _has_error(replies):
            replies = self._recovered(op.commands, replies, self._send_direct)
        value = op.parse(replies)
        while isinstance(value, Op):
            value = value.parse(self._execute(value.commands))
        return value

    def _send_direct(self, commands: Sequence[Command], resend: list[int] | None) -> list[Any]:
        assert self.direct is not None
        return self.direct.execute(*_payload(commands, resend))

    def _send_pipeline(self, commands: Sequence[Command], resend: list[int] | None) -> list[Any]:
        with _mapped_errors():
            pipe = self.client.pipeline(transaction=False)
            _fill(pipe, commands, resend)
            return pipe.execute(raise_on_error=False)  # type: ignore[no-any-return]

    def _one(self, command: Command) -> Any:
        with _mapped_errors():
            try:
                return self.client.execute_command(*_args(command))
            except rex.NoScriptError:
                assert isinstance(command, ScriptCommand)
                return self.client.execute_command(*command.eval())

    def command(self, *args: Any) -> Any:
        with _mapped_errors():
            return self.client.execute_command(*args)

    def node_of(self, key: str) -> Any:
        """The server that holds ``key``, for ``run_on``: on a Cluster the node that serves its
        slot now; None for a single server (or Sentinel's master)."""
        if not self.is_cluster:
            return None
        with _mapped_errors():
            return self.client.get_node_from_key(key)

    def run_on(self, node: Any, op: Op[T]) -> T:
        """``op`` on one server (``node_of``): for commands that answer for the server they
        reach, such as CLIENT LIST, which a Cluster client would send to any node."""
        if node is None:
            return self.run(op)
        with _mapped_errors():
            replies = [
                self.client.execute_command(*_args(command), target_nodes=node)
                for command in op.commands
            ]
        value = op.parse(replies)
        return self.run_on(node, value) if isinstance(value, Op) else value

    def close(self) -> None:
        if self.direct is not None:
            self.direct.close()
        self.client.close()
