"""What the parts of a worker see of each other and of Redis: small protocols, so that each
part can be tested with an in-memory stand-in (``storage.redis.AsyncRedis`` is the real one)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from ..storage.commands import Op, QueueCommands
from ..storage.protocol import FetchReply

__all__ = ["BlockingOpRunner", "FetchHost", "OpRunner"]

T = TypeVar("T")


class OpRunner(Protocol):
    """Runs Ops (``storage.commands``) against Redis."""

    async def run(self, op: Op[T]) -> T: ...
    async def run_many(self, ops: Sequence[Op[Any]]) -> list[Any]: ...


class DirectConnection(Protocol):
    @property
    def client_id(self) -> int | None: ...

    def reset_if_stuck(self, since: float) -> bool: ...


class BlockingOpRunner(OpRunner, Protocol):
    """The connection the idle wait blocks on."""

    @property
    def direct(self) -> DirectConnection | None:
        """Our own connection to one server, which keeps commands in order (a fetch can
        queue behind the wait), or None (redis-py: Sentinel, Cluster, TLS)."""

    @property
    def is_cluster(self) -> bool: ...


class FetchHost(Protocol):
    """What the fetch loop sees of its worker."""

    id: str
    burst: bool

    def fetchable(self) -> int:
        """How many more jobs may be fetched now: free slots, within ``max_jobs``."""

    def limit_reached(self) -> bool:
        """``max_jobs`` is reached, counting the jobs still leased."""

    def holds_jobs(self) -> bool:
        """Some leased job is not settled yet (running, or its outcome not acknowledged)."""

    def start(self, commands: QueueCommands, reply: FetchReply) -> None:
        """Start the jobs a fetch leased."""

    async def wait_for_slot(self) -> None:
        """Until a slot frees (or the worker stops)."""

    async def wait_until_settled(self) -> None:
        """Until a leased job is settled (or the worker stops)."""
