"""Flow control, the pure part: rate limits, group settings and what a group looks like.

Limits are enforced inside the fetch script (``storage/lua/includes/flow_fetch.lua``) for every
worker of the queue at once: a job over a limit stays waiting (never failed, no attempt used).
The Queue methods are in ``flow_api``; the Redis side in ``storage/flow.py``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError, ConveyorError
from .limits import MAX_SECONDS, MAX_TEXT

if TYPE_CHECKING:
    from .job import Job

__all__ = [
    "MAX_GROUP_WEIGHT",
    "GroupFull",
    "GroupInfo",
    "RateLimit",
    "RateLimited",
    "check_group_name",
]

#: Highest group weight: a turn of the round robin hands out at most this many of its jobs.
MAX_GROUP_WEIGHT = 10_000
#: Most starts a rate limit may allow per window (the window keeps one entry per start).
MAX_RATE = 1_000_000_000


class GroupFull(ConveyorError):
    """An add would take a group past its ``max_size``; nothing was added, except by an
    ``add_bulk`` that mixes dedup modes (``dedupe=``) with groups: its jobs go in several steps,
    and those of the other steps are added. Then ``added`` holds, job by job in the call's
    order, the job each add made or found (None for those refused), and ``refusals`` the
    error of each refused add's own step (None for those added)."""

    code = "group_full"

    def __init__(self, message: str, group: str, max_size: int) -> None:
        super().__init__(message)
        self.group = group
        self.max_size = max_size
        self.added: list[Job | None] | None = None
        self.refusals: list[GroupFull | None] | None = None


class RateLimited(Exception):
    """Raised by a handler when a remote service said "too many requests": the job goes back
    to waiting without using an attempt, and its group (or, for a job without one, the jobs
    without a group: the groups keep their turns) gets no job handed out for ``delay``
    seconds."""

    def __init__(self, delay: float = 1.0) -> None:
        if isinstance(delay, dt.timedelta):
            delay = delay.total_seconds()
        if (
            not isinstance(delay, int | float)
            or isinstance(delay, bool)
            or not math.isfinite(delay)
            or not 0 < delay <= MAX_SECONDS
        ):
            raise ConfigurationError(
                f"RateLimited delay must be a positive number of seconds, not {delay!r}"
            )
        super().__init__(f"rate limited: held for {delay:g} s")
        self.delay = float(delay)

    def __reduce__(self) -> tuple[type[RateLimited], tuple[float]]:
        # Rebuilt from its delay: an isolated job's child process sends it back pickled.
        return (RateLimited, (self.delay,))


@dataclasses.dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``limit`` jobs start in any window of ``per`` seconds (a sliding window)."""

    limit: int
    per: float = 1.0

    def __post_init__(self) -> None:
        if (
            not isinstance(self.limit, int)
            or isinstance(self.limit, bool)
            or not 1 <= self.limit <= MAX_RATE
        ):
            raise ConfigurationError(
                f"RateLimit needs a whole number of jobs from 1 to {MAX_RATE}, not {self.limit!r}"
            )
        per = self.per
        if (
            not isinstance(per, int | float)
            or isinstance(per, bool)
            or not math.isfinite(per)
            or not 0.001 <= per <= MAX_SECONDS
        ):
            raise ConfigurationError(
                f"RateLimit per must be a number of seconds from 0.001 to {MAX_SECONDS}, "
                f"not {per!r}"
            )

    @property
    def per_ms(self) -> int:
        return max(round(self.per * 1000), 1)

    def __str__(self) -> str:
        return f"{self.limit}/{self.per:g}s"

    def to_dict(self) -> dict[str, Any]:
        return {"limit": self.limit, "per": self.per}

    @classmethod
    def from_stored(cls, n: str | None, per_ms: str | None) -> RateLimit | None:
        """The limit as the scripts store it (N and PER in ms), or None."""
        if not n or not per_ms or int(n) <= 0:
            return None
        return cls(int(n), int(per_ms) / 1000)


def check_group_name(group: object) -> str:
    if not isinstance(group, str) or not group:
        raise ConfigurationError(f"group must be a non-empty string, not {group!r}")
    if len(group) > MAX_TEXT:
        raise ConfigurationError(f"group is {len(group)} characters long (at most {MAX_TEXT})")
    if not group.isprintable():
        raise ConfigurationError(f"group {group[:40]!r} contains unprintable characters")
    return group


def check_concurrency(value: object) -> int:
    """``None`` (no limit) as 0, or a positive whole number."""
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigurationError(
            f"concurrency must be a positive whole number or None, not {value!r}"
        )
    return value


def check_weight(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_GROUP_WEIGHT:
        raise ConfigurationError(
            f"weight must be a whole number from 1 to {MAX_GROUP_WEIGHT}, not {value!r}"
        )
    return value


def check_max_size(value: object) -> int:
    """``None`` (no limit) as 0, or a positive whole number."""
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigurationError(f"max_size must be a positive whole number or None, not {value!r}")
    return value


def check_rate_limit(value: object) -> RateLimit | None:
    if value is not None and not isinstance(value, RateLimit):
        raise ConfigurationError(f"rate_limit must be a RateLimit or None, not {value!r}")
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class GroupInfo:
    """One group of a queue as ``Queue.groups()`` lists it: its counts and the limits that
    apply to it (its own, or the defaults)."""

    name: str
    waiting: int
    active: int
    paused: bool
    concurrency: int | None
    rate_limit: RateLimit | None
    weight: int
    max_size: int | None
    #: Until when (epoch ms) a RateLimited hold keeps it back, or None.
    held_until: int | None = None
    #: The settings it has of its own (the others come from the defaults).
    overrides: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "waiting": self.waiting,
            "active": self.active,
            "paused": self.paused,
            "concurrency": self.concurrency,
            "rate_limit": self.rate_limit.to_dict() if self.rate_limit else None,
            "weight": self.weight,
            "max_size": self.max_size,
            "held_until": self.held_until,
            "overrides": list(self.overrides),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class FlowState:
    """The queue-wide flow control: its rate limit, a hold, and the group defaults."""

    rate_limit: RateLimit | None
    #: Until when (epoch ms) a RateLimited hold keeps the jobs without a group back, or None.
    held_until: int | None
    #: When the queue's rate window lets the next job out (epoch ms), when it is full now.
    limited_until: int | None
    group_defaults: GroupInfo
    #: Grouped jobs waiting, all groups.
    grouped_waiting: int
    groups: int

    def to_dict(self) -> dict[str, Any]:
        defaults = self.group_defaults
        return {
            "rate_limit": self.rate_limit.to_dict() if self.rate_limit else None,
            "held_until": self.held_until,
            "limited_until": self.limited_until,
            "group_defaults": {
                "concurrency": defaults.concurrency,
                "rate_limit": defaults.rate_limit.to_dict() if defaults.rate_limit else None,
                "weight": defaults.weight,
                "max_size": defaults.max_size,
            },
            "grouped_waiting": self.grouped_waiting,
            "groups": self.groups,
        }
