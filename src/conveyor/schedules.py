"""Job schedulers: the timetable maths, pure (no I/O).

A schedule is a job template plus a timetable: a cron expression in a time zone (evaluated by
the maintained ``cronsim`` library through ``zoneinfo``, which runs a daily 02:30 once on both
DST days, as cron does) or ``every`` N seconds (ticks at whole multiples of N from ``start_at``,
or from the epoch, so every process computes the same ticks). Times here are milliseconds since
the epoch; Redis's clock decides which tick is due (storage/lua/fire_schedule.lua).

What a worker does with a due tick is decided by ``plan_tick``: fire it, skip it (a misfire
after downtime) and where the timetable goes next. The storage script then fires and advances
in one atomic step, only if the stored next run is still the one this plan was made from.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from .errors import ConfigurationError
from .limits import MAX_SECONDS, MAX_TEXT

__all__ = [
    "MAX_MISFIRE_GRACE_SECONDS",
    "MIN_MISFIRE_GRACE_SECONDS",
    "MISFIRE_GRACE_MS",
    "MISFIRE_POLICIES",
    "Misfire",
    "Schedule",
    "TickPlan",
    "Timetable",
    "check_misfire_grace",
    "check_schedule_id",
    "misfire_grace_ms",
    "plan_tick",
    "tick_job_id",
]

Misfire = Literal["skip", "run_once"]
MISFIRE_POLICIES: tuple[Misfire, ...] = ("skip", "run_once")
#: A tick this late (ms, by Redis's clock) was missed (no worker ran, or Redis was down), and
#: the schedule's misfire policy decides; a tick less late than this fires as usual. The
#: default of a schedule's ``misfire_grace`` (seconds).
MISFIRE_GRACE_MS = 5_000
#: The shortest ``misfire_grace``: a worker's schedule duty runs every 0.5 s (give or take
#: 10 %), so a grace under a second would call ticks fired on time missed.
MIN_MISFIRE_GRACE_SECONDS = 1.0
#: The longest: ten years, as for delays (a grace that long runs every late tick).
MAX_MISFIRE_GRACE_SECONDS = float(MAX_SECONDS)
#: The shortest ``every`` (seconds).
MIN_EVERY_SECONDS = 1.0
#: The longest ``every``: ten years, as for delays.
MAX_EVERY_SECONDS = 10 * 365 * 24 * 3600.0
#: The latest ``start_at``/``end_at`` (9999-12-31 23:59:59 UTC), and the most runs ``limit``
#: may ask for.
MAX_EPOCH_SECONDS = 253_402_300_799
MAX_LIMIT = 1_000_000_000
#: The shorthands cron understands, spelled out (cronsim takes only the five fields).
_CRON_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def check_schedule_id(schedule_id: object) -> str:
    """A schedule id: printable text without '/' (the API addresses it as one path segment)."""
    if not isinstance(schedule_id, str) or not schedule_id:
        raise ConfigurationError(f"schedule id must be a non-empty string, not {schedule_id!r}")
    if len(schedule_id) > MAX_TEXT:
        raise ConfigurationError(
            f"schedule id is {len(schedule_id)} characters long (at most {MAX_TEXT})"
        )
    if not schedule_id.isprintable() or "/" in schedule_id:
        raise ConfigurationError(
            f"schedule id {schedule_id[:40]!r} must be printable and must not contain '/'"
        )
    return schedule_id


def check_misfire_grace(value: object) -> float:
    """``misfire_grace`` in seconds (a number or a timedelta), validated."""
    if isinstance(value, dt.timedelta):
        value = value.total_seconds()
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ConfigurationError(f"misfire_grace must be a number of seconds, not {value!r}")
    if not MIN_MISFIRE_GRACE_SECONDS <= value <= MAX_MISFIRE_GRACE_SECONDS:
        raise ConfigurationError(
            f"misfire_grace must be from {MIN_MISFIRE_GRACE_SECONDS:g} s to "
            f"{MAX_MISFIRE_GRACE_SECONDS:.0f} s, not {value!r}"
        )
    return float(value)


def misfire_grace_ms(definition: Mapping[str, Any]) -> int:
    """The misfire grace of a stored definition (ms); the default for one stored without it."""
    grace = definition.get("misfire_grace")
    return MISFIRE_GRACE_MS if grace is None else int(float(grace) * 1000)


def tick_job_id(schedule_id: str, tick_ms: int) -> str:
    """The id of the job a tick makes: the same for every worker that fires it, so a tick can
    only ever add one job (add's EXISTS check is the second guard after the timetable's)."""
    return f"schedule:{schedule_id}:{tick_ms}"


def _to_ms(what: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ConfigurationError(f"{what} must be timezone-aware (e.g. datetime.now(UTC))")
        value = value.timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        if not 0 <= value <= MAX_EPOCH_SECONDS:
            raise ConfigurationError(f"{what} must be between 1970 and 9999, not {value!r}")
        return int(value * 1000)
    raise ConfigurationError(f"{what} must be a datetime or epoch seconds, not {value!r}")


def _zone(tz: object) -> ZoneInfo:
    if not isinstance(tz, str) or not tz:
        raise ConfigurationError(f"tz must be a time zone name such as 'Europe/Berlin', not {tz!r}")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"unknown time zone {tz!r} (use an IANA name such as 'UTC')"
        ) from None


@dataclasses.dataclass(frozen=True, slots=True)
class Timetable:
    """When a schedule's ticks fall. Build it with ``Timetable.build`` (which validates)."""

    cron: str | None = None
    #: Seconds between ticks (for ``every`` schedules).
    every: float | None = None
    tz: str = "UTC"
    start_ms: int | None = None
    end_ms: int | None = None
    #: How many runs at most (None: no limit).
    limit: int | None = None

    @classmethod
    def build(
        cls,
        *,
        cron: str | None = None,
        every: float | dt.timedelta | None = None,
        tz: str | None = None,
        start_at: dt.datetime | float | None = None,
        end_at: dt.datetime | float | None = None,
        limit: int | None = None,
    ) -> Timetable:
        if (cron is None) == (every is None):
            raise ConfigurationError("give a schedule either cron= or every=, not both or neither")
        zone = _zone(tz if tz is not None else "UTC")
        if cron is not None:
            if not isinstance(cron, str) or not cron.strip():
                raise ConfigurationError(f"cron must be a cron expression, not {cron!r}")
            if tz is None:
                tz = "UTC"
            expression = _CRON_ALIASES.get(cron.strip().lower(), cron.strip())
            try:
                CronSim(expression, dt.datetime.now(zone))
            except CronSimError as exc:
                raise ConfigurationError(f"malformed cron expression {cron!r}: {exc}") from None
        else:
            if tz is not None:
                raise ConfigurationError("tz applies to cron schedules; every= counts seconds")
            if isinstance(every, dt.timedelta):
                every = every.total_seconds()
            if not isinstance(every, int | float) or isinstance(every, bool):
                raise ConfigurationError(f"every must be a number of seconds, not {every!r}")
            if not math.isfinite(every) or every < MIN_EVERY_SECONDS:
                raise ConfigurationError(
                    f"every must be at least {MIN_EVERY_SECONDS:g} s, not {every!r}"
                )
            if every > MAX_EVERY_SECONDS:
                raise ConfigurationError(f"every must be at most {MAX_EVERY_SECONDS:.0f} s")
            if int(every * 1000) != every * 1000:
                raise ConfigurationError(f"every must be whole milliseconds, not {every!r}")
        start_ms, end_ms = _to_ms("start_at", start_at), _to_ms("end_at", end_at)
        if start_ms is not None and end_ms is not None and end_ms <= start_ms:
            raise ConfigurationError("end_at must be after start_at")
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT
        ):
            raise ConfigurationError(
                f"limit must be a number of runs from 1 to {MAX_LIMIT}, not {limit!r}"
            )
        return cls(
            cron=_CRON_ALIASES.get(cron.strip().lower(), cron.strip()) if cron else None,
            every=float(every) if isinstance(every, int | float) else None,
            tz=tz or "UTC",
            start_ms=start_ms,
            end_ms=end_ms,
            limit=limit,
        )

    def next_after(self, after_ms: int, runs: int = 0) -> int | None:
        """The first tick strictly after ``after_ms``, or None when the timetable has ended
        (past ``end_at``, or ``runs`` reached ``limit``)."""
        if self.limit is not None and runs >= self.limit:
            return None
        if self.start_ms is not None and after_ms < self.start_ms:
            after_ms = self.start_ms - 1  # the start itself may be a tick
        if self.every is not None:
            step = int(self.every * 1000)
            anchor = self.start_ms or 0
            tick = anchor + ((after_ms - anchor) // step + 1) * step
        else:
            assert self.cron is not None
            zone = ZoneInfo(self.tz)
            start = dt.datetime.fromtimestamp(after_ms / 1000, zone)
            tick = int(next(CronSim(self.cron, start)).timestamp() * 1000)
            if tick <= after_ms:  # cronsim counts from the whole second
                tick = int(next(CronSim(self.cron, start + dt.timedelta(seconds=1))).timestamp())
                tick *= 1000
        if self.end_ms is not None and tick > self.end_ms:
            return None
        return tick

    def to_dict(self) -> dict[str, Any]:
        return {
            "cron": self.cron,
            "every": self.every,
            "tz": self.tz if self.cron else None,
            "start_at": self.start_ms,
            "end_at": self.end_ms,
            "limit": self.limit,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Timetable:
        return cls(
            cron=raw.get("cron"),
            every=raw.get("every"),
            tz=raw.get("tz") or "UTC",
            start_ms=raw.get("start_at"),
            end_ms=raw.get("end_at"),
            limit=raw.get("limit"),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class TickPlan:
    """What to do with a due tick: fire it (a job) or not, and the next tick (None: the
    timetable has ended)."""

    tick_ms: int
    fire: bool
    next_ms: int | None
    #: "tick" (on time), "catch_up" (run_once after a misfire) or "missed" (skipped).
    reason: str


def plan_tick(
    timetable: Timetable,
    misfire: str,
    due_ms: int,
    now_ms: int,
    runs: int,
    grace_ms: int = MISFIRE_GRACE_MS,
) -> TickPlan:
    """The plan for the stored next run ``due_ms`` (``<= now_ms``), ``runs`` runs made so far.

    On time (at most ``grace_ms`` late) the tick fires and the timetable moves to the tick
    after it (if that is due too, it fires on the next round). Later than that, the ticks
    missed are not run one by one: ``skip`` fires nothing, ``run_once`` fires one job for all
    of them, and either way the timetable resumes at the first tick after now."""
    if now_ms - due_ms <= grace_ms:
        return TickPlan(due_ms, True, timetable.next_after(due_ms, runs + 1), "tick")
    if misfire == "run_once":
        return TickPlan(due_ms, True, timetable.next_after(now_ms, runs + 1), "catch_up")
    return TickPlan(due_ms, False, timetable.next_after(now_ms, runs), "missed")


def _time(ms: str | int | None) -> dt.datetime | None:
    if ms in (None, ""):
        return None
    return dt.datetime.fromtimestamp(int(ms) / 1000, dt.UTC)


@dataclasses.dataclass(frozen=True, slots=True)
class Schedule:
    """A schedule as stored: its definition and how it has run. Times are aware datetimes
    (UTC) or None."""

    id: str
    name: str
    data: Any
    cron: str | None
    every: float | None
    tz: str | None
    start_at: dt.datetime | None
    end_at: dt.datetime | None
    limit: int | None
    misfire: str
    #: Seconds a tick may be late and still fire as usual (later: ``misfire`` decides).
    misfire_grace: float
    overlap: bool
    #: The add() options every job of the schedule gets (attempts, backoff, priority, ...).
    options: Mapping[str, Any]
    paused: bool
    next_run: dt.datetime | None
    last_run: dt.datetime | None
    last_job: str | None
    #: The state of ``last_job`` now ("waiting", "active", ...; None when it is gone).
    last_job_state: str | None
    runs: int
    created_at: dt.datetime | None
    updated_at: dt.datetime | None

    @property
    def ended(self) -> bool:
        """The timetable has no tick left (past ``end_at``, or ``limit`` runs made)."""
        return self.next_run is None and not self.paused

    @classmethod
    def from_fields(
        cls, schedule_id: str, fields: Mapping[str, str], job_state: str | None, decode: Any
    ) -> Schedule:
        definition = decode(fields.get("def") or "{}")
        timetable = definition.get("timetable", {})
        next_run = fields.get("next_run") or None
        return cls(
            id=schedule_id,
            name=fields.get("name", ""),
            data=decode(fields["data"]) if fields.get("data") else None,
            cron=timetable.get("cron"),
            every=timetable.get("every"),
            tz=timetable.get("tz"),
            start_at=_time(timetable.get("start_at")),
            end_at=_time(timetable.get("end_at")),
            limit=timetable.get("limit"),
            misfire=definition.get("misfire", "skip"),
            misfire_grace=misfire_grace_ms(definition) / 1000,
            overlap=fields.get("overlap", "1") == "1",
            options=definition.get("options", {}),
            paused=fields.get("paused") == "1",
            next_run=_time(next_run),
            last_run=_time(fields.get("last_run")),
            last_job=fields.get("last_job") or None,
            last_job_state=job_state or None,
            runs=int(fields.get("runs") or 0),
            created_at=_time(fields.get("created")),
            updated_at=_time(fields.get("updated")),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (times as ISO 8601 text), for the API and the CLI."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            out[field.name] = value.isoformat() if isinstance(value, dt.datetime) else value
        out["options"] = dict(self.options)
        out["ended"] = self.ended
        return out
