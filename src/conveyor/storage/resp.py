"""A lean, pipelined RESP2 connection to one Redis server, for the asyncio hot path.

Why it exists: every state change is one EVALSHA, and on asyncio redis-py spends more time
around such a call than Redis spends running the script (a pool checkout, a timeout context
per read, a stream-reader wake-up); measured here, an awaited ``add`` took about twice as long
through redis-py as through a bare socket. This connection writes each request straight to one
socket and hands replies back in order (Redis answers in order), so concurrent callers share
the socket as an automatic pipeline and a call costs one write and one future.

``storage.redis`` sends through it only what needs no reply post-processing (script calls and
WAIT) on a plain ``redis://`` or ``unix://`` server; everything else, TLS, Sentinel and Cluster
go through redis-py.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import threading
from collections.abc import Awaitable, Sequence
from typing import Any, cast

import hiredis
from redis.asyncio.connection import parse_url as redis_parse_url

from .. import errors

__all__ = [
    "DirectClient",
    "Endpoint",
    "evalsha_head",
    "forks",
    "is_noscript",
    "pack",
    "pack_evalsha",
    "reply_error",
]

#: Server error codes that mean "this connection cannot serve commands now" (an outage to ride
#: out), not "this command is wrong".
_OUTAGE_CODES = frozenset({"LOADING", "NOAUTH", "WRONGPASS", "MASTERDOWN", "TRYAGAIN"})

#: How many times this process is a fork's child (one more in each child): a connection opened
#: before a fork is the parent's. Counted by a fork hook so that a call need not ask the kernel
#: (os.getpid() is a system call, as is asyncio.get_running_loop() before Python 3.12).
_forks = [0]


def _count_fork() -> None:
    _forks[0] += 1


def forks() -> int:
    """How many forks this process is from the first one (0 there): a connection opened when
    it was different belongs to another process."""
    return _forks[0]


os.register_at_fork(after_in_child=_count_fork)
_thread_id = threading.get_ident


def _encode(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int) and not isinstance(value, bool):
        return b"%d" % value
    if isinstance(value, float):
        return repr(value).encode()
    raise TypeError(f"cannot send {type(value).__name__} {value!r} to Redis")


def _pack(args: tuple[Any, ...]) -> bytes:
    """``*<n>`` then each argument as a bulk string. hiredis packs in C (about a third of the
    cost of packing here, on every call) what it takes: str, bytes, int and float, the last
    as ``repr`` writes it, as ``_encode`` does; anything else (an IntEnum, say) is packed
    by ``_encode``'s rules, which refuse what Redis cannot be sent."""
    try:
        packed: bytes = hiredis.pack_command(args)
        return packed
    except TypeError:
        parts = [b"*%d\r\n" % len(args)]
        for value in args:
            data = _encode(value)
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        return b"".join(parts)


def _without_count(packed: bytes) -> bytes:
    """The bulk strings of ``_pack``'s output, without its leading ``*<n>`` line."""
    return packed[packed.index(b"\n") + 1 :]


def pack(args: Sequence[Any]) -> bytes:
    """One command in RESP: ``*<n>`` then each argument as a bulk string."""
    return _pack(args if type(args) is tuple else tuple(args))


def evalsha_head(sha: str, keys: Sequence[bytes]) -> bytes:
    """The start of an EVALSHA call, for ``pack_evalsha``: a queue sends the same script with
    the same dozen keys every time, so it encodes this once."""
    return _without_count(_pack(("EVALSHA", sha, len(keys), *keys)))


def pack_evalsha(head: bytes, keys: int, args: tuple[Any, ...]) -> bytes:
    """An EVALSHA call: ``head`` from ``evalsha_head`` (for ``keys`` keys), then ``args``."""
    body = _pack(args)
    return b"*%d\r\n%b%b" % (3 + keys + len(args), head, body[body.index(b"\n") + 1 :])


def is_noscript(reply: Any) -> bool:
    return isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT")


def reply_error(message: str) -> errors.ConveyorError:
    """The Conveyor exception for an error reply (the same mapping redis-py's errors get)."""
    code, _, rest = message.partition(" ")
    if code == "OOM":
        return errors.OutOfMemory(
            f"Redis refused the write because it is out of memory (maxmemory): {rest}"
        )
    if code in _OUTAGE_CODES:
        return errors.ConnectionError(f"Redis cannot serve commands now: {message}")
    return errors.CommandRefused(f"Redis refused the command: {rest if code == 'ERR' else message}")


class _Call:
    __slots__ = ("expected", "future", "replies", "sent")

    def __init__(self, future: asyncio.Future[list[Any]], expected: int, sent: float) -> None:
        self.future = future
        self.expected = expected
        self.replies: list[Any] = []
        #: When the request went out (the loop's clock).
        self.sent = sent


