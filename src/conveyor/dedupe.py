"""Dedup modes of ``add`` beyond ``job_id`` (pure): what a producer asks for with
``dedupe=Dedupe.until_finished(key)``, ``Dedupe.throttle(key, ttl)`` or
``Dedupe.debounce(key, delay)``. The add script (storage/lua/add_deduped.lua) applies them.

- ``until_finished``: one live job per key. While the job added under the key waits, is
  delayed or runs, an add with the key returns that job; once it finished, an add makes a new
  one. (The key's record expires ``UNTIL_FINISHED_SECONDS`` after the last add with it.)
- ``throttle``: the first add makes a job; repeats within ``ttl`` seconds of it return that
  job, whether or not it has finished.
- ``debounce``: the job runs ``delay`` seconds after the last add with the key: each add while
  it is still delayed replaces its data (the last add wins) and restarts the timer, so a burst
  of adds runs once per quiet period.

An add that deduplicates returns the existing job with ``job.deduplicated`` set, and writes a
"deduplicated" event. Keys live in the queue's hash slot and expire.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Literal

from .errors import ConfigurationError
from .limits import MAX_SECONDS, MAX_TEXT

__all__ = [
    "DEBOUNCE_KEY_GRACE_SECONDS",
    "MODE_SECONDS",
    "UNTIL_FINISHED_SECONDS",
    "Dedupe",
    "DedupeMode",
]

DedupeMode = Literal["until_finished", "throttle", "debounce"]
#: Each mode, and the name of the seconds its constructor takes after the key (None: only the
#: key). The HTTP API's ``dedupe`` option is built from this.
MODE_SECONDS: dict[DedupeMode, str | None] = {
    "until_finished": None,
    "throttle": "ttl",
    "debounce": "delay",
}
#: How long an ``until_finished`` key is remembered after the last add with it (a job still
#: unfinished after that is no longer found by its key).
UNTIL_FINISHED_SECONDS = 7 * 24 * 3600
#: A ``debounce`` key outlives its job's run-at by this much (so an add just as the job starts
#: still finds the record, sees the job is no longer delayed and makes a new one).
DEBOUNCE_KEY_GRACE_SECONDS = 60


def _key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise ConfigurationError(f"a dedupe key must be a non-empty string, not {key!r}")
    if len(key) > MAX_TEXT or not key.isprintable():
        raise ConfigurationError(
            f"dedupe key {key[:40]!r} must be printable, at most {MAX_TEXT} characters"
        )
    return key


def _seconds(what: str, value: object) -> float:
    if isinstance(value, dt.timedelta):
        value = value.total_seconds()
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ConfigurationError(f"{what} must be a number of seconds, not {value!r}")
    if not 0 < value <= MAX_SECONDS:
        raise ConfigurationError(f"{what} must be positive and at most {MAX_SECONDS} s")
    if value < 0.001:
        raise ConfigurationError(f"{what} must be at least 1 ms, not {value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True, slots=True)
class Dedupe:
    """How ``add`` deduplicates; make one with the class methods."""

    mode: DedupeMode
    key: str
    #: throttle: the ttl; debounce: the delay; until_finished: how long the key is kept.
    seconds: float

    @classmethod
    def until_finished(cls, key: str) -> Dedupe:
        """One live (waiting, delayed or running) job per key."""
        return cls("until_finished", _key(key), float(UNTIL_FINISHED_SECONDS))

    @classmethod
    def throttle(cls, key: str, ttl: float | dt.timedelta) -> Dedupe:
        """Repeats within ``ttl`` seconds of the first add return its job."""
        return cls("throttle", _key(key), _seconds("throttle ttl", ttl))

    @classmethod
    def debounce(cls, key: str, delay: float | dt.timedelta) -> Dedupe:
        """Run ``delay`` seconds after the last add; the last add's data wins."""
        return cls("debounce", _key(key), _seconds("debounce delay", delay))

    @property
    def window_ms(self) -> int:
        return max(int(self.seconds * 1000), 1)

    @property
    def key_ttl_ms(self) -> int:
        """How long the key's record lives (Redis PX)."""
        if self.mode == "debounce":
            return self.window_ms + DEBOUNCE_KEY_GRACE_SECONDS * 1000
        return self.window_ms
