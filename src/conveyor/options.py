"""Validation of what a producer passes to ``add``: one function shared by Queue and SyncQueue."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Mapping
from typing import Any

import orjson

from . import serializer
from .backoff import Backoff
from .errors import ConfigurationError
from .settings import Settings
from .storage.commands import AddSpec

__all__ = ["OPTION_NAMES", "build_spec", "spec_from_mapping"]

OPTION_NAMES = frozenset(
    {"attempts", "backoff", "delay", "run_at", "priority", "job_id", "timeout", "ttl"}
)
MAX_PRIORITY = 1000
_MAX_TEXT = 256
_MAX_SECONDS = 10 * 365 * 24 * 3600


def _check_text(what: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{what} must be a non-empty string, not {value!r}")
    if len(value) > _MAX_TEXT:
        raise ConfigurationError(f"{what} is {len(value)} characters long (at most {_MAX_TEXT})")
    if not value.isprintable():
        raise ConfigurationError(
            f"{what} {value[:40]!r} contains control characters (or other unprintable ones)"
        )
    return value


def _seconds(what: str, value: object, *, allow_zero: bool = True) -> float | None:
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        value = value.total_seconds()
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ConfigurationError(f"{what} must be a finite number of seconds, not {value!r}")
    if value > _MAX_SECONDS:
        raise ConfigurationError(f"{what} must be at most {_MAX_SECONDS} s (10 years), not {value}")
    if value < 0 or (value == 0 and not allow_zero):
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
        seconds = _seconds("run_at (seconds from now)", delay) or 0.0
        return int(seconds * 1000)
    seconds = _seconds("delay", delay) or 0.0
    return int(seconds * 1000)


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
) -> AddSpec:
    """Validate and encode one job; raises before anything reaches Redis."""
    _check_text("job name", name)
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
    ):
        # Every option at its default (most jobs, and every entry of a plain bulk add): there
        # is nothing else to check.
        data_json = serializer.encode(data, settings.max_payload_bytes)
        return AddSpec(name, data_json, "{}", 1, 0, 0, 0)
    if job_id is not None:
        _check_text("job_id", job_id)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or not 1 <= attempts <= 10_000:
        raise ConfigurationError(f"attempts must be an integer from 1 to 10000, not {attempts!r}")
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise ConfigurationError(f"priority must be an integer, not {priority!r}")
    if not -MAX_PRIORITY <= priority <= MAX_PRIORITY:
        raise ConfigurationError(
            f"priority must be between {-MAX_PRIORITY} and {MAX_PRIORITY}, not {priority}"
        )
    if backoff is not None and not isinstance(backoff, Backoff):
        raise ConfigurationError(f"backoff must be a Backoff, not {backoff!r}")
    timeout_s = _seconds("timeout", timeout, allow_zero=False)
    ttl_s = _seconds("ttl", ttl, allow_zero=False)
    opts: dict[str, Any] = {}
    if backoff is not None:
        opts["backoff"] = backoff.to_dict()
    if timeout_s is not None:
        opts["timeout"] = timeout_s
    if ttl_s is not None:
        opts["ttl"] = ttl_s
    return AddSpec(
        name=name,
        data=serializer.encode(data, settings.max_payload_bytes),
        opts=orjson.dumps(opts).decode() if opts else "{}",
        attempts=attempts,
        priority=priority,
        delay_ms=_delay_ms(delay, run_at),
        ttl_ms=int(ttl_s * 1000) if ttl_s else 0,
        job_id=job_id or "",
    )


def spec_from_mapping(settings: Settings, item: Mapping[str, Any]) -> AddSpec:
    """One entry of ``add_bulk``: ``{"name", "data", **options}`` or with ``"options": {...}``."""
    if not isinstance(item, Mapping) or "name" not in item:
        raise ConfigurationError(f"each bulk entry must be a mapping with a 'name', not {item!r}")
    if len(item) == 1 or (len(item) == 2 and "data" in item):  # the common case: no options
        return build_spec(settings, item["name"], item.get("data"))
    options = dict(item.get("options") or {})
    options.update({k: v for k, v in item.items() if k not in ("name", "data", "options")})
    unknown = set(options) - OPTION_NAMES
    if unknown:
        raise ConfigurationError(f"unknown job options {sorted(unknown)} in bulk entry")
    return build_spec(settings, item["name"], item.get("data"), **options)
