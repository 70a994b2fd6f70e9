"""fire_schedule.lua's guards, driven directly: a plan made from a stale read (another worker
fired the tick, the schedule was upserted, paused or removed meanwhile) changes nothing, and a
plan that would not move the timetable forward is refused."""

from __future__ import annotations

import asyncio

from conveyor import Queue
from conveyor.schedules import Timetable, plan_tick, tick_job_id
from conveyor.storage.protocol import Code
from conveyor.storage.schedule_commands import DueSchedule, ScheduleCommands


async def _due(queue: Queue, commands: ScheduleCommands) -> tuple[int, DueSchedule]:
    for _ in range(300):
        now, due = await queue.redis.run(commands.due(10))
        if due:
            return now, due[0]
        await asyncio.sleep(0.01)  # until the first tick (at most a second away) is due
    raise AssertionError("no tick came due")


async def _fire(queue: Queue, commands: ScheduleCommands, now: int, due: DueSchedule) -> Code:
    plan = plan_tick(Timetable.build(every=1), "skip", due.due_ms, now, due.runs)
    op = commands.fire(
        due.id, due.due_ms, plan.next_ms, due.gen, plan.fire, plan.reason,
        tick_job_id(due.id, plan.tick_ms),
    )  # fmt: skip
    code, _job = await queue.redis.run(op)
    return code


async def test_a_tick_fires_once_however_many_plans_are_sent(queue: Queue) -> None:
    commands = ScheduleCommands(queue.commands)
    await queue.schedule("s", "tick", every=1)
    now, due = await _due(queue, commands)
    codes = [await _fire(queue, commands, now, due) for _ in range(3)]
    assert codes == [Code.OK, Code.UNCHANGED, Code.UNCHANGED]
    assert (await queue.counts())["waiting"] == 1
    assert await queue.get_job(tick_job_id("s", due.due_ms)) is not None


async def test_a_plan_from_before_an_upsert_is_stale(queue: Queue) -> None:
    commands = ScheduleCommands(queue.commands)
    await queue.schedule("s", "tick", {"v": 1}, every=1)
    now, due = await _due(queue, commands)
    await queue.schedule("s", "tick", {"v": 2}, every=1)  # the same tick stays due
    assert await _fire(queue, commands, now, due) == Code.STALE
    assert (await queue.counts())["waiting"] == 0
    now, fresh = await _due(queue, commands)
    assert fresh.due_ms == due.due_ms  # the upsert kept the due tick due
    assert await _fire(queue, commands, now, fresh) == Code.OK
    job = await queue.get_job(tick_job_id("s", due.due_ms))
    assert job is not None and job.data == {"v": 2}


async def test_a_paused_or_removed_schedule_does_not_fire(queue: Queue) -> None:
    commands = ScheduleCommands(queue.commands)
    await queue.schedule("s", "tick", every=1)
    now, due = await _due(queue, commands)
    await queue.pause_schedule("s")
    assert await _fire(queue, commands, now, due) == Code.UNCHANGED
    await queue.unschedule("s")
    assert await _fire(queue, commands, now, due) == Code.NOT_FOUND
    assert (await queue.counts())["waiting"] == 0


async def test_a_plan_that_does_not_move_forward_is_refused(queue: Queue) -> None:
    commands = ScheduleCommands(queue.commands)
    await queue.schedule("s", "tick", every=1)
    _now, due = await _due(queue, commands)
    op = commands.fire(due.id, due.due_ms, due.due_ms, due.gen, True, "tick", "x")
    code, _ = await queue.redis.run(op)
    assert code == Code.WRONG_STATE
    assert (await queue.counts())["waiting"] == 0


async def test_a_tick_not_due_by_redis_clock_is_not_fired(queue: Queue) -> None:
    commands = ScheduleCommands(queue.commands)
    made = await queue.schedule("later", "tick", every=3600)
    assert made.next_run is not None
    due_ms = int(made.next_run.timestamp() * 1000)
    stored = await queue.redis.run(commands.read(["later"]))
    gen = stored.found[0].fields["gen"]
    op = commands.fire("later", due_ms, due_ms + 3_600_000, gen, True, "tick", "x")
    code, _ = await queue.redis.run(op)
    assert code == Code.UNCHANGED  # a client with a fast clock cannot fire early
    assert (await queue.counts())["waiting"] == 0
