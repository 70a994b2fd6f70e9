"""Flow control's methods on ``Queue`` (async) and ``SyncQueue`` (blocking): each validates
its input, then runs one Op of ``storage/flow.py``. Both mixins build their Ops with the same
functions below, so the twins cannot drift apart."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from .flow_control import (
    FlowState,
    GroupInfo,
    RateLimit,
    check_concurrency,
    check_group_name,
    check_max_size,
    check_rate_limit,
    check_weight,
)
from .job import Job, JobContext
from .storage.flow import FlowCommands
from .storage.ops import Op

if TYPE_CHECKING:
    from .storage.commands import QueueCommands
    from .storage.redis import AsyncRedis, SyncRedis

__all__ = ["UNSET", "AsyncFlowControl", "SyncFlowControl"]


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: ``set_group`` leaves a setting as it is when it is not given.
UNSET: Any = _Unset()


def _set_rate_limit(commands: QueueCommands, limit: RateLimit | None) -> Op[None]:
    return FlowCommands(commands).set_rate_limit(check_rate_limit(limit))


def _set_group_defaults(
    commands: QueueCommands,
    concurrency: int | None,
    rate_limit: RateLimit | None,
    weight: int,
    max_size: int | None,
) -> Op[int]:
    return FlowCommands(commands).set_group_defaults(
        check_concurrency(concurrency),
        check_rate_limit(rate_limit),
        check_weight(weight),
        check_max_size(max_size),
    )


def _set_group(
    commands: QueueCommands,
    name: str,
    concurrency: Any,
    rate_limit: Any,
    weight: Any,
    max_size: Any,
    reset: bool,
) -> Op[None]:
    """A setting given as None means "no limit" for this group, whatever the defaults say;
    ``reset`` drops every override first (the defaults apply again)."""
    check_group_name(name)
    changes: list[tuple[str, str]] = []
    if reset:
        changes += [("conc", ""), ("rate", ""), ("weight", ""), ("max", "")]
    if concurrency is not UNSET:
        changes.append(("conc", str(check_concurrency(concurrency))))
    if rate_limit is not UNSET:
        limit = check_rate_limit(rate_limit)
        changes.append(("rate", f"{limit.limit}/{limit.per_ms}" if limit else "0/1000"))
    if weight is not UNSET:
        changes.append(("weight", str(check_weight(weight))))
    if max_size is not UNSET:
        changes.append(("max", str(check_max_size(max_size))))
    return FlowCommands(commands).set_group(name, changes)


class AsyncFlowControl:
    """Mixed into ``Queue``."""

    commands: QueueCommands
    if TYPE_CHECKING:

        @property
        def redis(self) -> AsyncRedis: ...

    async def set_rate_limit(self, limit: RateLimit | None) -> None:
        """At most ``limit.limit`` jobs of this queue start in any ``limit.per`` seconds, over
        all its workers; None removes the limit."""
        await self.redis.run(_set_rate_limit(self.commands, limit))

    async def set_group_defaults(
        self,
        *,
        concurrency: int | None = None,
        rate_limit: RateLimit | None = None,
        weight: int = 1,
        max_size: int | None = None,
    ) -> None:
        """The settings of every group that has none of its own (None: no limit)."""
        await self.redis.run(
            _set_group_defaults(self.commands, concurrency, rate_limit, weight, max_size)
        )

    async def set_group(
        self,
        name: str,
        *,
        concurrency: int | None = UNSET,
        rate_limit: RateLimit | None = UNSET,
        weight: int = UNSET,
        max_size: int | None = UNSET,
        reset: bool = False,
    ) -> None:
        """One group's own settings; those not given stay as they are (None: no limit for
        this group; ``reset=True`` first drops its own settings, so the defaults apply)."""
        op = _set_group(self.commands, name, concurrency, rate_limit, weight, max_size, reset)
        await self.redis.run(op)

    async def pause_group(self, name: str) -> bool:
        """Hand out none of the group's jobs until ``resume_group``; True if it changed."""
        op = FlowCommands(self.commands).pause_group(check_group_name(name), True)
        return await self.redis.run(op)

    async def resume_group(self, name: str) -> bool:
        op = FlowCommands(self.commands).pause_group(check_group_name(name), False)
        return await self.redis.run(op)

    async def groups(self, start: int = 0, stop: int = 99) -> list[GroupInfo]:
        """The groups ranked ``start``..``stop`` (inclusive) by waiting jobs, most first."""
        _total, found = await self.redis.run(FlowCommands(self.commands).groups(start, stop))
        return list(found)

    async def get_group(self, name: str) -> GroupInfo | None:
        return await self.redis.run(FlowCommands(self.commands).group(check_group_name(name)))

    async def group_jobs(self, name: str, start: int = 0, stop: int = 49) -> list[Job]:
        """A group's waiting jobs ranked ``start``..``stop`` (inclusive), next to run first
        (``get_jobs("waiting")`` lists them too, after the jobs without a group)."""
        op = FlowCommands(self.commands).group_job_ids(check_group_name(name), start, stop)
        ids = await self.redis.run(op)
        context = cast("JobContext", self)  # (the Queue this is mixed into is one)
        return await self.redis.run(self.commands.get_jobs(ids, context)) if ids else []

    async def flow_state(self) -> FlowState:
        """The queue's rate limit, hold and group defaults, and whether a limit holds jobs
        back now."""
        return await self.redis.run(FlowCommands(self.commands).flow_state())


class SyncFlowControl:
    """Mixed into ``SyncQueue``: the same methods, blocking."""

    commands: QueueCommands
    if TYPE_CHECKING:

        @property
        def redis(self) -> SyncRedis: ...

    def set_rate_limit(self, limit: RateLimit | None) -> None:
        self.redis.run(_set_rate_limit(self.commands, limit))

    def set_group_defaults(
        self,
        *,
        concurrency: int | None = None,
        rate_limit: RateLimit | None = None,
        weight: int = 1,
        max_size: int | None = None,
    ) -> None:
        self.redis.run(
            _set_group_defaults(self.commands, concurrency, rate_limit, weight, max_size)
        )

    def set_group(
        self,
        name: str,
        *,
        concurrency: int | None = UNSET,
        rate_limit: RateLimit | None = UNSET,
        weight: int = UNSET,
        max_size: int | None = UNSET,
        reset: bool = False,
    ) -> None:
        op = _set_group(self.commands, name, concurrency, rate_limit, weight, max_size, reset)
        self.redis.run(op)

    def pause_group(self, name: str) -> bool:
        op = FlowCommands(self.commands).pause_group(check_group_name(name), True)
        return self.redis.run(op)

    def resume_group(self, name: str) -> bool:
        op = FlowCommands(self.commands).pause_group(check_group_name(name), False)
        return self.redis.run(op)

    def groups(self, start: int = 0, stop: int = 99) -> list[GroupInfo]:
        _total, found = self.redis.run(FlowCommands(self.commands).groups(start, stop))
        return list(found)

    def get_group(self, name: str) -> GroupInfo | None:
        return self.redis.run(FlowCommands(self.commands).group(check_group_name(name)))

    def group_jobs(self, name: str, start: int = 0, stop: int = 49) -> list[Job]:
        op = FlowCommands(self.commands).group_job_ids(check_group_name(name), start, stop)
        ids = self.redis.run(op)
        return self.redis.run(self.commands.get_jobs(ids, None)) if ids else []

    def flow_state(self) -> FlowState:
        return self.redis.run(FlowCommands(self.commands).flow_state())
