"""Retry backoff policies: pure functions of the attempt number."""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ConfigurationError

__all__ = ["EXPONENTIAL_DELAY", "EXPONENTIAL_MAX_DELAY", "Backoff", "BackoffStrategy"]

#: ``Backoff.exponential``'s defaults: the first retry's delay and the cap, in seconds.
EXPONENTIAL_DELAY = 1.0
EXPONENTIAL_MAX_DELAY = 3600.0

#: A custom strategy: (attempt number that just failed, 1-based; the error) -> delay in seconds.
BackoffStrategy = Callable[[int, BaseException], float]


@dataclasses.dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait before the next attempt of a failed job.

    * ``Backoff.fixed(60)``: always 60 s.
    * ``Backoff.exponential(1.0, max_delay=3600, jitter=0.2)``: 1, 2, 4, 8 ... s, capped, each
      delay drawn uniformly from ``[(1 - jitter) * d, d]`` so a burst of failures spreads out.
    * ``Backoff.custom("name")``: a strategy registered on the worker under that name.
    """

    kind: str
    delay: float = 0.0
    max_delay: float | None = None
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.delay < 0:
            raise ConfigurationError(f"backoff delay must not be negative, not {self.delay}")
        if not 0.0 <= self.jitter <= 1.0:
            raise ConfigurationError(f"backoff jitter must be between 0 and 1, not {self.jitter}")
        if self.max_delay is not None and self.max_delay < 0:
            raise ConfigurationError(f"backoff max_delay must not be negative: {self.max_delay}")
        if not self.kind:
            raise ConfigurationError("backoff kind must not be empty")

    @classmethod
    def fixed(cls, delay: float, *, jitter: float = 0.0) -> Backoff:
        return cls("fixed", float(delay), None, jitter)

    @classmethod
    def exponential(
        cls,
        delay: float = EXPONENTIAL_DELAY,
        *,
        max_delay: float | None = EXPONENTIAL_MAX_DELAY,
        jitter: float = 0.0,
    ) -> Backoff:
        return cls("exponential", float(delay), max_delay, jitter)

    @classmethod
    def custom(cls, name: str) -> Backoff:
        if name in ("fixed", "exponential"):
            raise ConfigurationError(f"{name!r} is a built-in backoff; use Backoff.{name}()")
        return cls(name)

    def seconds(
        self,
        attempt: int,
        error: BaseException | None = None,
        strategies: Mapping[str, BackoffStrategy] | None = None,
        rng: random.Random | None = None,
    ) -> float:
        """Delay after the given failed attempt (1 = the first attempt failed)."""
        if self.kind == "fixed":
            base = self.delay
        elif self.kind == "exponential":
            base = self.delay * (2.0 ** max(attempt - 1, 0))
        else:
            strategy = (strategies or {}).get(self.kind)
            if strategy is None:
                raise ConfigurationError(
                    f"no backoff strategy named {self.kind!r} is registered on this worker"
                )
            base = float(strategy(attempt, error or Exception("unknown error")))
        if self.max_delay is not None:
            base = min(base, self.max_delay)
        if self.jitter:
            base *= 1.0 - (rng or random).random() * self.jitter
        return max(base, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "delay": self.delay,
            "max_delay": self.max_delay,
            "jitter": self.jitter,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Backoff:
        try:
            return _parsed((raw["kind"], raw.get("delay"), raw.get("max_delay"), raw.get("jitter")))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"invalid backoff {dict(raw)!r}: {exc}") from exc

    def to_stored(self) -> list[Any]:
        """As a job's options store it: ``[kind, delay, max_delay, jitter]`` without the
        trailing defaults. Short, so that the job's hash stays within Redis's compact encoding
        (a value over 64 bytes, as the dict form was, turns the hash into a hash table of
        several times the memory)."""
        stored: list[Any] = [self.kind, self.delay, self.max_delay, self.jitter]
        while len(stored) > 1 and stored[-1] == _STORED_DEFAULTS[len(stored) - 1]:
            stored.pop()
        return stored

    @classmethod
    def from_stored(cls, raw: Any) -> Backoff:
        """From a job's stored options: ``to_stored``'s list, or the dict earlier versions
        stored (``to_dict``'s)."""
        # The list first: a worker reads one per job, and isinstance of an ABC is slow.
        if not isinstance(raw, list) and isinstance(raw, Mapping):
            return cls.from_dict(raw)
        try:
            if not isinstance(raw, list) or not 1 <= len(raw) <= len(_STORED_DEFAULTS):
                raise ValueError("not a list of 1 to 4 items")
            return _parsed(tuple(raw) + _STORED_DEFAULTS[len(raw) :])
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"invalid backoff {raw!r}: {exc}") from exc


#: to_stored's items past the kind, at their defaults (the kind's slot is never left out)
_STORED_DEFAULTS: tuple[Any, ...] = (None, 0.0, None, 0.0)


@functools.lru_cache(maxsize=256)
def _parsed(fields: tuple[Any, Any, Any, Any]) -> Backoff:
    """A stored backoff's object, built once per distinct policy: a worker reads one from
    every job that has one, and most jobs of a queue share a handful (it is immutable)."""
    kind, delay, max_delay, jitter = fields
    return Backoff(
        str(kind),
        float(delay or 0.0),
        None if max_delay is None else float(max_delay),
        float(jitter or 0.0),
    )
