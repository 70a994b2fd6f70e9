"""The Ops of job schedulers (see ``conveyor.schedules``): one script call each, built on a
queue's ``QueueCommands`` (its keys, settings and loaded scripts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from .commands import Op, QueueCommands
from .protocol import Code

__all__ = [
    "DueSchedule",
    "ScheduleCommands",
    "ScheduleTemplate",
    "StoredSchedule",
    "StoredSchedules",
]


class ScheduleTemplate(NamedTuple):
    """What upsert_schedule.lua stores: the definition and the job template, encoded."""

    definition: str
    name: str
    data: str
    opts: str
    attempts: int
    priority: int
    ttl_ms: int
    overlap: bool
    limit: int | None


class DueSchedule(NamedTuple):
    """A schedule whose next run is due (due_schedules.lua)."""

    id: str
    due_ms: int
    gen: str
    definition: str
    runs: int


class StoredSchedules(NamedTuple):
    """read_schedules.lua's reply."""

    #: How many schedules the queue has.
    total: int
    #: Redis's clock when they were read (ms).
    now_ms: int
    found: list[StoredSchedule]


class StoredSchedule(NamedTuple):
    """read_schedules.lua's record of one schedule."""

    id: str
    fields: dict[str, str]
    #: The state of its last job ("" when there is none, or it is gone).
    last_job_state: str


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: Sequence[Any]) -> dict[str, str]:
    items = [_text(x) for x in flat]
    return dict(zip(items[0::2], items[1::2], strict=True))


class ScheduleCommands:
    """Builds the schedule Ops of one queue. Pure, as ``QueueCommands``."""

    def __init__(self, commands: QueueCommands) -> None:
        self.commands = commands

    def upsert(
        self, schedule_id: str, template: ScheduleTemplate, next_ms: int | None
    ) -> Op[tuple[Code, bool]]:
        """(``Code.OK``, whether it existed) or (``Code.STALE``, False): compute again."""
        t = template

        def parse(reply: list[Any]) -> tuple[Code, bool]:
            return Code(reply[0]), len(reply) > 1 and int(reply[1]) == 1

        return self.commands._op(
            "upsert_schedule",
            schedule_id,
            t.definition,
            t.name,
            t.data,
            t.opts,
            t.attempts,
            t.priority,
            t.ttl_ms,
            "1" if t.overlap else "0",
            "" if next_ms is None else next_ms,
            "" if t.limit is None else t.limit,
            parse=parse,
        )

    def due(self, limit: int) -> Op[tuple[int, list[DueSchedule]]]:
        """(Redis time in ms, the schedules due then, at most ``limit``)."""

        def parse(reply: list[Any]) -> tuple[int, list[DueSchedule]]:
            now, rest = int(reply[0]), reply[1:]
            due = [
                DueSchedule(
                    _text(rest[i]),
                    int(float(_text(rest[i + 1]))),
                    _text(rest[i + 2]),
                    _text(rest[i + 3]),
                    int(rest[i + 4] or 0),
                )
                for i in range(0, len(rest), 5)
            ]
            return now, due

        return self.commands._op("due_schedules", limit, parse=parse)

    def fire(
        self,
        schedule_id: str,
        due_ms: int,
        next_ms: int | None,
        gen: str,
        fire: bool,
        reason: str,
        job_id: str,
    ) -> Op[tuple[Code, str]]:
        """See fire_schedule.lua: (code, job id)."""
        return self.commands._op(
            "fire_schedule",
            schedule_id,
            due_ms,
            "" if next_ms is None else next_ms,
            gen,
            "1" if fire else "0",
            reason,
            job_id,
            parse=lambda r: (Code(r[0]), _text(r[1])),
        )

    def pause(self, schedule_id: str) -> Op[Code]:
        return self.commands._op("pause_schedule", schedule_id, parse=Code)

    def resume(self, schedule_id: str, gen: str, next_ms: int | None) -> Op[Code]:
        next_arg = "" if next_ms is None else next_ms
        return self.commands._op("resume_schedule", schedule_id, gen, next_arg, parse=Code)

    def trigger(self, schedule_id: str, job_id: str) -> Op[Code]:
        return self.commands._op("trigger_schedule", schedule_id, job_id, parse=Code)

    def remove(self, schedule_id: str) -> Op[Code]:
        return self.commands._op("remove_schedule", schedule_id, parse=Code)

    def read(self, ids: Sequence[str]) -> Op[StoredSchedules]:
        """Those of ``ids`` that exist."""
        return self.commands._op("read_schedules", "ids", len(ids), *ids, parse=self._stored)

    def read_range(self, start: int, stop: int) -> Op[StoredSchedules]:
        """Schedules by next run (the paused and ended last), ``stop`` inclusive."""
        return self.commands._op("read_schedules", "range", start, stop, parse=self._stored)

    @staticmethod
    def _stored(reply: list[Any]) -> StoredSchedules:
        rest = reply[2:]
        found = [
            StoredSchedule(_text(rest[i]), _pairs(rest[i + 1]), _text(rest[i + 2]))
            for i in range(0, len(rest), 3)
        ]
        return StoredSchedules(int(reply[0]), int(reply[1]), found)
