"""Job schedulers against a real Redis: the API (upsert, read, pause, resume, trigger,
unschedule, on Queue and SyncQueue), workers firing ticks, limits, overlap, misfire policies
after an outage with no worker, and bad input that stores nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pytest
from tests.support.conveyor_helpers import running, worker
from tests.support.waiting import async_wait_for

from conveyor import Job, Queue, SyncQueue
from conveyor.errors import ConfigurationError, ScheduleNotFound
from conveyor.schedules import tick_job_id

MakeQueue = Callable[..., Queue]


def _tick(job_id: str) -> int:
    return int(job_id.rsplit(":", 1)[1])


async def test_schedule_upserts_by_id_and_reads_back(queue: Queue) -> None:
    made = await queue.schedule(
        "nightly", "report", {"kind": "daily"}, cron="0 3 * * *", tz="Europe/Berlin", attempts=3
    )
    assert (made.id, made.name, made.data, made.cron, made.tz) == (
        "nightly",
        "report",
        {"kind": "daily"},
        "0 3 * * *",
        "Europe/Berlin",
    )
    assert made.every is None and made.last_run is None and made.paused is False
    assert made.options == {"attempts": 3}
    assert made.next_run is not None and made.next_run.tzinfo is not None
    local = made.next_run.astimezone(dt.timezone(dt.timedelta(hours=0)))
    assert made.next_run > dt.datetime.now(dt.UTC) and local.minute == 0
    berlin = made.next_run.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    assert (berlin.hour, berlin.minute) == (3, 0)

    again = await queue.schedule("nightly", "report", {"kind": "v2"}, every=30)
    assert (again.data, again.cron, again.every, again.options) == ({"kind": "v2"}, None, 30.0, {})
    assert again.created_at == made.created_at
    assert [s.id for s in await queue.schedules()] == ["nightly"]
    assert await queue.get_schedule("nightly") == again
    assert await queue.get_schedule("other") is None


async def test_a_worker_fires_one_job_per_tick_with_ids_from_the_tick(queue: Queue) -> None:
    ran: list[Job] = []

    async def tick(job: Job) -> None:
        ran.append(job)

    await queue.schedule("often", "tick", {"n": 1}, every=1, priority=5)
    async with running(worker(queue, {"tick": tick})):
        await async_wait_for(lambda: len(ran) >= 3, timeout=10)
    ticks = sorted(_tick(job.id) for job in ran)
    assert all(t % 1000 == 0 for t in ticks)
    assert ticks == list(range(ticks[0], ticks[0] + 1000 * len(ticks), 1000))
    assert {job.id for job in ran} == {tick_job_id("often", t) for t in ticks}
    assert all(job.data == {"n": 1} and job.priority == 5 for job in ran)
    stored = await queue.get_schedule("often")
    assert stored is not None and stored.runs >= 3 and stored.last_job in {j.id for j in ran}
    assert stored.last_run is not None and stored.last_job_state in ("completed", "waiting")


async def test_limit_caps_the_runs_and_then_the_schedule_has_ended(queue: Queue) -> None:
    ran: list[str] = []
    await queue.schedule("twice", "tick", every=1, limit=2)
    async with running(worker(queue, {"tick": lambda job: ran.append(job.id)})):
        await async_wait_for(lambda: len(ran) >= 2, timeout=10)

        async def ended() -> bool:
            found = await queue.get_schedule("twice")
            return found is not None and found.ended

        await async_wait_for(ended, timeout=5)
        await asyncio.sleep(1.5)  # a tick would be due by now if the timetable had not ended
    assert len(ran) == 2
    again = await queue.schedule("twice", "tick", every=1, limit=2)  # upsert keeps the runs
    assert again.runs == 2 and again.next_run is None


async def test_pause_resume_trigger_and_unschedule(queue: Queue) -> None:
    await queue.schedule("s", "tick", {"x": 1}, every=3600)
    assert await queue.pause_schedule("s") is True
    assert await queue.pause_schedule("s") is False
    paused = await queue.get_schedule("s")
    assert paused is not None and paused.paused and paused.next_run is None and not paused.ended
    again = await queue.schedule("s", "tick", {"x": 2}, every=3600)  # an upsert keeps it paused
    assert again.paused and again.data == {"x": 2}
    assert await queue.resume_schedule("s") is True
    assert await queue.resume_schedule("s") is False
    resumed = await queue.get_schedule("s")
    assert resumed is not None and not resumed.paused and resumed.next_run is not None

    job = await queue.trigger_schedule("s")
    assert job.name == "tick" and job.data == {"x": 2}
    assert (await queue.get_job(job.id)) is not None
    after = await queue.get_schedule("s")
    assert after is not None and after.last_job == job.id and after.next_run == resumed.next_run
    assert after.runs == 0  # a trigger is an extra run, not one of the timetable's
    assert not job.deduplicated

    keyed = await queue.trigger_schedule("s", key="request-7")
    repeat = await queue.trigger_schedule("s", key="request-7")  # a retry of the same request
    assert repeat.id == keyed.id and repeat.deduplicated and not keyed.deduplicated
    assert (await queue.trigger_schedule("s", key="request-8")).id != keyed.id
    for bad in ("", "a\nb", 7):
        with pytest.raises(ConfigurationError, match="idempotency key"):
            await queue.trigger_schedule("s", key=bad)  # type: ignore[arg-type]

    assert await queue.unschedule("s") is True
    assert await queue.unschedule("s") is False
    assert await queue.get_schedule("s") is None and await queue.schedules() == []
    assert await queue.get_job(job.id) is not None  # its jobs stay
    for call in (queue.pause_schedule, queue.resume_schedule, queue.trigger_schedule):
        with pytest.raises(ScheduleNotFound, match="no schedule 's'"):
            await call("s")


async def test_remove_then_upsert_makes_jobs_again(queue: Queue) -> None:
    ran: list[str] = []
    async with running(worker(queue, {"tick": lambda job: ran.append(job.id)})):
        await queue.schedule("r", "tick", every=1)
        await async_wait_for(lambda: len(ran) >= 1, timeout=10)
        assert await queue.unschedule("r")
        await queue.schedule("r", "tick", every=1)
        before = len(ran)
        await async_wait_for(lambda: len(ran) >= before + 2, timeout=10)
    assert len(ran) == len(set(ran))


async def test_overlap_false_skips_ticks_while_the_last_run_is_busy(queue: Queue) -> None:
    started: list[str] = []
    release = asyncio.Event()

    async def slow(job: Job) -> None:
        started.append(job.id)
        await release.wait()

    last_event = await queue.redis.run(queue.commands.last_event_id())
    await queue.schedule("busy", "slow", every=1, overlap=False)
    async with running(worker(queue, {"slow": slow})):
        await async_wait_for(lambda: len(started) >= 1, timeout=10)
        await asyncio.sleep(3.5)  # three more ticks fall while the first run is busy
        assert len(started) == 1
        release.set()
        await async_wait_for(lambda: len(started) >= 2, timeout=10)
    skipped = []
    async for event in queue.events(after=last_event, block_seconds=0.1):
        if event.event == "skipped":
            skipped.append(event)
        if event.event == "added" and event.job_id == started[1]:
            break
    assert len(skipped) >= 2
    assert {e.fields["reason"] for e in skipped} == {"overlap"}
    assert {e.fields["schedule"] for e in skipped} == {"busy"}
    assert all(e.fields["previous"] == started[0] for e in skipped)


async def test_misfire_policies_after_an_outage_with_no_worker(queue: Queue) -> None:
    await queue.schedule("skipper", "tick", {"p": "skip"}, every=1)
    await queue.schedule("catcher", "tick", {"p": "run_once"}, every=1, misfire="run_once")
    # A grace longer than the outage: its late ticks are not misfires, each one runs.
    lenient = await queue.schedule("lenient", "tick", {"p": "grace"}, every=1, misfire_grace=30)
    assert lenient.misfire_grace == 30.0
    assert (await queue.get_schedule("skipper")).misfire_grace == 5.0  # type: ignore[union-attr]
    first = {s.id: s.next_run for s in await queue.schedules()}
    await asyncio.sleep(10.5)  # the outage: no worker runs for 10 s
    back = time.time()
    ran: list[Job] = []

    def of(policy: str) -> list[int]:
        return sorted(_tick(j.id) for j in ran if j.data == {"p": policy})

    async with running(worker(queue, {"tick": ran.append})):
        await async_wait_for(
            lambda: len(of("skip")) >= 2 and len(of("run_once")) >= 2 and len(of("grace")) >= 12,
            timeout=15,
        )
    skip, catch = of("skip"), of("run_once")
    first_lenient = first["lenient"]
    assert first_lenient is not None
    start = int(first_lenient.timestamp() * 1000)
    assert of("grace")[:11] == [start + k * 1000 for k in range(11)]  # every late tick ran
    assert skip and all(t >= (back - 1) * 1000 for t in skip)  # no missed tick ran
    first_catch = first["catcher"]
    assert first_catch is not None
    # One catch-up run (the first missed tick), then only ticks after the worker came back.
    assert catch[0] == int(first_catch.timestamp() * 1000)
    assert all(t >= (back - 1) * 1000 for t in catch[1:])
    assert len(catch) >= 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cron": "0 25 * * *"}, "malformed cron expression"),
        ({"cron": "0 3 * * *", "tz": "Nowhere/Land"}, "unknown time zone"),
        ({"every": 0.2}, "every must be at least 1 s"),
        ({"every": 5, "cron": "* * * * *"}, "not both"),
        ({}, "either cron= or every="),
        ({"every": 5, "misfire": "always"}, "misfire must be one of skip, run_once"),
        ({"every": 5, "misfire_grace": 0.5}, "misfire_grace must be from 1 s"),
        ({"every": 5, "misfire_grace": "5s"}, "misfire_grace must be a number of seconds"),
        ({"every": 5, "overlap": "no"}, "overlap must be True or False"),
        ({"every": 5, "attempts": 0}, "attempts must be an integer"),
        ({"every": 5, "delay": 3}, "delay is not an option of a schedule's jobs"),
        ({"every": 5, "job_id": "x"}, "job_id is not an option"),
        ({"every": 5, "colour": "red"}, "colour"),
    ],
)
async def test_bad_input_raises_and_stores_nothing(
    queue: Queue, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        await queue.schedule("bad", "tick", {}, **kwargs)
    assert await queue.schedules() == []
    assert await queue.get_schedule("bad") is None


async def test_bad_ids_and_names_are_refused(queue: Queue) -> None:
    with pytest.raises(ConfigurationError, match="schedule id"):
        await queue.schedule("a/b", "tick", every=5)
    with pytest.raises(ConfigurationError, match="job name"):
        await queue.schedule("ok", "", every=5)
    assert await queue.schedules() == []


def test_sync_queue_has_the_same_methods(redis_url: str, key_prefix: str) -> None:
    with SyncQueue("sq", url=redis_url, prefix=key_prefix) as sync:
        made = sync.schedule("hourly", "tick", {"a": 1}, cron="@hourly")
        assert made.cron == "0 * * * *" and sync.get_schedule("hourly") == made
        assert [s.id for s in sync.schedules()] == ["hourly"]
        assert sync.pause_schedule("hourly") and sync.resume_schedule("hourly")
        job = sync.trigger_schedule("hourly")
        assert sync.get_job(job.id) is not None
        keyed = sync.trigger_schedule("hourly", key="k")
        assert sync.trigger_schedule("hourly", key="k").id == keyed.id != job.id
        assert sync.unschedule("hourly") and not sync.unschedule("hourly")
        with pytest.raises(ConfigurationError):
            sync.schedule("x", "tick", every=0)


async def test_many_schedules_list_in_pages_by_next_run(queue: Queue) -> None:
    for i in range(600):
        await queue.schedule(f"s{i:04}", "tick", every=3600 + i)
    await queue.pause_schedule("s0000")
    listed = await queue.schedules()
    assert len(listed) == 600
    assert listed[-1].id == "s0000"  # paused ones last
    runs = [s.next_run for s in listed[:-1]]
    assert runs == sorted(runs)  # type: ignore[type-var]
