"""Validation of what a producer passes to ``add``: one function shared by Queue and SyncQueue."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import time
from collections.abc import Mapping
from typing import Any, Literal

import orjson

from . import serializer
from .backoff import Backoff
from .dedupe import Dedupe
from .errors import ConfigurationError
from .limits import MAX_ATTEMPTS, MAX_PRIORITY, MAX_SECONDS, MAX_TEXT
from .settings import Settings
from .storage.commands import AddSpec

__all__ = [
    "JOB_OPTIONS",
    "OPTION_NAMES",
    "JobOption",
    "build_spec",
    "check_text",
    "default_spec",
    "spec_from_mapping",
]

#: What an option holds: a whole number, a number of seconds, a short text, a ``Backoff``, or a
#: point in time (a timezone-aware datetime or epoch seconds).
OptionKind = Literal["integer", "seconds", "text", "backoff", "time"]


@dataclasses.dataclass(frozen=True, slots=True)
class JobOption:
    """One option of ``Queue.add``: its kind and bounds, for the checks here and for the HTTP
    API's request parser and OpenAPI document, which are built from this table."""

    name: str
    kind: OptionKind
    low: float | None = None
    high: float | None = None
    #: The low bound itself is refused (a timeout must be positive, not zero).
    low_excluded: bool = False
    description: str = ""


JOB_OPTIONS: dict[str, JobOption] = {
    option.name: option
    for option in (
        JobOption(
            "attempts", "integer", 1, MAX_ATTEMPTS, description="runs at most, retries included"
        ),
        JobOption("backoff", "backoff", description="delay before each retry"),
        JobOption("delay", "seconds", 0, MAX_SECONDS, description="seconds before it may run"),
        JobOption(
            "run_at",
            "time",
            description="when to run (instead of delay); a time in the past runs at once; at "
            "most 10 years ahead",
        ),
        JobOption("priority", "integer", -MAX_PRIORITY, MAX_PRIORITY, description="higher first"),
        JobOption(
            "job_id", "text", 1, MAX_TEXT, description="adding an existing id returns that job"
        ),
        JobOption(
            "timeout",
            "seconds",
            0,
            MAX_SECONDS,
            low_excluded=True,
            description="seconds per attempt",
        ),
        JobOption(
            "ttl",
            "seconds",
            0,
            MAX_SECONDS,
            low_excluded=True,
            description="seconds from runnable to started, or it fails as expired",
        ),
        # Flow control (see flow_control): jobs of one group share its limits.
        JobOption(
            "group", "text", 1, MAX_TEXT, description="flow control group (shares its limits)"
        ),
    )
}
OPTION_NAMES = frozenset(JOB_OPTIONS)
_DELAY = JOB_OPTIONS["delay"]
_YEAR = 365 * 24 * 3600


def _whole_bounds(option: JobOption) -> tuple[int, int]:
    assert option.low is not None and option.high is not None, option
    return int(option.low), int(option.high)


