"""A private, throw-away redis-server for the benchmark (no persistence)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _encode(*parts: str) -> bytes:
    out = [f"*{len(parts)}\r\n".encode()]
    for p in parts:
        b = p.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class RedisServer:
    """Starts redis-server on a free loopback port; tiny RESP client for admin."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.TemporaryDirectory(prefix="bench-redis-")
        self._start()

    def _start(self) -> None:
        cmd = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self.dir.name,
            "--maxclients",
            "10000",
            "--loglevel",
            "warning",
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.command("PING") == "PONG":
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server failed to start")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self, *parts: str) -> str:
        """Send one command; returns simple/bulk string replies (enough for admin)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(_encode(*parts))
            f = s.makefile("rb")
            line = f.readline().rstrip(b"\r\n")
            kind, rest = line[:1], line[1:]
            if kind == b"-":
                raise RuntimeError(rest.decode())
            if kind == b"$":
                size = int(rest)
                return "" if size < 0 else f.read(size + 2)[:-2].decode()
            return rest.decode()

    def flush(self) -> None:
        """Empty the server for the next run. A run killed mid-script can leave Redis busy
        with it (the script is stopped), or a crashed server behind (it is started again on
        the same port): one library's failure must not fail the runs after it."""
        try:
            self._flush()
            return
        except RuntimeError as exc:
            if not str(exc).startswith("BUSY"):
                raise
            with contextlib.suppress(RuntimeError):
                self.command("SCRIPT", "KILL")
            time.sleep(0.1)
        except OSError:
            self.proc.kill()
            self.proc.wait()
            self._start()
        self._flush()

    def _flush(self) -> None:
        self.command("FLUSHALL")
        self.command("SCRIPT", "FLUSH")

    def version(self) -> str:
        for line in self.command("INFO", "server").splitlines():
            if line.startswith("redis_version:"):
                return line.split(":", 1)[1].strip()
        return "?"

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.command("SHUTDOWN", "NOSAVE")
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.dir.cleanup()
