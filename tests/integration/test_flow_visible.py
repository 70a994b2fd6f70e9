"""Flow control made visible: ``GET /api/queues/{q}/groups`` and the ``conveyor groups``,
``pause-group``, ``resume-group`` and ``rate-limit`` commands (run as subprocesses)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx
from tests.support.processes import python_env

from conveyor import Queue, RateLimit

CLI = "import sys; from conveyor.cli import main; main()"


async def _fill(queue: Queue) -> None:
    await queue.set_rate_limit(RateLimit(2, per=60))
    await queue.set_group_defaults(concurrency=3)
    await queue.set_group("big", weight=2)
    await queue.add_bulk(
        [{"name": "t", "group": "big"} for _ in range(5)]
        + [{"name": "t", "group": "small"} for _ in range(2)]
        + [{"name": "t"}]
    )
    await queue.pause_group("small")


async def test_the_groups_route_pages_by_waiting_and_shows_the_limits(
    client: httpx.AsyncClient, queue: Queue
) -> None:
    await _fill(queue)
    body = (await client.get("/api/queues/q/groups")).json()
    assert [g["name"] for g in body["groups"]] == ["big", "small"]
    big, small = body["groups"]
    assert (big["waiting"], big["weight"], big["concurrency"], big["overrides"]) == (
        5, 2, 3, ["weight"]
    )  # fmt: skip
    assert small["paused"] is True and small["waiting"] == 2
    assert body["total"] == 2
    assert body["flow"]["rate_limit"] == {"limit": 2, "per": 60.0}
    assert body["flow"]["group_defaults"]["concurrency"] == 3
    assert body["flow"]["grouped_waiting"] == 7
    second = (await client.get("/api/queues/q/groups?page=2&size=1")).json()
    assert [g["name"] for g in second["groups"]] == ["small"]
    job_id = (await queue.get_jobs("waiting", 0, 0))[0].id  # the one without a group
    assert (await client.get(f"/api/queues/q/jobs/{job_id}")).json()["group"] is None
    grouped = await queue.add("t", group="big")
    assert (await client.get(f"/api/queues/q/jobs/{grouped.id}")).json()["group"] == "big"
    bad = await client.get("/api/queues/q/groups?size=0")
    assert bad.status_code == 400
    assert (await client.get("/api/queues/nope/groups")).status_code == 404


async def test_a_full_rate_window_shows_until_when(client: httpx.AsyncClient, queue: Queue) -> None:
    await queue.set_rate_limit(RateLimit(1, per=60))
    await queue.add("t")
    await queue.add("t")
    reply = await queue.redis.run(queue.commands.fetch("w1", 5))
    assert len(reply.jobs) == 1 and reply.limited_ms is not None and reply.limited_ms > 59_000
    again = await queue.redis.run(queue.commands.fetch("w1", 5))
    assert again.jobs == [] and again.limited_ms is not None
    flow = (await client.get("/api/queues/q/groups")).json()["flow"]
    assert flow["limited_until"] is not None
    detail = (await client.get("/api/queues/q")).json()  # the queue view sees it too
    assert detail["flow"]["limited_until"] == flow["limited_until"]
    assert detail["flow"]["rate_limit"] == {"limit": 1, "per": 60.0}


async def test_oldest_waiting_counts_the_jobs_in_groups(
    client: httpx.AsyncClient, queue: Queue, redis_url: str, key_prefix: str
) -> None:
    oldest = queue.commands.oldest_waiting_ms
    assert await queue.redis.run(oldest()) is None  # nothing waits
    await queue.add("t", group="slow")  # the oldest: it waits in a group
    await asyncio.sleep(0.5)
    await queue.add_bulk([{"name": "t", "group": "busy"} for _ in range(3)])
    await queue.add("t")  # without a group
    await queue.add("t", priority=5)  # another band of the wait set
    detail = (await client.get("/api/queues/q")).json()
    assert detail["oldest_waiting_ms"] >= 500
    summary = (await client.get("/api/queues")).json()
    assert next(q["oldest_waiting_ms"] for q in summary["queues"] if q["name"] == "q") >= 500
    # Bounded: the groups with the most waiting are looked at first, up to the cap.
    # (both read at once: "slow", the second group, waited 0.5 s longer than the rest)
    one, two = await queue.redis.run_many([oldest(max_groups=1), oldest(max_groups=2)])
    assert two - one >= 450  # (two clocks, ms rounding)
    shown = _cli(redis_url, key_prefix, "info", "--json", "--queue", "q")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["queues"][0]["oldest_waiting_ms"] >= 500
    await queue.clean("waiting")
    assert await queue.redis.run(oldest()) is None


def _cli(redis_url: str, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = python_env({"REDIS_URL": redis_url, "CONVEYOR_PREFIX": prefix, "COLUMNS": "200"})
    return subprocess.run(
        [sys.executable, "-c", CLI, *args],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


async def test_the_command_line(queue: Queue, redis_url: str, key_prefix: str) -> None:
    await _fill(queue)
    shown = _cli(redis_url, key_prefix, "groups", "q")
    assert shown.returncode == 0, shown.stderr
    assert "rate limit 2/60s" in shown.stdout
    assert "big" in shown.stdout and "small" in shown.stdout
    listed = json.loads(_cli(redis_url, key_prefix, "groups", "q", "--json").stdout)
    assert [g["name"] for g in listed["groups"]] == ["big", "small"]
    resumed = _cli(redis_url, key_prefix, "resume-group", "q", "small")
    assert resumed.returncode == 0 and "resumed" in resumed.stdout
    assert (await queue.get_group("small")).paused is False  # type: ignore[union-attr]
    paused = _cli(redis_url, key_prefix, "pause-group", "q", "big")
    assert paused.returncode == 0 and (await queue.get_group("big")).paused  # type: ignore[union-attr]
    limited = _cli(redis_url, key_prefix, "rate-limit", "q", "20/1s")
    assert limited.returncode == 0, limited.stderr
    assert (await queue.flow_state()).rate_limit == RateLimit(20, per=1)
    assert _cli(redis_url, key_prefix, "rate-limit", "q", "off").returncode == 0
    assert (await queue.flow_state()).rate_limit is None
    bad = _cli(redis_url, key_prefix, "rate-limit", "q", "fast")
    assert bad.returncode == 2 and "20/1s" in bad.stderr
    unknown = _cli(redis_url, key_prefix, "groups", "nope")
    assert unknown.returncode != 0 and "unknown queue" in unknown.stderr
