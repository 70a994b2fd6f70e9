"""The job-scheduler API of ``Queue`` and ``SyncQueue`` (mixins), and its procedures, written
once for both (see ``procedures``): ``schedule`` (upsert by id), ``get_schedule``,
``schedules``, ``pause_schedule``, ``resume_schedule``, ``trigger_schedule``, ``unschedule``.

The timetable maths is in ``schedules``; the worker fires due ticks (``worker/ticks.py``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import os
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import orjson

from . import serializer
from .backoff import Backoff
from .errors import ConfigurationError, ScheduleNotFound
from .job import Job
from .options import OPTION_NAMES, build_spec, check_text
from .procedures import Procedure
from .schedules import (
    MISFIRE_GRACE_MS,
    MISFIRE_POLICIES,
    Schedule,
    Timetable,
    check_misfire_grace,
    check_schedule_id,
)
from .settings import Settings
from .storage.commands import QueueCommands
from .storage.protocol import Code
from .storage.schedule_commands import ScheduleCommands, ScheduleTemplate, StoredSchedule

__all__ = ["AsyncScheduling", "SyncScheduling"]

T = TypeVar("T")
P = ParamSpec("P")
F = TypeVar("F", bound=Callable[..., Any])

#: Options of ``add`` that make no sense for a schedule's jobs (the timetable says when).
_NOT_FOR_SCHEDULES = ("delay", "run_at", "job_id")
#: How often an upsert or resume computes its next run again when a tick fired meanwhile.
_RETRIES = 5
#: ``schedules()`` reads this many a round trip.
_PAGE = 500


def _template(
    settings: Settings,
    name: str,
    data: Any,
    timetable: Timetable,
    misfire: str,
    misfire_grace: object,
    overlap: bool,
    options: Mapping[str, Any],
) -> ScheduleTemplate:
    """Validate everything a schedule is given (raising before anything is stored)."""
    for option in _NOT_FOR_SCHEDULES:
        if option in options:
            raise ConfigurationError(
                f"{option} is not an option of a schedule's jobs (the timetable says when they "
                "run; a job's id comes from its schedule and tick)"
            )
    unknown = sorted(set(options) - OPTION_NAMES)
    if unknown:
        raise ConfigurationError(f"unknown job options {unknown} for a schedule")
    if misfire not in MISFIRE_POLICIES:
        raise ConfigurationError(
            f"misfire must be one of {', '.join(MISFIRE_POLICIES)}, not {misfire!r}"
        )
    if not isinstance(overlap, bool):
        raise ConfigurationError(f"overlap must be True or False, not {overlap!r}")
    spec = build_spec(settings, name, data, **options)
    shown: dict[str, Any] = serializer.decode(spec.opts)
    if "backoff" in shown:  # shown as the API takes it, not in its stored form
        shown["backoff"] = Backoff.from_stored(shown["backoff"]).to_dict()
    if spec.attempts != 1:
        shown["attempts"] = spec.attempts
    if spec.priority:
        shown["priority"] = spec.priority
    definition = {
        "timetable": timetable.to_dict(),
        "misfire": misfire,
        "misfire_grace": check_misfire_grace(misfire_grace),
        "options": shown,
    }
    return ScheduleTemplate(
        definition=orjson.dumps(definition).decode(),
        name=spec.name,
        data=spec.data,
        opts=spec.opts,
        attempts=spec.attempts,
        priority=spec.priority,
        ttl_ms=spec.ttl_ms,
        overlap=overlap,
        limit=timetable.limit,
    )


def _schedule(stored: StoredSchedule) -> Schedule:
    return Schedule.from_fields(stored.id, stored.fields, stored.last_job_state, serializer.decode)


def read_one(commands: ScheduleCommands, schedule_id: str) -> Procedure[Schedule | None]:
    found = (yield commands.read([schedule_id])).found
    return _schedule(found[0]) if found else None


def upsert(
    commands: ScheduleCommands,
    schedule_id: str,
    timetable: Timetable,
    template: ScheduleTemplate,
) -> Procedure[Schedule]:
    # Listed in the queue registry, so the dashboard and CLI find a queue that has only
    # schedules so far.
    yield commands.commands.register()
    for _ in range(_RETRIES):
        read = yield commands.read([schedule_id])
        found, now = read.found, read.now_ms
        after = now
        if found:
            # A tick that is due but not fired yet stays due (an upsert of the same timetable,
            # as every process of an app makes at boot, must not skip it); a tick fired
            # meanwhile makes the script refuse this plan (Code.STALE), and we plan again.
            pending = found[0].fields.get("next_run")
            if pending:
                after = min(now, int(pending) - 1)
        code, _existed = yield commands.upsert(schedule_id, template, timetable.next_after(after))
        if code == Code.OK:
            found = yield from read_one(commands, schedule_id)
            assert found is not None  # (unless removed this very moment)
            return found
    raise ConfigurationError(f"schedule {schedule_id!r} kept changing; try again")


def resume(commands: ScheduleCommands, schedule_id: str) -> Procedure[bool]:
    for _ in range(_RETRIES):
        read = yield commands.read([check_schedule_id(schedule_id)])
        if not read.found:
            raise ScheduleNotFound(f"no schedule {schedule_id!r}")
        stored, now = read.found[0], read.now_ms
        definition = serializer.decode(stored.fields.get("def") or "{}")
        timetable = Timetable.from_dict(definition.get("timetable", {}))
        runs = int(stored.fields.get("runs") or 0)
        gen = stored.fields.get("gen", "")
        code = yield commands.resume(schedule_id, gen, timetable.next_after(now, runs))
        if code == Code.NOT_FOUND:
            raise ScheduleNotFound(f"no schedule {schedule_id!r}")
        if code != Code.STALE:
            return bool(code == Code.OK)
    raise ConfigurationError(f"schedule {schedule_id!r} kept changing; try again")


def pause(commands: ScheduleCommands, schedule_id: str) -> Procedure[bool]:
    code = yield commands.pause(check_schedule_id(schedule_id))
    if code == Code.NOT_FOUND:
        raise ScheduleNotFound(f"no schedule {schedule_id!r} in queue {commands.commands.queue!r}")
    return bool(code == Code.OK)


def trigger_job_id(schedule_id: str, key: str | None) -> str:
    """The id of a triggered run's job: random, or a function of the idempotency ``key`` (a
    digest, so any printable key makes a short id without '/'), so that a retry with the key
    finds the job of the first call, as ``add(job_id=...)`` does."""
    check_schedule_id(schedule_id)
    if key is None:
        return f"schedule:{schedule_id}:now-{os.urandom(6).hex()}"
    check_text("idempotency key", key)
    digest = hashlib.blake2b(key.encode(), digest_size=10).hexdigest()
    return f"schedule:{schedule_id}:now-{digest}"


def trigger(
    commands: ScheduleCommands, job_id: str, schedule_id: str, context: Any
) -> Procedure[Job]:
    code = yield commands.trigger(schedule_id, job_id)
    if code == Code.NOT_FOUND:
        raise ScheduleNotFound(f"no schedule {schedule_id!r} in queue {commands.commands.queue!r}")
    job: Job | None = yield commands.commands.get_job(job_id, context)
    assert job is not None  # (unless a worker already finished and cleaned it)
    # A retry with the same key: the first call's job, said so as add's dedup modes do.
    job.deduplicated = code == Code.EXISTS
    return job


def unschedule(commands: ScheduleCommands, schedule_id: str) -> Procedure[bool]:
    code = yield commands.remove(check_schedule_id(schedule_id))
    return bool(code == Code.OK)


def list_all(commands: ScheduleCommands) -> Procedure[list[Schedule]]:
    out: list[Schedule] = []
    start = 0
    while True:
        read = yield commands.read_range(start, start + _PAGE - 1)
        out.extend(_schedule(stored) for stored in read.found)
        start += _PAGE
        if start >= read.total:
            return out


class _Base:
    """What the mixins need of their queue (``procedures.QueueCore``)."""

    commands: QueueCommands
    settings: Settings

    @property
    def _schedule_commands(self) -> ScheduleCommands:
        return ScheduleCommands(self.commands)

    def _schedule(
        self,
        /,
        schedule_id: str,
        name: str,
        data: Any = None,
        *,
        cron: str | None = None,
        every: float | dt.timedelta | None = None,
        tz: str | None = None,
        start_at: dt.datetime | float | None = None,
        end_at: dt.datetime | float | None = None,
        limit: int | None = None,
        misfire: str = "skip",
        misfire_grace: float | dt.timedelta = MISFIRE_GRACE_MS / 1000,
        overlap: bool = True,
        **options: Any,
    ) -> Procedure[Schedule]:
        """Create or replace the schedule ``schedule_id``: a job ``name`` with ``data`` on
        every tick of ``cron`` (in time zone ``tz``, default UTC) or ``every`` N seconds.

        ``start_at``/``end_at`` bound the timetable, ``limit`` caps the number of runs;
        ``misfire`` ("skip" or "run_once") says what to do with a tick more than
        ``misfire_grace`` seconds late (no worker ran); ``overlap=False`` skips a tick while
        the previous run is waiting or running. Other keyword options are ``add``'s
        (attempts, backoff, priority, timeout, ttl). Exactly one job per tick, however many
        workers run; see docs/schedules.md."""
        # Validated here, before the procedure (and so any I/O) starts.
        check_schedule_id(schedule_id)
        timetable = Timetable.build(
            cron=cron, every=every, tz=tz, start_at=start_at, end_at=end_at, limit=limit
        )
        template = _template(
            self.settings, name, data, timetable, misfire, misfire_grace, overlap, options
        )
        return upsert(self._schedule_commands, schedule_id, timetable, template)


def _awaiting(
    procedure: Callable[Concatenate[Any, P], Procedure[T]],
) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]:
    """``Queue``'s method that runs ``procedure``: its parameters (to the type checker and
    ``help()``) and its docstring, written once for both queues."""

    async def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        result: T = await self._drive(procedure(self, *args, **kwargs))
        return result

    return _named(method, procedure)


def _blocking(
    procedure: Callable[Concatenate[Any, P], Procedure[T]],
) -> Callable[Concatenate[Any, P], T]:
    """``SyncQueue``'s method that runs ``procedure``, as ``_awaiting``."""

    def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        result: T = self._drive(procedure(self, *args, **kwargs))
        return result

    return _named(method, procedure)


