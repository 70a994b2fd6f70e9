"""A lean RESP2 connection to one Redis server for blocking callers (``SyncQueue``).

The blocking twin of ``resp.DirectClient``. redis-py's blocking client spent longer around an
EVALSHA than Redis spent running it (command packing, a connection-pool checkout and health
check, reply handling in Python): measured on one Redis, ``SyncQueue.add`` made about 4,000
calls/s through redis-py and 5,800 this way. Here a call is one ``sendall``, then reads into
hiredis until its replies are in.

Connections are pooled: a call takes an idle one (or opens one) and gives it back once every
reply is read, so threads never interleave on a socket, and a call that fails half-way closes
its connection rather than leave unread replies for the next caller. A forked child opens its
own connections; the parent's would deliver replies to whichever process reads first.

Timeouts are the kernel's (``SO_RCVTIMEO``/``SO_SNDTIMEO``) on a socket in blocking mode: with a
Python-level timeout every read would first wait in ``poll()``, one more system call per read.
"""

from __future__ import annotations

import collections
import select
import socket
import struct
import threading
from typing import Any

import hiredis

from .. import errors
from .resp import Endpoint, forks, pack

__all__ = ["BlockingDirectClient"]

_READ_SIZE = 65536


def _timeval(seconds: float) -> bytes:
    # At least a microsecond: a zero timeval would mean "no timeout at all" to the kernel.
    whole, micros = divmod(max(int(seconds * 1_000_000), 1), 1_000_000)
    return struct.pack("ll", whole, micros)


class _Connection:
    __slots__ = ("generation", "poller", "reader", "sock")

    def __init__(self, sock: socket.socket, generation: int) -> None:
        self.sock = sock
        self.generation = generation
        self.reader = hiredis.Reader(encoding="utf-8", errors="replace")
        self.poller = select.poll()
        self.poller.register(sock, select.POLLIN)

    def call(self, payload: bytes, expected: int) -> list[Any]:
        """Send ``payload`` and read ``expected`` replies (errors included as values)."""
        sock, reader = self.sock, self.reader
        sock.sendall(payload)
        replies: list[Any] = []
        while len(replies) < expected:
            data = sock.recv(_READ_SIZE)
            if not data:
                raise ConnectionResetError("the server closed the connection")
            reader.feed(data)
            while (reply := reader.gets()) is not False:
                replies.append(reply)
        if len(replies) > expected:
            raise hiredis.ProtocolError(f"{len(replies) - expected} replies nobody asked for")
        return replies

    def is_usable(self) -> bool:
        """Whether the server still holds this idle connection open (and sent nothing
        unasked): after a Redis restart, every pooled connection is closed at the far end.
        An idle connection that is readable holds either that close or bytes out of step.
        (A zero-timeout poll: about a fifth of the cost of a non-blocking peek that raises.)"""
        return not self.poller.poll(0)

    def close(self) -> None:
        self.sock.close()


class BlockingDirectClient:
    """Sends raw RESP to one server from any thread, over a pool of connections."""

    def __init__(
        self, url: str, connect_timeout: float, timeout: float, client_name: str | None = None
    ) -> None:
        self.endpoint = Endpoint(url, client_name)
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self._idle: collections.deque[_Connection] = collections.deque()
        #: ``resp.forks()`` when the pool's connections were opened: a fork's child forgets
        #: them (a counter its fork hook bumps, where os.getpid() would be a system call).
        self._forks = forks()
        self._fork_lock = threading.Lock()
        #: Bumped by ``close``: a connection of an older generation is closed when given back.
        self._generation = 0

    def execute(self, payload: bytes, expected: int) -> list[Any]:
        """Send ``payload`` (``expected`` commands) and return their replies, errors included
        as ``hiredis.ReplyError`` values."""
        connection = self._checkout()
        try:
            replies = connection.call(payload, expected)
        except BaseException as exc:
            # Replies of this call may still be on their way: nobody else may read them.
            connection.close()
            if isinstance(exc, BlockingIOError):  # SO_RCVTIMEO/SO_SNDTIMEO ran out
                raise errors.ConnectionError(
                    f"Redis is unreachable: no reply from {self.endpoint.where} "
                    f"within {self.timeout:g} s"
                ) from exc
            if isinstance(exc, OSError | hiredis.ProtocolError):
                raise errors.ConnectionError(
                    f"Redis is unreachable: the connection to {self.endpoint.where} "
                    f"failed ({exc!r})"
                ) from exc
            raise
        if connection.generation == self._generation:
            self._idle.append(connection)
        else:
            connection.close()
        return replies

    def _checkout(self) -> _Connection:
        if self._forks != forks():
            self._forget_parents_connections()
        idle = self._idle
        while idle:
            try:
                connection = idle.pop()  # the most recently used: the likeliest to be alive
            except IndexError:  # another thread took the last one
                break
            if connection.is_usable():
                return connection
            connection.close()
        return self._open()

    def _forget_parents_connections(self) -> None:
        with self._fork_lock:
            if self._forks == forks():
                return
            # Closing the child's copy of a descriptor leaves the parent's connection open.
            inherited, self._idle = self._idle, collections.deque()
            self._forks = forks()
        for connection in inherited:
            connection.close()

    def _open(self) -> _Connection:
        endpoint = self.endpoint
        try:
            if endpoint.path:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.connect_timeout)
                try:
                    sock.connect(endpoint.path)
                except BaseException:
                    sock.close()
                    raise
            else:
                sock = socket.create_connection(
                    (endpoint.host, endpoint.port), timeout=self.connect_timeout
                )
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(None)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(self.timeout))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(self.timeout))
        except OSError as exc:
            raise endpoint.unreachable(exc) from exc
        connection = _Connection(sock, self._generation)
        if endpoint.handshake:
            try:
                replies = connection.call(
                    b"".join(map(pack, endpoint.handshake)), len(endpoint.handshake)
                )
                endpoint.check_handshake(replies)
            except BaseException as exc:
                connection.close()
                if isinstance(exc, OSError | hiredis.ProtocolError):
                    raise endpoint.unreachable(exc) from exc
                raise
        return connection

    def close(self) -> None:
        """Close the idle connections; those in use close when their call ends. A later call
        opens a new one."""
        self._generation += 1
        while self._idle:
            try:
                self._idle.pop().close()
            except IndexError:
                break
