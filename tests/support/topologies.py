"""Redis Sentinel and Redis Cluster deployments on loopback, for fault tests.

* :class:`SentinelSetup`: 1 master + N replicas (:class:`RedisServer`) and M sentinels
  (``redis-server <conf> --sentinel``), each in its own temporary directory.
* :class:`ClusterSetup`: a Redis Cluster of N masters (and optional replicas per master),
  created with ``redis-cli --cluster create ... --cluster-yes``.

Both wait until the deployment is really ready (replication links up, sentinels aware of each
other, cluster state ok) and stop every process on :meth:`close`. Nothing here imports
``conveyor``.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.support.redis_server import (
    HOST,
    RedisServer,
    RedisServerError,
    _encode_command,
    find_free_port,
)
from tests.support.waiting import wait_for

MASTER_NAME = "mymaster"


def command(port: int, *args: str, timeout: float = 5.0) -> str:
    """One command to ``127.0.0.1:port``; the reply as text (arrays flattened, one per line)."""
    import socket

    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(_encode_command(*args))
        return _read_any(sock.makefile("rb"))


def _read_any(f: object) -> str:
    readline = f.readline  # type: ignore[attr-defined]
    line: bytes = readline()
    if not line:
        raise ConnectionError("connection closed")
    kind, body = line[:1], line[1:-2]
    if kind in (b"+", b":"):
        return body.decode()
    if kind == b"-":
        raise RedisServerError(body.decode(errors="replace"))
    if kind == b"$":
        n = int(body)
        if n < 0:
            return ""
        data: bytes = f.read(n + 2)  # type: ignore[attr-defined]
        return data[:-2].decode(errors="replace")
    if kind == b"*":
        n = int(body)
        return "\n".join(_read_any(f) for _ in range(max(n, 0)))
    raise RedisServerError(f"unexpected reply {line!r}")


class _Process:
    """A redis-server started from a config file we write (sentinels, cluster nodes)."""

    def __init__(self, conf: str, args: tuple[str, ...] = ()) -> None:
        # A cluster node also listens on port + 10000, so keep ports at or below 55535.
        self.port = next(p for p in iter(find_free_port, None) if p <= 55535)
        self.dir = Path(tempfile.mkdtemp(prefix="conveyor-topo-"))
        (self.dir / "node.conf").write_text(conf.format(port=self.port, dir=self.dir))
        self.log = open(self.dir / "node.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            ["redis-server", str(self.dir / "node.conf"), *args],
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._up, timeout=10, message=lambda: f"{self} did not start: {self.logs()}")

    def _up(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RedisServerError(f"{self} exited: {self.logs()}")
        return self.ping()

    def ping(self) -> bool:
        try:
            return command(self.port, "PING", timeout=1) == "PONG"
        except (OSError, RedisServerError):
            return False

    def logs(self) -> str:
        return (self.dir / "node.log").read_text(errors="replace")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def close(self) -> None:
        self.kill()
        self.proc = None
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"<redis {HOST}:{self.port}>"


_SENTINEL_CONF = """port {port}
bind 127.0.0.1
dir {dir}
daemonize no
protected-mode no
sentinel resolve-hostnames no
sentinel monitor %(name)s 127.0.0.1 %(master)d 2
sentinel down-after-milliseconds %(name)s %(down_after)d
sentinel failover-timeout %(name)s 10000
sentinel parallel-syncs %(name)s 2
"""


class SentinelSetup:
    """1 master, ``replicas`` replicas and ``sentinels`` sentinels, all on loopback."""

    def __init__(self, replicas: int = 2, sentinels: int = 3, down_after_ms: int = 1000) -> None:
        self.servers: list[RedisServer] = []
        self.sentinels: list[_Process] = []
        self.replicas = replicas
        self.sentinel_count = sentinels
        self.down_after_ms = down_after_ms

    def start(self) -> Self:
        # A master waits 5 s (repl-diskless-sync-delay) for more replicas before it sends the
        # first one its data: no wait here, nor after a failover, when the new master does it.
        quick_sync = {"repl-diskless-sync-delay": "0"}
        master = RedisServer(appendonly=False, extra_config=quick_sync).start()
        self.servers.append(master)
        for _ in range(self.replicas):
            replica = RedisServer(
                extra_config=quick_sync, extra_args=["--replicaof", HOST, str(master.port)]
            )
            self.servers.append(replica.start())
        wait_for(
            lambda: self._links_up(master.port),
            timeout=20,
            message="replicas never synced with the master",
        )
        conf = _SENTINEL_CONF % {
            "name": MASTER_NAME,
            "master": master.port,
            "down_after": self.down_after_ms,
        }
        for _ in range(self.sentinel_count):
            self.sentinels.append(_Process(conf, ("--sentinel",)))
        wait_for(self._sentinels_ready, timeout=30, message="sentinels never saw each other")
        return self

    def _links_up(self, master_port: int) -> bool:
        info = command(master_port, "INFO", "replication")
        return f"connected_slaves:{self.replicas}" in info and all(
            "master_link_status:up" in command(s.port, "INFO", "replication")
            for s in self.servers
            if s.port != master_port
        )

    def _sentinels_ready(self) -> bool:
        wanted = f"slaves={self.replicas},sentinels={self.sentinel_count}"
        return all(wanted in command(s.port, "INFO", "sentinel") for s in self.sentinels)

    @property
    def url(self) -> str:
        hosts = ",".join(f"{HOST}:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{MASTER_NAME}"

    def master_port(self) -> int:
        reply = command(self.sentinels[0].port, "SENTINEL", "get-master-addr-by-name", MASTER_NAME)
        return int(reply.split("\n")[1])

    def server(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def failover(self) -> None:
        command(self.sentinels[0].port, "SENTINEL", "FAILOVER", MASTER_NAME)

    def all_agree_on_master(self, port: int) -> bool:
        """Every sentinel names ``port`` as master, and that server says it is one."""
        for s in self.sentinels:
            reply = command(s.port, "SENTINEL", "get-master-addr-by-name", MASTER_NAME)
            if reply.split("\n")[1] != str(port):
                return False
        return "role:master" in command(port, "INFO", "replication")

    def close(self) -> None:
        for s in self.sentinels:
            s.close()
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


_CLUSTER_NODE_CONF = """port {port}
bind 127.0.0.1
dir {dir}
daemonize no
protected-mode no
cluster-enabled yes
cluster-config-file nodes.conf
cluster-node-timeout 1000
repl-diskless-sync-delay 0
appendonly no
save ""
"""


class ClusterSetup:
    """A Redis Cluster of ``masters`` masters with ``replicas`` replicas each, on loopback."""

    def __init__(self, masters: int = 3, replicas: int = 0) -> None:
        self.masters = masters
        self.replicas = replicas
        self.nodes: list[_Process] = []

    def start(self) -> Self:
        total = self.masters * (1 + self.replicas)
        self.nodes = [_Process(_CLUSTER_NODE_CONF) for _ in range(total)]
        create = subprocess.run(
            ["redis-cli", "--cluster", "create"]
            + [f"{HOST}:{n.port}" for n in self.nodes]
            + ["--cluster-replicas", str(self.replicas), "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if create.returncode != 0:
            raise RedisServerError(f"cluster create failed: {create.stdout}{create.stderr}")
        wait_for(self.healthy, timeout=30, message="cluster never reached cluster_state:ok")
        return self

    def healthy(self) -> bool:
        for node in self.nodes:
            if node.proc is None or node.proc.poll() is not None:
                continue
            info = command(node.port, "CLUSTER", "INFO")
            if "cluster_state:ok" not in info:
                return False
        return True

    @property
    def url(self) -> str:
        alive = [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]
        return "redis+cluster://" + ",".join(f"{HOST}:{n.port}" for n in alive)

    def node_for_port(self, port: int) -> _Process:
        return next(n for n in self.nodes if n.port == port)

    def roles(self) -> dict[int, str]:
        """port -> "master" or "slave", from each live node's own view."""
        out = {}
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                role = command(node.port, "ROLE").split("\n")[0]
                out[node.port] = role
        return out

    def crossslot_errors(self) -> int:
        """CROSSSLOT errors the live nodes answered so far (a multi-key command across slots)."""
        total = 0
        for port in self.roles():
            for line in command(port, "INFO", "errorstats").splitlines():
                if line.startswith("errorstat_CROSSSLOT:"):
                    total += int(line.split("count=")[1].split(",")[0])
        return total

    def close(self) -> None:
        for node in self.nodes:
            node.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