class _Socket(asyncio.Protocol):
    """One connection. Requests go out as written; replies fill the oldest call first."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout
        self.reader = hiredis.Reader(encoding="utf-8", errors="replace")
        self.pending: collections.deque[_Call] = collections.deque()
        self.transport: asyncio.Transport | None = None
        #: Set once the connection is unusable; every later call raises it.
        self.broken: errors.ConnectionError | None = None
        self.last_progress = 0.0
        self.watchdog: asyncio.TimerHandle | None = None
        self.client_id: int | None = None
        #: Whose connection this is: the process (as a fork count) and the thread of ``loop``.
        self.forks = _forks[0]
        self.thread = threading.get_ident()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        self.last_progress = self.loop.time()
        pending = self.pending
        try:
            while (reply := self.reader.gets()) is not False:
                call = pending[0]
                call.replies.append(reply)
                if len(call.replies) == call.expected:
                    pending.popleft()
                    if not call.future.done():  # its caller may have been cancelled
                        call.future.set_result(call.replies)
        except (hiredis.ProtocolError, IndexError) as exc:
            # Bytes that are not RESP, or a reply nobody asked for: nothing after this point can
            # be matched to its caller any more.
            self._break(f"Redis is unreachable: it sent a reply that cannot be read ({exc!r})")

    def connection_lost(self, exc: Exception | None) -> None:
        if self.broken is None:
            reason = f"connection lost ({exc!r})" if exc else "the server closed the connection"
            reason = f"Redis is unreachable: {reason}"
            self.broken = errors.ConnectionError(reason)
        if self.watchdog is not None:
            self.watchdog.cancel()
        while self.pending:
            future = self.pending.popleft().future
            if not future.done():
                future.set_exception(self.broken)

    def _break(self, reason: str) -> None:
        if self.broken is None:
            self.broken = errors.ConnectionError(reason)
        if self.transport is not None:
            self.transport.abort()  # connection_lost then fails every pending call

    def _check_progress(self) -> None:
        self.watchdog = None
        if not self.pending:
            return
        silent = self.loop.time() - self.last_progress
        if silent >= self.timeout:
            self._break(f"Redis is unreachable: no reply within {self.timeout:g} s")
        else:
            self.watchdog = self.loop.call_later(self.timeout - silent, self._check_progress)

    def send(self, payload: bytes, expected: int) -> asyncio.Future[list[Any]]:
        if self.broken is not None:
            raise self.broken
        assert self.transport is not None
        future = self.loop.create_future()
        now = self.loop.time()
        if not self.pending:
            # The reply clock starts with the first outstanding request, not at connect time.
            self.last_progress = now
            if self.watchdog is None:
                self.watchdog = self.loop.call_later(self.timeout, self._check_progress)
        self.pending.append(_Call(future, expected, now))
        self.transport.write(payload)
        return future

    def close(self) -> None:
        if self.transport is not None:
            closed = errors.ConnectionError("this client closed its Redis connection")
            self.broken = self.broken or closed
            with contextlib.suppress(RuntimeError):  # its event loop may be closed already
                self.transport.close()


class Endpoint:
    """Where one server is and how a new connection logs in (from a ``redis://`` or
    ``unix://`` URL); shared by the asyncio and the blocking direct connection."""

    def __init__(self, url: str, client_name: str | None = None) -> None:
        """``client_name``: sent with CLIENT SETNAME on every new connection."""
        params: dict[str, Any] = dict(redis_parse_url(url))
        self.host: str = params.get("host", "localhost")
        self.port: int = int(params.get("port", 6379))
        self.path: str | None = params.get("path")
        #: AUTH and SELECT, sent first on every new connection.
        self.handshake: list[tuple[Any, ...]] = []
        if params.get("password") is not None:
            user, password = params.get("username"), params["password"]
            self.handshake.append(("AUTH", user, password) if user else ("AUTH", password))
        if int(params.get("db") or 0):
            self.handshake.append(("SELECT", int(params["db"])))
        if client_name:
            self.handshake.append(("CLIENT", "SETNAME", client_name))

    @property
    def where(self) -> str:
        return self.path or f"{self.host}:{self.port}"

    def unreachable(self, exc: BaseException) -> errors.ConnectionError:
        return errors.ConnectionError(
            f"Redis is unreachable: cannot connect to {self.where}: {exc!r}"
        )

    def check_handshake(self, replies: Sequence[Any]) -> None:
        """Raise if the server refused the login, the database or the name (``replies`` start
        with the handshake's)."""
        for reply in replies[: len(self.handshake)]:
            if isinstance(reply, hiredis.ReplyError):
                raise errors.ConnectionError(
                    f"Redis at {self.where} refused the login or database: {reply}"
                )


class DirectClient:
    """Sends raw RESP to one server over one shared connection, reconnecting when it breaks."""

    def __init__(
        self, url: str, connect_timeout: float, timeout: float, client_name: str | None = None
    ) -> None:
        self.endpoint = Endpoint(url, client_name)
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self._socket: _Socket | None = None
        self._connecting: asyncio.Future[_Socket] | None = None
        #: The new connection whose login is in flight (not yet ``_socket``).
        self._opening: _Socket | None = None
        #: Set while new requests are held back (``hold``); done when they may go.
        self._held: asyncio.Future[None] | None = None

    def execute(self, payload: bytes, expected: int) -> Awaitable[list[Any]]:
        """Send ``payload`` (``expected`` commands); the awaitable gives their replies, errors
        included as ``hiredis.ReplyError`` values. On a connection already open for the
        caller the request is written at once and the awaitable is its reply's future: no
        coroutine in between, the hot path of every call."""
        sock = self._socket
        # Whether the caller may use the open socket, without a system call: it is usable, of
        # this process, and its loop runs in the calling thread (a thread runs one loop at a
        # time, so that loop is the caller's).
        if (
            sock is not None
            and sock.broken is None
            and self._held is None
            and sock.forks == _forks[0]
            and sock.thread == _thread_id()
            and sock.loop.is_running()
        ):
            return sock.send(payload, expected)
        return self._connect_and_send(payload, expected)

    def hold(self) -> None:
        """Keep new requests back, unsent, until ``release``. Replies are matched to requests
        in order, so a request written behind one an outage swallowed would have its reply
        taken by that one; held back while ``reset_if_stuck`` decides, it goes out after."""
        if self._held is None:
            self._held = asyncio.get_running_loop().create_future()

    def release(self) -> None:
        held, self._held = self._held, None
        if held is not None and not held.done():
            held.set_result(None)

    async def _connect_and_send(self, payload: bytes, expected: int) -> list[Any]:
        while (held := self._held) is not None and held.get_loop() is asyncio.get_running_loop():
            await asyncio.shield(held)
        sock = self._socket
        if sock is not None and sock.broken is None:
            if sock.forks != _forks[0]:
                # The parent's: closing it here would take its descriptor out of the parent's
                # epoll set too (the child shares it), so the child just lets it go.
                self._socket = None
            elif sock.loop is not asyncio.get_running_loop():
                self._close_elsewhere(sock)
            else:  # this loop, run from another thread than before: still good
                sock.thread = threading.get_ident()
                return await sock.send(payload, expected)
        sock = await self._connect()
        return await sock.send(payload, expected)

    @staticmethod
    def _close_elsewhere(sock: _Socket) -> None:
        """Close a socket that belongs to another event loop (a client reused from a new
        loop, e.g. one per test): in that loop's thread, if it still runs."""
        with contextlib.suppress(RuntimeError):  # that loop is closed: nothing left to close
            sock.loop.call_soon_threadsafe(sock.close)

    async def _connect(self) -> _Socket:
        loop = asyncio.get_running_loop()
        # Concurrent callers share one connection attempt rather than opening one each.
        connecting = self._connecting
        if connecting is None or connecting.get_loop() is not loop:
            connecting = self._connecting = loop.create_future()
            try:
                connecting.set_result(await self._open(loop))
            except BaseException as exc:
                connecting.set_exception(exc)
                # Retrieved here so a failed attempt nobody else awaited is not reported.
                connecting.exception()
                raise
            finally:
                self._connecting = None
        sock = await asyncio.shield(connecting)
        self._socket = sock
        return sock

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Socket:
        def factory() -> _Socket:
            return _Socket(loop, self.timeout)

        endpoint = self.endpoint
        try:
            async with asyncio.timeout(self.connect_timeout):
                if endpoint.path:
                    _, sock = await loop.create_unix_connection(factory, endpoint.path)
                else:
                    _, sock = await loop.create_connection(factory, endpoint.host, endpoint.port)
        except (OSError, TimeoutError) as exc:
            raise endpoint.unreachable(exc) from exc
        # The login and database first, then the connection's id (for CLIENT UNBLOCK; a server
        # that refuses CLIENT to this user just leaves it unknown), in one round trip.
        commands = [*endpoint.handshake, ("CLIENT", "ID")]
        self._opening = sock
        try:
            replies = await sock.send(b"".join(map(pack, commands)), len(commands))
        finally:
            if self._opening is sock:
                self._opening = None
        try:
            endpoint.check_handshake(replies)
        except errors.ConnectionError:
            sock.close()
            raise
        sock.client_id = replies[-1] if isinstance(replies[-1], int) else None
        return sock

    def reset_if_stuck(self, since: float) -> bool:
        """Break the connection if a request sent before ``since`` (the loop's clock) is still
        unanswered: once a network outage is over, a request sent into it is never answered,
        and waiting out the read timeout would idle the caller that long. (Called a beat after
        the link came back: replies a stalled server still owed have come by then.) Every
        pending call then fails with ``ConnectionError``; the next reconnects. A new
        connection's login is such a request too (a reconnect tried during the outage).
        True if it broke."""
        broke = False
        for sock in (self._socket, self._opening):
            if sock is None or sock.broken is not None or not sock.pending:
                continue
            if sock.pending[0].sent >= since:
                continue
            sock._break("Redis is unreachable: a request was lost while the link to Redis was down")
            broke = True
        return broke

    @property
    def client_id(self) -> int | None:
        """The server's id of the current connection (``CLIENT ID``), if connected."""
        sock = self._socket
        return sock.client_id if sock is not None and sock.broken is None else None

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
