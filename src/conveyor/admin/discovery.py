"""Finding the queues under a prefix, and whether they and their workers are healthy.

``QueueDiscovery`` is the base of ``Admin``: it owns the connection pools and the cache of
``Queue`` objects the other parts (listing, actions, metrics) steer jobs through.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self, TypeVar

import orjson

from ..errors import QueueNotFound
from ..procedures import Procedure, make_settings
from ..queue import Queue
from ..settings import Settings
from ..storage.commands import Op, QueueCommands, ping, queue_names, server_time_ms
from ..storage.keys import validate_queue_name
from ..storage.ops import registry_prefixes
from ..storage.protocol import DATA_LOSS_TTL_SECONDS
from ..storage.redis import AsyncRedis

__all__ = [
    "HEALTH_QUEUE_LIMIT",
    "QUEUE_CACHE_LIMIT",
    "AdminQueue",
    "QueueDiscovery",
    "worker_info",
]

T = TypeVar("T")

#: The health check looks at most this many queues for a recorded data loss.
HEALTH_QUEUE_LIMIT = 1000
#: Queue objects an Admin keeps; names come from requests, so the cache must stay bounded.
QUEUE_CACHE_LIMIT = 1000


class QueueDiscovery:
    """Queues under one key prefix: their names, registration, counts, workers, data losses.

    Every ``Queue`` it hands out runs on this object's connection pools, so a queue dropped
    from the bounded cache leaves no connection open behind it."""

    def __init__(
        self,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        **overrides: Any,
    ) -> None:
        self.settings = make_settings(url, settings, overrides)
        self.redis = AsyncRedis(self.settings)
        self._blocking: AsyncRedis | None = None
        self.queue_cache_limit = QUEUE_CACHE_LIMIT
        self._queues: dict[str, AdminQueue] = {}
        #: The epoch of each queue last seen by ``data_losses`` (see heartbeat.lua).
        self._epochs: dict[str, str] = {}

    @property
    def blocking_redis(self) -> AsyncRedis:
        """The pool for blocking reads (events, waits) of the queues handed out."""
        if self._blocking is None:
            self._blocking = AsyncRedis(self.settings, blocking=True)
        return self._blocking

    async def close(self) -> None:
        self._queues.clear()
        if self._blocking is not None:
            await self._blocking.close()
            self._blocking = None
        await self.redis.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def queue(self, name: str) -> Queue:
        """The Queue object for ``name`` (validated; not necessarily registered)."""
        return self._queue(name)

    def _queue(self, name: str) -> AdminQueue:
        validate_queue_name(name)
        queue = self._queues.get(name)
        if queue is None:
            while len(self._queues) >= self.queue_cache_limit:
                del self._queues[next(iter(self._queues))]  # the oldest: it owns no connection
            queue = self._queues[name] = AdminQueue(name, self)
        return queue

    def _commands(self, name: str) -> QueueCommands:
        return self.queue(name).commands

    async def queue_names(self) -> list[str]:
        return await self.redis.run(queue_names(self.settings.prefix))

    async def other_prefixes(self) -> list[str]:
        """Other key prefixes that hold queues in this database (a bounded SCAN; see
        ``storage.ops.registry_prefixes``), for a hint when none are under this one."""
        found = await self.redis.run(registry_prefixes())
        return [p for p in found if p != self.settings.prefix]

    async def exists(self, name: str) -> bool:
        return await self.redis.run(self._commands(name).is_registered())

    async def require(self, name: str) -> AdminQueue:
        """The queue, or ``QueueNotFound`` when no queue of that name is registered."""
        if not await self.exists(name):
            raise QueueNotFound(f"no queue named {name!r} under prefix {self.settings.prefix!r}")
        return self._queue(name)

    async def ping(self) -> bool:
        return await self.redis.run(ping())

    async def data_losses(self) -> list[dict[str, Any]]:
        """Queues whose data Redis lost in the last day: restarted without persistence, flushed,
        failed over to an empty replica, or obliterated under running workers.

        A worker records the loss when the queue's epoch changes under it (heartbeat.lua); this
        Admin also remembers every epoch it has seen and records a change itself, so the health
        check says so even when no worker is running. Each entry: queue, noticed_at (ms),
        previous_epoch, epoch, noticed_by (a worker id, or "api")."""
        registered = await self.queue_names()
        names = sorted(set(registered) | set(self._epochs))[:HEALTH_QUEUE_LIMIT]
        if not names:
            return []
        queue_commands = [self._commands(name) for name in names]
        now, *states = await self.redis.run_many(
            [server_time_ms(), *(c.data_loss() for c in queue_commands)]
        )
        losses: list[dict[str, Any]] = []
        records: list[Op[None]] = []
        for name, commands, (epoch, lost) in zip(names, queue_commands, states, strict=True):
            known = self._epochs.get(name)
            if lost:
                losses.append({"queue": name, **orjson.loads(lost)})
            elif known and epoch != known:
                record = {
                    "noticed_at": now,
                    "previous_epoch": known,
                    "epoch": epoch,
                    "noticed_by": "api",
                }
                losses.append({"queue": name, **record})
                records.append(
                    commands.record_data_loss(orjson.dumps(record), DATA_LOSS_TTL_SECONDS)
                )
            # "" = seen without an epoch; the queue stays watched (its registry entry may be
            # gone with the data) but cannot raise a second alarm until an epoch is set again.
            self._epochs[name] = epoch or ""
        if records:
            await self.redis.run_many(records)
        return losses

    async def acknowledge_data_loss(self, name: str) -> bool:
        """Forget a recorded data loss of queue ``name`` (the health check turns green)."""
        return await self.redis.run(self._commands(name).clear_data_loss())

    async def overview(self, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Every queue (or the named ones, registered or not) with counts, paused flag, live
        workers and oldest-waiting age (one round trip after the registry read)."""
        names = await self.queue_names() if names is None else list(names)
        ops: list[Any] = []
        for name in names:
            commands = self._commands(name)
            ops += [commands.counts(), commands.workers(), commands.oldest_waiting_ms()]
        values = await self.redis.run_many(ops) if ops else []
        out = []
        for i, name in enumerate(names):
            counts, workers, oldest = values[i * 3 : i * 3 + 3]
            paused = bool(counts.pop("paused", 0))
            live = [w for w in workers if w[2]]
            out.append(
                {
                    "name": name,
                    "counts": counts,
                    "paused": paused,
                    "workers": len(live),
                    "busy": sum(worker_info(w)["busy"] for w in live),
                    "oldest_waiting_ms": oldest,
                }
            )
        return out

    async def workers(self, *, running: bool = False) -> list[dict[str, Any]]:
        """Every live worker (deduplicated across queues), with its last heartbeat; with
        ``running``, also what it runs now (``running``: up to ``RUNNING_SHOWN`` jobs, oldest
        first, and ``running_total``), as Sidekiq's Busy page shows."""
        names = await self.queue_names()
        ops: list[Op[Any]] = [self._commands(n).workers() for n in names]
        if running:
            ops += [self._commands(n).running() for n in names]
        replies = await self.redis.run_many(ops) if ops else []
        seen: dict[str, dict[str, Any]] = {}
        for entries in replies[: len(names)]:
            for entry in entries:
                if not entry[2]:
                    continue
                info = worker_info(entry)
                known = seen.get(info["id"])
                if known is None or info["last_heartbeat"] > known["last_heartbeat"]:
                    seen[info["id"]] = info
        if running:
            jobs = sorted((j for per_queue in replies[len(names) :] for j in per_queue),
                          key=lambda j: j["since"])  # fmt: skip
            for info in seen.values():
                mine = [j for j in jobs if j["worker"] == info["id"]]
                info["running_total"] = len(mine)
                # The leases are current; the heartbeat's count may be a beat old.
                info["busy"] = len(mine)
                info["running"] = [
                    {k: j[k] for k in ("queue", "id", "name", "since")}
                    for j in mine[:RUNNING_SHOWN]
                ]
        return sorted(seen.values(), key=lambda w: (w["host"], w["pid"], w["id"]))