def check_text(what: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{what} must be a non-empty string, not {value!r}")
    if len(value) > MAX_TEXT:
        raise ConfigurationError(f"{what} is {len(value)} characters long (at most {MAX_TEXT})")
    if not value.isprintable():
        raise ConfigurationError(
            f"{what} {value[:40]!r} contains control characters (or other unprintable ones)"
        )
    return value


def _seconds(option: JobOption, value: object, what: str = "") -> float | None:
    """A number of seconds (or a timedelta) within the option's bounds."""
    what = what or option.name
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        value = value.total_seconds()
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ConfigurationError(f"{what} must be a finite number of seconds, not {value!r}")
    if option.high is not None and value > option.high:
        years = option.high / _YEAR
        raise ConfigurationError(
            f"{what} must be at most {option.high:.0f} s ({years:g} years), not {value}"
        )
    low = option.low or 0.0
    if value < low or (value == low and option.low_excluded):
        raise ConfigurationError(f"{what} must be positive, not {value!r}")
    return float(value)


def _delay_ms(delay: object, run_at: object) -> int:
    if delay is not None and run_at is not None:
        raise ConfigurationError("give either delay or run_at, not both")
    if run_at is not None:
        if isinstance(run_at, dt.datetime):
            if run_at.tzinfo is None:
                raise ConfigurationError("run_at must be timezone-aware (e.g. datetime.now(UTC))")
            run_at = run_at.timestamp()
        if not isinstance(run_at, int | float) or isinstance(run_at, bool):
            raise ConfigurationError(f"run_at must be a datetime or epoch seconds, not {run_at!r}")
        # run_at is the producer's wall-clock notion of time; delays after that use Redis time.
        delay = max(run_at - time.time(), 0.0) if math.isfinite(run_at) else run_at
        seconds = _seconds(_DELAY, delay, "run_at (seconds from now)") or 0.0
        return int(seconds * 1000)
    seconds = _seconds(_DELAY, delay) or 0.0
    return int(seconds * 1000)


def default_spec(settings: Settings, name: str, data: Any = None) -> AddSpec:
    """``build_spec`` for a job with every option at its default (most adds, and every entry
    of a plain bulk add): there is nothing else to check."""
    check_text("job name", name)
    return AddSpec(name, serializer.encode(data, settings.max_payload_bytes), "{}", 1, 0, 0, 0)


def build_spec(
    settings: Settings,
    name: str,
    data: Any = None,
    *,
    attempts: int = 1,
    backoff: Backoff | None = None,
    delay: float | dt.timedelta | None = None,
    run_at: dt.datetime | float | None = None,
    priority: int = 0,
    job_id: str | None = None,
    timeout: float | dt.timedelta | None = None,
    ttl: float | dt.timedelta | None = None,
    dedupe: Dedupe | None = None,
    group: str | None = None,
) -> AddSpec:
    """Validate and encode one job; raises before anything reaches Redis."""
    if (
        type(attempts) is int
        and attempts == 1
        and type(priority) is int
        and priority == 0
        and backoff is None
        and delay is None
        and run_at is None
        and job_id is None
        and timeout is None
        and ttl is None
        and dedupe is None
        and group is None
    ):
        return default_spec(settings, name, data)
    check_text("job name", name)
    if job_id is not None:
        check_text("job_id", job_id)
        if "/" in job_id:  # the API addresses a job as .../jobs/{id}: one path segment
            raise ConfigurationError(f"job_id {job_id[:40]!r} must not contain '/'")
    low, high = _whole_bounds(JOB_OPTIONS["attempts"])
    if not isinstance(attempts, int) or isinstance(attempts, bool) or not low <= attempts <= high:
        raise ConfigurationError(
            f"attempts must be an integer from {low} to {high}, not {attempts!r}"
        )
    low, high = _whole_bounds(JOB_OPTIONS["priority"])
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise ConfigurationError(f"priority must be an integer, not {priority!r}")
    if not low <= priority <= high:
        raise ConfigurationError(f"priority must be between {low} and {high}, not {priority}")
    if backoff is not None and not isinstance(backoff, Backoff):
        raise ConfigurationError(f"backoff must be a Backoff, not {backoff!r}")
    timeout_s = _seconds(JOB_OPTIONS["timeout"], timeout)
    ttl_s = _seconds(JOB_OPTIONS["ttl"], ttl)
    opts: dict[str, Any] = {}
    if backoff is not None:
        opts["backoff"] = backoff.to_stored()
    if timeout_s is not None:
        opts["timeout"] = timeout_s
    if ttl_s is not None:
        opts["ttl"] = ttl_s
    deduped = None
    if dedupe is not None:  # dedup modes (conveyor.dedupe)
        deduped, delay = _dedupe(dedupe, delay, run_at, job_id)
    if group is not None:
        opts["group"] = check_text("group", group)  # flow control
    return AddSpec(
        name=name,
        data=serializer.encode(data, settings.max_payload_bytes),
        opts=orjson.dumps(opts).decode() if opts else "{}",
        attempts=attempts,
        priority=priority,
        delay_ms=_delay_ms(delay, run_at),
        ttl_ms=int(ttl_s * 1000) if ttl_s else 0,
        job_id=job_id or "",
        dedupe=deduped,
        group=group or "",
    )


def _dedupe(
    dedupe: object, delay: float | dt.timedelta | None, run_at: object, job_id: object
) -> tuple[tuple[str, str, int, int], float | dt.timedelta | None]:
    """The encoded dedup mode, and the delay (a debounced job waits its quiet period)."""
    if not isinstance(dedupe, Dedupe):
        raise ConfigurationError(
            f"dedupe must be a Dedupe (e.g. Dedupe.throttle(...)), not {dedupe!r}"
        )
    if job_id is not None:
        raise ConfigurationError("give either job_id or dedupe, not both")
    if dedupe.mode == "debounce":
        if delay is not None or run_at is not None:
            raise ConfigurationError(
                "a debounced job runs its delay after the last add: give no delay or run_at"
            )
        delay = dedupe.seconds
    return (dedupe.mode, dedupe.key, dedupe.window_ms, dedupe.key_ttl_ms), delay


def spec_from_mapping(settings: Settings, item: Mapping[str, Any]) -> AddSpec:
    """One entry of ``add_bulk``: ``{"name", "data", **options}`` or with ``"options": {...}``."""
    if not isinstance(item, Mapping) or "name" not in item:
        raise ConfigurationError(f"each bulk entry must be a mapping with a 'name', not {item!r}")
    if len(item) == 1 or (len(item) == 2 and "data" in item):  # the common case: no options
        return default_spec(settings, item["name"], item.get("data"))
    options = dict(item.get("options") or {})
    options.update({k: v for k, v in item.items() if k not in ("name", "data", "options")})
    unknown = set(options) - OPTION_NAMES - {"dedupe"}  # (dedupe: not an option of the API)
    if unknown:
        raise ConfigurationError(f"unknown job options {sorted(unknown)} in bulk entry")
    return build_spec(settings, item["name"], item.get("data"), **options)
