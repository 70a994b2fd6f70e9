"""The schedule duty: fire the due ticks of the queues' job schedulers (``conveyor.schedules``).

Every worker runs it; none leads. Each round reads the due schedules of all its queues in one
round trip (a ZRANGEBYSCORE with a LIMIT: its cost does not grow with the number of schedules),
plans each due tick here (the next cron time needs the cron library) and sends the plans, each
one fire_schedule.lua call that fires and advances only if the schedule is still as read. Of
several workers planning the same tick the first call wins and the others change nothing, so a
worker that dies anywhere in this loses no tick and doubles none.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from .. import serializer
from ..schedules import Timetable, misfire_grace_ms, plan_tick, tick_job_id
from ..storage.commands import Op, QueueCommands
from ..storage.protocol import Code
from ..storage.schedule_commands import DueSchedule, ScheduleCommands
from .interfaces import OpRunner

__all__ = ["ScheduleTicker"]

log = logging.getLogger("conveyor.worker")

#: Due schedules read per queue a round.
BATCH = 100
#: Rounds a turn at most (a round that fired something is followed by another, for the ticks
#: that came due meanwhile or were left over past BATCH).
MAX_ROUNDS = 10


class ScheduleTicker:
    #: Seconds between turns: how late a tick may fire (two turns a second per worker cost one
    #: read each when nothing is due).
    interval = 0.5

    def __init__(self, store: OpRunner, queues: Sequence[QueueCommands]) -> None:
        self._store = store
        self._queues = [ScheduleCommands(commands) for commands in queues]
        #: Jobs this worker's ticks added, and ticks it skipped (overlap or misfire).
        self.fired = 0
        self.skipped = 0

    async def tick(self) -> None:
        for _ in range(MAX_ROUNDS):
            replies = await self._store.run_many([q.due(BATCH) for q in self._queues])
            plans: list[Op[Any]] = []
            for commands, (now, due) in zip(self._queues, replies, strict=True):
                plans.extend(p for d in due if (p := self._plan(commands, now, d)) is not None)
            if not plans:
                return
            results = await self._store.run_many(plans)
            for code, job_id in results:
                if code == Code.OK and job_id:
                    self.fired += 1
                elif code == Code.SKIPPED:
                    self.skipped += 1
            if not any(code in (Code.OK, Code.SKIPPED) for code, _ in results):
                return  # other workers handled them

    def _plan(self, commands: ScheduleCommands, now: int, due: DueSchedule) -> Op[Any] | None:
        try:
            definition = serializer.decode(due.definition)
            timetable = Timetable.from_dict(definition["timetable"])
            misfire = definition.get("misfire", "skip")
            grace = misfire_grace_ms(definition)
            plan = plan_tick(timetable, misfire, due.due_ms, now, due.runs, grace)
        except Exception:  # a definition this version cannot read: leave it, say so
            log.exception("queue %s: cannot plan schedule %s", commands.commands.queue, due.id)
            return None
        if not plan.fire:
            log.warning(
                "queue %s: schedule %s missed its tick at %d ms (misfire=skip); next at %s",
                commands.commands.queue,
                due.id,
                due.due_ms,
                plan.next_ms,
            )
        return commands.fire(
            due.id,
            due.due_ms,
            plan.next_ms,
            due.gen,
            plan.fire,
            plan.reason,
            tick_job_id(due.id, plan.tick_ms),
        )
