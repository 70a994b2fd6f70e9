"""Flow control's pure parts: RateLimit and RateLimited checks, what the runner makes of a
RateLimited handler, the fetch reply's limited_ms, the job's group option and the CLI's limit
syntax."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import pickle

import click
import pytest

from conveyor import Job, RateLimit, RateLimited
from conveyor.cli_flow import _parse_limit
from conveyor.errors import ConfigurationError
from conveyor.flow_control import GroupInfo
from conveyor.options import build_spec
from conveyor.runner import Handlers, run_job
from conveyor.settings import Settings
from conveyor.storage.protocol import FetchReply


def test_rate_limit_checks_its_numbers() -> None:
    assert RateLimit(20).per_ms == 1000 and RateLimit(5, per=0.25).per_ms == 250
    assert str(RateLimit(100, per=60)) == "100/60s"
    for bad in (0, -1, 1.5, True, "3"):
        with pytest.raises(ConfigurationError, match="whole number"):
            RateLimit(bad)  # type: ignore[arg-type]
    for per in (0, -1, float("inf"), float("nan"), "1"):
        with pytest.raises(ConfigurationError, match="per"):
            RateLimit(1, per=per)  # type: ignore[arg-type]
    assert RateLimit.from_stored("3", "500") == RateLimit(3, per=0.5)
    assert RateLimit.from_stored("0", "1000") is None and RateLimit.from_stored(None, None) is None


def test_rate_limited_checks_its_delay_and_pickles() -> None:
    assert RateLimited(dt.timedelta(seconds=2)).delay == 2.0  # type: ignore[arg-type]
    for bad in (0, -1, float("inf"), "1", None):
        with pytest.raises(ConfigurationError, match="delay"):
            RateLimited(bad)  # type: ignore[arg-type]
    again = pickle.loads(pickle.dumps(RateLimited(1.5)))
    assert isinstance(again, RateLimited) and again.delay == 1.5


def test_the_runner_turns_rate_limited_into_a_hold_not_a_failure() -> None:
    async def handler(job: Job) -> None:
        raise RateLimited(delay=0.25)

    job = Job(id="1", name="t", data=None, queue="q")
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        outcome = asyncio.run(
            run_job(
                job,
                Handlers({"t": handler}),
                max_result_bytes=1000,
                strategies={},
                executor=executor,
            )
        )
    assert outcome.hold_ms == 250 and not outcome.completed


def test_the_fetch_reply_names_limited_ms() -> None:
    reply = FetchReply.parse([["limited_ms", 900, "next_due_ms", 5]])
    assert (reply.jobs, reply.limited_ms, reply.next_due_ms) == ([], 900, 5)
    assert FetchReply.parse([[]]).limited_ms is None


def test_the_group_option_is_checked_and_kept_in_the_options() -> None:
    spec = build_spec(Settings(), "t", {}, group="tenant-1")
    assert spec.group == "tenant-1" and '"group":"tenant-1"' in spec.opts
    assert spec.args()[-1] == "tenant-1"
    assert len(build_spec(Settings(), "t", {}).args()) == 3
    for bad in ("", "x" * 257, "a\nb", 5):
        with pytest.raises(ConfigurationError, match="group"):
            build_spec(Settings(), "t", {}, group=bad)  # type: ignore[arg-type]
    job = Job(id="1", name="t", data=None, queue="q")
    job.apply_options({"group": "tenant-1"})
    assert job.group == "tenant-1" and job.to_dict()["group"] == "tenant-1"


def test_group_info_as_json() -> None:
    info = GroupInfo("g", 3, 1, False, 2, RateLimit(5, per=1), 1, None, overrides=("concurrency",))
    assert info.to_dict() == {
        "name": "g",
        "waiting": 3,
        "active": 1,
        "paused": False,
        "concurrency": 2,
        "rate_limit": {"limit": 5, "per": 1},
        "weight": 1,
        "max_size": None,
        "held_until": None,
        "overrides": ["concurrency"],
    }


def test_the_cli_reads_limits_like_20_a_second() -> None:
    assert _parse_limit("20/1s") == RateLimit(20, per=1)
    assert _parse_limit("100/m") == RateLimit(100, per=60)
    assert _parse_limit("5/250ms") == RateLimit(5, per=0.25)
    assert _parse_limit("off") is None
    with pytest.raises(click.BadParameter):
        _parse_limit("fast")