class AdminQueue(Queue):
    """A Queue that runs on the pools of the ``QueueDiscovery`` that made it."""

    def __init__(self, name: str, owner: QueueDiscovery) -> None:
        super().__init__(name, settings=owner.settings)
        self._owner = owner

    @property
    def redis(self) -> AsyncRedis:
        return self._owner.redis

    @property
    def blocking_redis(self) -> AsyncRedis:
        return self._owner.blocking_redis

    async def close(self) -> None:
        """Nothing of its own to close: the pools are closed with their owner."""

    async def run(self, procedure: Procedure[T]) -> T:
        """Run a procedure the Queue API offers no parameter for (e.g. a progress callback)."""
        return await self._drive(procedure)


#: A worker's running jobs listed in the workers view (the count says how many more).
RUNNING_SHOWN = 20


def worker_info(entry: tuple[str, int, str | None]) -> dict[str, Any]:
    """A worker's registry entry (id, last beat, its JSON description) as a plain dict."""
    worker_id, beat, raw = entry
    try:
        info = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        info = {}
    if not isinstance(info, dict):
        info = {}
    return {
        "id": str(info.get("id") or worker_id),
        "host": str(info.get("host") or ""),
        "pid": int(info.get("pid") or 0),
        "queues": [str(q) for q in info.get("queues") or []],
        "concurrency": int(info.get("concurrency") or 0),
        "busy": int(info.get("busy") or 0),
        "processed": int(info.get("processed") or 0),
        "failed": int(info.get("failed") or 0),
        "restarts": int(info.get("restarts") or 0),
        "started_at": info.get("started_at"),
        "version": info.get("version"),
        "last_heartbeat": beat,
    }
