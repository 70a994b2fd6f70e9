"""The timetable maths of job schedulers (conveyor.schedules), with fixed instants: cron in a
time zone across both DST days, every-N ticks, bounds, misfire plans and bad input."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest

from conveyor.errors import ConfigurationError
from conveyor.schedules import (
    MISFIRE_GRACE_MS,
    Timetable,
    check_misfire_grace,
    check_schedule_id,
    misfire_grace_ms,
    plan_tick,
    tick_job_id,
)

BERLIN = ZoneInfo("Europe/Berlin")


def _ms(*args: int, tz: dt.tzinfo = dt.UTC) -> int:
    return int(dt.datetime(*args, tzinfo=tz).timestamp() * 1000)  # type: ignore[misc]


def _ticks(timetable: Timetable, after_ms: int, count: int) -> list[int]:
    out: list[int] = []
    for _ in range(count):
        tick = timetable.next_after(after_ms)
        assert tick is not None
        out.append(tick)
        after_ms = tick
    return out


def _local(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, BERLIN).isoformat()


def test_daily_0230_berlin_runs_once_on_the_spring_forward_day() -> None:
    # 2026-03-29: clocks jump from 02:00 to 03:00; 02:30 does not exist that day.
    timetable = Timetable.build(cron="30 2 * * *", tz="Europe/Berlin")
    ticks = _ticks(timetable, _ms(2026, 3, 27, 12, tz=BERLIN), 4)
    assert [_local(t) for t in ticks] == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",  # once, right after the jump (as cron does)
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
    ]


def test_daily_0230_berlin_runs_once_on_the_fall_back_day() -> None:
    # 2026-10-25: clocks go back from 03:00 to 02:00; 02:30 happens twice that day.
    timetable = Timetable.build(cron="30 2 * * *", tz="Europe/Berlin")
    ticks = _ticks(timetable, _ms(2026, 10, 24, 12, tz=BERLIN), 3)
    assert [_local(t) for t in ticks] == [
        "2026-10-25T02:30:00+02:00",  # once: not again at 02:30+01:00
        "2026-10-26T02:30:00+01:00",
        "2026-10-27T02:30:00+01:00",
    ]
    assert ticks[1] - ticks[0] == 25 * 3600 * 1000  # that day has 25 hours


def test_an_hourly_cron_runs_in_both_repeated_hours_of_the_fall_back_day() -> None:
    timetable = Timetable.build(cron="30 * * * *", tz="Europe/Berlin")
    ticks = _ticks(timetable, _ms(2026, 10, 25, 0, 45, tz=BERLIN), 3)
    assert [t2 - t1 for t1, t2 in itertools.pairwise(ticks)] == [3600_000, 3600_000]


def test_cron_in_utc_by_default_and_the_aliases() -> None:
    assert Timetable.build(cron="0 3 * * *").next_after(_ms(2026, 1, 1)) == _ms(2026, 1, 1, 3)
    assert Timetable.build(cron="@daily").next_after(_ms(2026, 1, 1, 1)) == _ms(2026, 1, 2)
    assert Timetable.build(cron="@hourly").next_after(_ms(2026, 1, 1, 1, 5)) == _ms(2026, 1, 1, 2)


def test_the_next_tick_is_strictly_after() -> None:
    timetable = Timetable.build(cron="*/5 * * * *")
    at = _ms(2026, 1, 1, 0, 5)
    assert timetable.next_after(at) == _ms(2026, 1, 1, 0, 10)
    assert timetable.next_after(at - 1) == at
    every = Timetable.build(every=30)
    assert every.next_after(at) == at + 30_000
    assert every.next_after(at + 1) == at + 30_000


def test_every_ticks_on_whole_multiples_so_every_process_agrees() -> None:
    timetable = Timetable.build(every=7)
    for after in (1_001_003, 1_004_500, 1_007_999):
        assert timetable.next_after(after) == 1_008_000
    assert timetable.next_after(1_008_000) == 1_015_000


def test_start_end_and_limit_bound_the_timetable() -> None:
    start = _ms(2026, 5, 1, 12)
    timetable = Timetable.build(
        every=60, start_at=dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC), end_at=start / 1000 + 150
    )
    assert timetable.next_after(start - 86_400_000) == start  # the start is the first tick
    assert timetable.next_after(start) == start + 60_000
    assert timetable.next_after(start + 60_000) == start + 120_000
    assert timetable.next_after(start + 120_000) is None  # past end_at
    limited = Timetable.build(every=1, limit=2)
    assert limited.next_after(0, runs=1) == 1000
    assert limited.next_after(0, runs=2) is None


def test_a_timetable_survives_its_stored_form() -> None:
    timetable = Timetable.build(cron="15 4 * * 1-5", tz="America/New_York", limit=3)
    assert Timetable.from_dict(timetable.to_dict()) == timetable


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cron": "61 * * * *"}, "malformed cron expression '61 \\* \\* \\* \\*'"),
        ({"cron": "0 3 * *"}, "malformed cron expression"),
        ({"cron": "nonsense"}, "malformed cron expression"),
        ({"cron": ""}, "cron must be a cron expression"),
        ({"cron": "0 3 * * *", "tz": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"cron": "0 3 * * *", "tz": "../etc/passwd"}, "unknown time zone"),
        ({"every": 0.5}, "every must be at least 1 s"),
        ({"every": 0}, "every must be at least 1 s"),
        ({"every": float("nan")}, "every must be at least 1 s"),
        ({"every": "30"}, "every must be a number of seconds"),
        ({"every": 1.0001}, "whole milliseconds"),
        ({"every": 5, "tz": "UTC"}, "tz applies to cron schedules"),
        ({"cron": "* * * * *", "every": 5}, "either cron= or every=, not both"),
        ({}, "either cron= or every="),
        ({"every": 5, "limit": 0}, "limit must be a number of runs from 1"),
        ({"every": 5, "limit": 2**70}, "limit must be a number of runs from 1"),
        ({"every": 5, "start_at": 1e300}, "start_at must be between 1970 and 9999"),
        ({"every": 5, "end_at": -5}, "end_at must be between 1970 and 9999"),
        ({"every": 5, "start_at": dt.datetime(2026, 1, 1)}, "start_at must be timezone-aware"),
        ({"every": 5, "start_at": 100, "end_at": 50}, "end_at must be after start_at"),
    ],
)
def test_bad_timetables_are_refused_saying_what_is_wrong(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Timetable.build(**kwargs)


def test_schedule_ids_are_checked_and_tick_job_ids_follow_from_them() -> None:
    assert check_schedule_id("nightly-report") == "nightly-report"
    for bad in ("", "a/b", "tab\there", 7):
        with pytest.raises(ConfigurationError, match="schedule id"):
            check_schedule_id(bad)
    assert tick_job_id("nightly", 1_000) == tick_job_id("nightly", 1_000)
    assert tick_job_id("nightly", 1_000) != tick_job_id("nightly", 2_000)


def test_an_on_time_tick_fires_and_the_timetable_moves_one_tick_on() -> None:
    timetable = Timetable.build(every=10)
    plan = plan_tick(timetable, "skip", 100_000, 100_400, runs=0)
    assert (plan.fire, plan.tick_ms, plan.next_ms, plan.reason) == (True, 100_000, 110_000, "tick")


def test_a_slightly_late_tick_still_fires_and_the_next_follows_it() -> None:
    timetable = Timetable.build(every=1)
    plan = plan_tick(timetable, "skip", 100_000, 100_000 + MISFIRE_GRACE_MS, runs=0)
    assert plan.fire and plan.next_ms == 101_000


def test_the_misfire_grace_is_the_schedules_own() -> None:
    timetable = Timetable.build(every=1)
    late = plan_tick(timetable, "skip", 100_000, 130_000, runs=0, grace_ms=30_000)
    assert (late.fire, late.next_ms, late.reason) == (True, 101_000, "tick")
    missed = plan_tick(timetable, "skip", 100_000, 130_001, runs=0, grace_ms=30_000)
    assert (missed.fire, missed.reason) == (False, "missed")
    assert check_misfire_grace(dt.timedelta(minutes=1)) == 60.0
    for bad in (0.5, -1, "5", True, float("nan"), 11 * 365 * 24 * 3600):
        with pytest.raises(ConfigurationError, match="misfire_grace"):
            check_misfire_grace(bad)
    assert misfire_grace_ms({}) == MISFIRE_GRACE_MS  # stored before the option existed
    assert misfire_grace_ms({"misfire_grace": 1.5}) == 1_500


def test_after_an_outage_skip_fires_nothing_and_resumes_at_the_next_future_tick() -> None:
    timetable = Timetable.build(every=1)
    now = 100_000 + 10_500
    plan = plan_tick(timetable, "skip", 100_000, now, runs=3)
    assert (plan.fire, plan.next_ms, plan.reason) == (False, 111_000, "missed")


def test_after_an_outage_run_once_fires_one_catch_up_and_resumes_after_now() -> None:
    timetable = Timetable.build(every=1)
    plan = plan_tick(timetable, "run_once", 100_000, 110_500, runs=3)
    assert (plan.fire, plan.tick_ms, plan.next_ms, plan.reason) == (
        True,
        100_000,
        111_000,
        "catch_up",
    )


def test_the_last_run_of_a_limited_schedule_ends_its_timetable() -> None:
    timetable = Timetable.build(every=1, limit=3)
    assert plan_tick(timetable, "skip", 5_000, 5_000, runs=2).next_ms is None
    assert plan_tick(timetable, "skip", 5_000, 5_000, runs=1).next_ms == 6_000
