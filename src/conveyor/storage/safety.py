"""Is this Redis safe for a job queue? Its eviction policy and persistence (docs/design.md §3).

A server that may evict keys under memory pressure can silently drop jobs, and one without
persistence loses them all on a restart. The worker refuses the first (unless told otherwise)
and warns about the second; the demo skips a local Redis that may evict. On a Cluster every
node is asked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator
from typing import Any

from ..errors import CommandRefused
from .commands import Op, config_get, info
from .redis import AsyncRedis, SyncRedis

__all__ = ["RedisSafety", "check_safety", "check_safety_async"]

_SAFE_POLICY = "noeviction"


@dataclasses.dataclass(frozen=True, slots=True)
class RedisSafety:
    #: The maxmemory-policy of a node that may evict keys (the first found); ``noeviction``
    #: when none may; None when the server refused to say (CONFIG disabled, as on some managed
    #: services).
    policy: str | None
    #: False when no node has AOF or RDB snapshots on; None when the server refused to say.
    persistent: bool | None

    @property
    def may_evict(self) -> bool:
        return self.policy is not None and self.policy != _SAFE_POLICY


def _per_node(reply: Any, field: str) -> list[Any]:
    """A CONFIG GET / INFO field from one server, or from each node of a Cluster."""
    if isinstance(reply, dict) and reply and all(isinstance(v, dict) for v in reply.values()):
        return [node.get(field) for node in reply.values()]
    return [reply.get(field) if isinstance(reply, dict) else None]


#: Yields the Ops to run and is sent each one's value, or None when the server refused it.
_Check = Generator[Op[Any], Any, RedisSafety]


def _check() -> _Check:
    policy: str | None = None
    policies = yield config_get("maxmemory-policy")
    if policies is not None:
        found = (p for p in _per_node(policies, "maxmemory-policy") if p and p != _SAFE_POLICY)
        policy = str(next(found, _SAFE_POLICY))
    persistent: bool | None = None
    aof = yield info("persistence")
    saves = None if aof is None else (yield config_get("save"))
    if aof is not None and saves is not None:
        persistent = any(_per_node(aof, "aof_enabled")) or any(_per_node(saves, "save"))
    return RedisSafety(policy, persistent)


def check_safety(redis: SyncRedis) -> RedisSafety:
    check = _check()
    op = next(check)
    while True:
        try:
            value = redis.run(op)
        except CommandRefused:
            value = None
        try:
            op = check.send(value)
        except StopIteration as done:
            found: RedisSafety = done.value
            return found


async def check_safety_async(redis: AsyncRedis) -> RedisSafety:
    check = _check()
    op = next(check)
    while True:
        try:
            value = await redis.run(op)
        except CommandRefused:
            value = None
        try:
            op = check.send(value)
        except StopIteration as done:
            found: RedisSafety = done.value
            return found
