"""One frozen settings object; every default lives here, documented beside its field."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from typing import Any

from .errors import ConfigurationError
from .storage.urls import redact_url

__all__ = ["Settings"]

_PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """How Conveyor talks to Redis and what it keeps there.

    Build it from keyword arguments, from a URL (``Settings.from_url``) or from ``CONVEYOR_*``
    environment variables (``Settings.from_env``). Settings are frozen: a running worker's
    configuration cannot drift.
    """

    #: Redis URL: ``redis://``, ``rediss://``, ``unix://``, ``redis+sentinel://`` or
    #: ``redis+cluster://`` (and ``rediss+...`` for TLS); ``storage/urls.py`` spells out each.
    url: str = "redis://localhost:6379/0"
    #: First part of every key: ``<prefix>:{<queue>}:...``.
    prefix: str = "conveyor"
    #: Job data and results larger than this (encoded JSON bytes) are refused.
    max_payload_bytes: int = 512 * 1024
    #: How long a fetched job is leased to its worker before it counts as stalled. Workers renew
    #: leases every third of this, so a worker must be unreachable for the whole period to lose one.
    lease_seconds: float = 30.0
    #: A worker whose liveness beats (sent every eighth of this from a thread of its own, so a
    #: handler blocking the event loop does not stop them) have been silent this long is dead:
    #: another worker hands its jobs back at once, without waiting out their leases. One whose
    #: Redis connections are all gone (the process died) is dead after a quarter of this.
    liveness_seconds: float = 4.0
    #: A job whose lease expires more than this many times fails with reason "stalled".
    max_stalls: int = 2
    #: Completed jobs kept: the newest ``keep_completed`` of them, none older than the age.
    keep_completed: int = 1000
    keep_completed_seconds: float = 24 * 3600.0
    #: Failed jobs kept: the newest ``keep_failed`` of them, none older than the age.
    keep_failed: int = 10_000
    keep_failed_seconds: float = 7 * 24 * 3600.0
    #: Approximate length cap of the per-queue event stream (XADD MAXLEN ~).
    events_max_length: int = 10_000
    #: Log lines kept per job (the oldest are dropped).
    max_log_lines: int = 1000
    #: Per-minute metric buckets are kept this long.
    metrics_retention_seconds: float = 8 * 24 * 3600.0
    #: At most this many jobs are fetched from one queue in one round trip.
    fetch_size: int = 100
    #: Default number of jobs one worker runs at once.
    concurrency: int = 10
    #: On SIGTERM, running jobs get this long to finish before they are handed back.
    shutdown_grace_seconds: float = 30.0
    #: Idle workers wake at least this often (to recover stalled jobs, re-check delayed ones).
    idle_wake_seconds: float = 5.0
    #: With replicas (e.g. Sentinel): ``add`` returns only once this many replicas hold the job
    #: (Redis WAIT), so a failover right after cannot lose it; 0 = do not wait.
    wait_replicas: int = 0
    wait_replicas_timeout_seconds: float = 1.0
    #: Socket connect/read timeout for ordinary commands.
    socket_timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        if not _PREFIX_RE.match(self.prefix):
            raise ConfigurationError(
                f"prefix {self.prefix!r} must be 1-64 characters of letters, digits, '_', '.', "
                "':' or '-', starting with a letter or digit"
            )
        for name in ("max_payload_bytes", "max_log_lines", "fetch_size", "concurrency"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{name} must be at least 1, not {getattr(self, name)}")
        for name in ("keep_completed", "keep_failed", "max_stalls", "wait_replicas"):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"{name} must not be negative, not {getattr(self, name)}")
        if not 0.01 <= self.idle_wake_seconds <= 3600:
            raise ConfigurationError(
                f"idle_wake_seconds must be between 0.01 and 3600, not {self.idle_wake_seconds}"
            )
        if self.liveness_seconds < 0.1:
            raise ConfigurationError(
                f"liveness_seconds must be at least 0.1, not {self.liveness_seconds}"
            )
        if self.lease_seconds < 0.1:
            raise ConfigurationError(
                f"lease_seconds must be at least 0.1, not {self.lease_seconds}"
            )

    @property
    def lease_ms(self) -> int:
        return int(self.lease_seconds * 1000)

    @property
    def liveness_beat_seconds(self) -> float:
        """How often a worker's liveness thread beats (and checks on the other workers)."""
        return self.liveness_seconds / 8

    @property
    def liveness_grace_ms(self) -> int:
        """How long a worker with no connection left may be silent before it counts as dead:
        two beats, so a live worker whose connection was just reset has reconnected by then."""
        return int(self.liveness_seconds * 1000 / 4)

    @property
    def liveness_ms(self) -> int:
        return int(self.liveness_seconds * 1000)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> Settings:
        return cls(url=url, **overrides)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read ``CONVEYOR_<FIELD>`` variables (and ``REDIS_URL`` for the URL)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        if "REDIS_URL" in env:
            values["url"] = env["REDIS_URL"]
        for field in dataclasses.fields(cls):
            raw = env.get(f"CONVEYOR_{field.name.upper()}")
            if raw is None:
                continue
            kind: Any = type(field.default)
            try:
                values[field.name] = kind(raw) if kind is not str else raw
            except ValueError as exc:
                raise ConfigurationError(
                    f"CONVEYOR_{field.name.upper()}={raw!r} is not a valid {kind.__name__}"
                ) from exc
        values.update(overrides)
        return cls(**values)

    def redacted_url(self) -> str:
        """The URL with every secret replaced by ``***``: what banners, logs, errors and the API
        show of it."""
        return redact_url(self.url)

    def __repr__(self) -> str:
        # The generated repr would print the URL's password; every field but the URL is plain.
        fields = [f"url={self.redacted_url()!r}"] + [
            f"{field.name}={getattr(self, field.name)!r}"
            for field in dataclasses.fields(self)
            if field.name != "url"
        ]
        return f"Settings({', '.join(fields)})"