def _named(method: F, procedure: Callable[..., Any]) -> F:
    method.__name__ = method.__qualname__ = procedure.__name__.lstrip("_")
    method.__doc__ = procedure.__doc__
    returns = inspect.signature(procedure).return_annotation
    # help() shows the procedure's parameters, and what the method returns (not a generator).
    method.__signature__ = inspect.signature(procedure).replace(  # type: ignore[attr-defined]
        return_annotation=str(returns).removeprefix("Procedure[").removesuffix("]")
    )
    return method


class AsyncScheduling(_Base):
    """Job schedulers on ``Queue``."""

    if TYPE_CHECKING:

        async def _drive(self, procedure: Procedure[T]) -> T: ...

    schedule = _awaiting(_Base._schedule)

    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        return await self._drive(read_one(self._schedule_commands, check_schedule_id(schedule_id)))

    async def schedules(self) -> list[Schedule]:
        """Every schedule of the queue, the next due first (paused and ended ones last)."""
        return await self._drive(list_all(self._schedule_commands))

    async def pause_schedule(self, schedule_id: str) -> bool:
        """Stop its ticks (True if it was running). Raises ``ScheduleNotFound``."""
        return await self._drive(pause(self._schedule_commands, schedule_id))

    async def resume_schedule(self, schedule_id: str) -> bool:
        """Tick again from the first tick after now (True if it was paused)."""
        return await self._drive(resume(self._schedule_commands, schedule_id))

    async def trigger_schedule(self, schedule_id: str, *, key: str | None = None) -> Job:
        """One extra run now (the job is returned); the timetable is unchanged. With an
        idempotency ``key``, a repeat with the same key (a retried request) adds nothing and
        returns the first call's job, with ``deduplicated`` set, while that job is stored."""
        job_id = trigger_job_id(schedule_id, key)
        return await self._drive(trigger(self._schedule_commands, job_id, schedule_id, self))

    async def unschedule(self, schedule_id: str) -> bool:
        """Delete the schedule (its jobs stay); True if it existed."""
        return await self._drive(unschedule(self._schedule_commands, schedule_id))


class SyncScheduling(_Base):
    """Job schedulers on ``SyncQueue``: the same methods as ``Queue``'s, blocking."""

    if TYPE_CHECKING:

        def _drive(self, procedure: Procedure[T]) -> T: ...

    schedule = _blocking(_Base._schedule)

    def get_schedule(self, schedule_id: str) -> Schedule | None:
        return self._drive(read_one(self._schedule_commands, check_schedule_id(schedule_id)))

    def schedules(self) -> list[Schedule]:
        return self._drive(list_all(self._schedule_commands))

    def pause_schedule(self, schedule_id: str) -> bool:
        return self._drive(pause(self._schedule_commands, schedule_id))

    def resume_schedule(self, schedule_id: str) -> bool:
        return self._drive(resume(self._schedule_commands, schedule_id))

    def trigger_schedule(self, schedule_id: str, *, key: str | None = None) -> Job:
        job_id = trigger_job_id(schedule_id, key)
        return self._drive(trigger(self._schedule_commands, job_id, schedule_id, None))

    def unschedule(self, schedule_id: str) -> bool:
        return self._drive(unschedule(self._schedule_commands, schedule_id))
