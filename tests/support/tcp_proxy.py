"""A small TCP proxy the tests control, to cut, slow down or reset a client's link to Redis.

:class:`TcpProxy` listens on ``127.0.0.1:<free port>`` and forwards every connection to an
upstream ``host:port``. It runs its own asyncio loop in a daemon thread, so tests (sync or
async) and the processes they start simply connect to :attr:`TcpProxy.port`.

Faults, all reversible with :meth:`heal`:

* :meth:`drop` -- a black hole: connections stay open but every byte in either direction is
  discarded, and new connections are accepted and then black-holed too. This is a network
  partition whose lost packets never arrive (a client only notices through its own timeouts).
* :meth:`delay` -- add latency to every chunk, in each direction (``0.5`` = 500 ms each way).
* :meth:`reset` -- close every open connection with a TCP reset (RST); new ones work.

Nothing here imports ``conveyor``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

T = TypeVar("T")

HOST = "127.0.0.1"
_CHUNK = 65536


class _Link:
    """One proxied connection: client <-> upstream, one pump task per direction."""

    def __init__(
        self,
        proxy: TcpProxy,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.tasks = [
            asyncio.create_task(self._pump(self.client[0], self.upstream[1])),
            asyncio.create_task(self._pump(self.upstream[0], self.client[1])),
        ]

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction. Chunks are stamped when read and written ``delay`` later, so
        latency does not turn into a bandwidth limit; black-holed chunks are discarded."""
        pending: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def write() -> None:
            while (item := await pending.get()) is not None:
                read_at, data = item
                wait = read_at + self.proxy.latency - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if self.proxy.dropping:
                    continue
                writer.write(data)
                await writer.drain()

        writer_task = asyncio.create_task(write())
        try:
            while data := await reader.read(_CHUNK):
                self.proxy.bytes_forwarded += len(data)
                if not self.proxy.dropping:
                    pending.put_nowait((time.monotonic(), data))
            pending.put_nowait(None)
            await writer_task
        except (ConnectionError, OSError):
            pass
        finally:
            writer_task.cancel()
            self.close(reset=False)

    def close(self, *, reset: bool) -> None:
        for _reader, writer in (self.client, self.upstream):
            if reset:
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
            writer.close()
        self.proxy.links.discard(self)


class TcpProxy:
    """Forward ``127.0.0.1:<port>`` to ``upstream_host:upstream_port``; see module docstring."""

    def __init__(self, upstream_port: int, upstream_host: str = HOST) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.latency = 0.0
        self.dropping = False
        self.bytes_forwarded = 0
        self.connections_accepted = 0
        self.links: set[_Link] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        self._thread.start()
        self._server = self._call(self._serve())
        return self

    async def _serve(self) -> asyncio.Server:
        server = await asyncio.start_server(self._accept, HOST, 0)
        self.port = server.sockets[0].getsockname()[1]
        return server

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_accepted += 1
        try:
            upstream = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        link = _Link(self, (reader, writer), upstream)
        self.links.add(link)
        link.start()

    def close(self) -> None:
        if not self._thread.is_alive():
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for link in list(self.links):
                link.close(reset=True)
                for task in link.tasks:
                    task.cancel()

        with contextlib.suppress(Exception):
            self._call(shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    # -- faults ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def drop(self) -> None:
        """Black-hole every byte, both ways, on old and new connections, until :meth:`heal`."""
        self.dropping = True

    def delay(self, seconds: float) -> None:
        """Add ``seconds`` of latency to every chunk in each direction."""
        self.latency = seconds

    def reset(self) -> int:
        """Close every open connection with a TCP RST; returns how many were reset."""

        async def reset_all() -> int:
            links = list(self.links)
            for link in links:
                link.close(reset=True)
            return len(links)

        return self._call(reset_all())

    def heal(self) -> None:
        """Forward normally again (no drop, no latency)."""
        self.dropping = False
        self.latency = 0.0
