"""A real ``redis-server`` process for tests.

Each :class:`RedisServer` runs the ``redis-server`` binary found on PATH, bound to
127.0.0.1 on a free port, in its own temporary directory (config, log, RDB/AOF files).
It can be stopped, killed (SIGKILL), restarted on the same port and directory (so AOF
data survives) and paused/resumed (SIGSTOP/SIGCONT) to simulate a hung server.

The readiness check speaks RESP over a plain socket, so this module needs no Redis
client library.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

HOST = "127.0.0.1"

_live_servers: weakref.WeakSet[RedisServer] = weakref.WeakSet()


class RedisServerError(RuntimeError):
    """redis-server could not be started or did not behave."""


def find_free_port(host: str = HOST) -> int:
    """Ask the kernel for a free TCP port by binding to port 0."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _encode_command(*args: str) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _read_reply(sock: socket.socket) -> bytes:
    """Read one simple/error/integer/bulk reply; return it raw (without framing)."""
    buf = b""
    while b"\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed by redis-server")
        buf += chunk
    header, _, rest = buf.partition(b"\r\n")
    kind, body = header[:1], header[1:]
    if kind in (b"+", b":"):
        return body
    if kind == b"-":
        raise RedisServerError(body.decode(errors="replace"))
    if kind == b"$":
        length = int(body)
        if length < 0:
            return b""
        while len(rest) < length + 2:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by redis-server")
            rest += chunk
        return rest[:length]
    raise RedisServerError(f"unexpected reply: {header!r}")


def _config_value(value: str) -> str:
    # Quote values for redis.conf; an empty string must be written as "".
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"' if (value == "" or any(c.isspace() for c in value)) else escaped


def _exited(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


class RedisServer:
    """A ``redis-server`` subprocess on ``127.0.0.1:<free port>``.

    Options map to redis.conf directives. ``save=""`` (the default) disables RDB
    snapshots; ``save="900 1"`` etc. enables them. ``extra_config`` adds directives
    (``{"hz": "100"}``) and ``extra_args`` adds raw command-line arguments
    (``["--hz", "100"]``).
    """

    def __init__(
        self,
        *,
        appendonly: bool = False,
        appendfsync: str = "everysec",
        maxmemory: str | None = None,
        maxmemory_policy: str = "noeviction",
        save: str = "",
        extra_config: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
        port: int | None = None,
        executable: str = "redis-server",
        start_timeout: float = 10.0,
    ) -> None:
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.maxmemory = maxmemory
        self.maxmemory_policy = maxmemory_policy
        self.save = save
        self.extra_config = dict(extra_config or {})
        self.extra_args = list(extra_args)
        self.executable = executable
        self.start_timeout = start_timeout
        self._fixed_port = port is not None
        self._port: int | None = port
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._paused = False
        self._ever_started = False

    # -- properties -----------------------------------------------------------------

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        if self._port is None:
            raise RedisServerError("server has not been started yet")
        return self._port

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RedisServerError("server is not running")
        return self._proc.pid

    @property
    def dir(self) -> Path:
        """Working directory (config, log, RDB and AOF files); kept across restarts."""
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="conveyor-redis-"))
        return self._dir

    @property
    def log_path(self) -> Path:
        return self.dir / "redis.log"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def paused(self) -> bool:
        return self._paused

    def log(self) -> str:
        """The server's log so far (all runs)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- lifecycle ------------------------------------------------------------------

    def _write_config(self) -> Path:
        directives: dict[str, str] = {
            "bind": self.host,
            "port": str(self.port),
            "dir": str(self.dir),
            "daemonize": "no",
            "protected-mode": "no",
            "logfile": "",
            "loglevel": "notice",
            "databases": "16",
            "save": self.save,
            "dbfilename": "dump.rdb",
            "appendonly": "yes" if self.appendonly else "no",
            "appendfsync": self.appendfsync,
            "maxmemory-policy": self.maxmemory_policy,
        }
        if self.maxmemory is not None:
            directives["maxmemory"] = self.maxmemory
        directives.update(self.extra_config)
        conf = self.dir / "redis.conf"
        conf.write_text(
            "".join(f"{key} {_config_value(value)}\n" for key, value in directives.items())
        )
        return conf

    def start(self) -> Self:
        """Start the server and wait until it answers PING (and is really ours).

        Picks a free port on the first start; restarts reuse that port. If the port was
        taken in the meantime ("Address already in use"), a new port is picked (unless
        the port was given explicitly, then it is retried until the deadline).
        """
        if self.running:
            raise RedisServerError(f"redis-server already running (pid {self.pid})")
        if shutil.which(self.executable) is None:
            raise RedisServerError(
                f"{self.executable!r} not found on PATH (scripts/setup installs it)"
            )
        deadline = time.monotonic() + self.start_timeout
        attempts = 0
        while True:
            attempts += 1
            if self._port is None:
                self._port = find_free_port(self.host)
            error = self._start_once(deadline)
            if error is None:
                _live_servers.add(self)
                return self
            in_use = "Address already in use" in error
            if not in_use or time.monotonic() >= deadline or attempts >= 20:
                raise RedisServerError(f"redis-server failed to start: {error}")
            if not self._fixed_port and not self._ever_started:
                # A first start may move to another port; after that the port is kept so
                # that clients holding the URL reconnect to the same server on restart.
                self._port = None
            else:
                time.sleep(0.05)  # same port (restart / fixed port): wait for it to free up

    def _start_once(self, deadline: float) -> str | None:
        """Start one redis-server process; return None when ready, else an error."""
        conf = self._write_config()
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in _reap()
        self._proc = subprocess.Popen(
            [self.executable, str(conf), *self.extra_args],
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._paused = False
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._reap()
                return f"exited with code {code}: {self._log_since(log_offset).strip()}"
            if self._is_ours():
                self._ever_started = True
                return None
            if time.monotonic() >= deadline:
                self._kill_and_reap()
                return (
                    f"no PONG within {self.start_timeout}s; log: "
                    f"{self._log_since(log_offset).strip()}"
                )
            time.sleep(0.01)

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def _is_ours(self) -> bool:
        """True once the server on our port answers PING and reports our pid."""
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                sock.sendall(_encode_command("PING"))
                if _read_reply(sock) != b"PONG":
                    return False
                sock.sendall(_encode_command("INFO", "server"))
                info = _read_reply(sock).decode(errors="replace")
        except (OSError, RedisServerError):
            # Connection refused, or -LOADING while the AOF/RDB is being loaded.
            return False
        assert self._proc is not None
        return f"process_id:{self._proc.pid}\r\n" in info

    def command(self, *args: str, timeout: float = 5.0) -> bytes:
        """Send one command over a fresh connection; return the raw reply body."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            sock.sendall(_encode_command(*args))
            return _read_reply(sock)

    def ping(self, timeout: float = 1.0) -> bool:
        try:
            return self.command("PING", timeout=timeout) == b"PONG"
        except (OSError, RedisServerError):
            return False

    def _reap(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
        self._paused = False

    def _kill_and_reap(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
        self._reap()
        self._proc = None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully: SHUTDOWN NOSAVE, else SIGTERM, else SIGKILL. Idempotent."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            if self._paused:
                self.resume()
            if not self._shutdown_nosave(timeout) or not _exited(proc, timeout):
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                if not _exited(proc, timeout):
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
        self._kill_and_reap()

    def _shutdown_nosave(self, timeout: float) -> bool:
        """Send SHUTDOWN NOSAVE; False when the server refused it with an error reply (NOAUTH
        under a password, replicas still catching up): then nothing is to wait for."""
        try:
            # The server closes the connection instead of replying.
            self.command("SHUTDOWN", "NOSAVE", timeout=timeout)
        except RedisServerError:
            return False
        except OSError:
            pass
        return True

    def kill(self) -> None:
        """SIGKILL the server (no shutdown, no final fsync) and reap it."""
        if self._proc is None:
            return
        self._kill_and_reap()

    def restart(self, *, graceful: bool = True) -> Self:
        """Stop (or kill, with ``graceful=False``) and start again on the same port/dir."""
        if graceful:
            self.stop()
        else:
            self.kill()
        return self.start()

    def pause(self) -> None:
        """SIGSTOP the server: connections stay open but nothing is answered."""
        if not self.running:
            raise RedisServerError("server is not running")
        os.kill(self.pid, signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """SIGCONT a paused server."""
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGCONT)
        self._paused = False

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        _live_servers.discard(self)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> Self:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "paused" if self._paused else ("running" if self.running else "stopped")
        port = self._port if self._port is not None else "?"
        return f"<RedisServer {self.host}:{port} {state}>"


@atexit.register
def _kill_leftover_servers() -> None:
    # Last line of defence: never leave a redis-server behind when Python exits.
    for server in list(_live_servers):
        with contextlib.suppress(Exception):
            server.kill()
