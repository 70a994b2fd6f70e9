"""Nothing grows without bound: after a mixed run, every key Conveyor created belongs to a live
job, sits in a capped structure, or has a TTL. The test scans every key under its prefix.

Retention is lowered (50 completed, 20 failed) so that the run exercises trimming."""

from __future__ import annotations

from typing import Any

import pytest
from tests.support.conveyor_helpers import running, worker

from conveyor import Job, JobFailed, Queue, Retry
from conveyor.errors import JobNotFound
from conveyor.settings import Settings

pytestmark = pytest.mark.timeout(90)

#: Small fixed-size keys of a queue: flags and counters (hash fields are a fixed set).
FIXED = {"meta", "seq", "marker", "metrics:total"}
STATE_SETS = ("wait", "active", "delayed", "completed", "failed")
#: Where new jobs of priority 0 without a group wait (a list beside the wait set).
WAIT_LIST = "wait_list"


async def test_after_a_mixed_run_every_key_is_live_capped_or_expiring(
    redis_url: str, key_prefix: str
) -> None:
    settings = Settings(url=redis_url, prefix=key_prefix, keep_completed=50, keep_failed=20)
    queues = [Queue(name, settings=settings) for name in ("mem-a", "mem-b")]
    tries: dict[str, int] = {}

    async def mixed(job: Job) -> Any:
        tries[job.id] = tries.get(job.id, 0) + 1
        await job.update_progress(50)
        await job.log("line")
        kind = job.data["kind"]
        if kind == "fail":
            raise ValueError("no")
        if kind == "retry" and tries[job.id] == 1:
            raise Retry(delay=0.01)
        return {"ok": kind}

    w = worker(queues, {"mixed": mixed}, concurrency=20)
    async with running(w):
        jobs: list[Job] = []
        for q in queues:
            for _ in range(3):
                batch = [
                    {"name": "mixed", "data": {"kind": k}, "attempts": 2}
                    for k in ("ok", "fail", "retry") * 40
                ]
                jobs += await q.add_bulk(batch)
                jobs.append(await q.add("mixed", {"kind": "ok"}, delay=0.05))
        for job in jobs:
            with_failure = job.data["kind"] == "fail"
            try:
                await job.wait(timeout=30)
                assert not with_failure
            except JobFailed:
                assert with_failure
            except JobNotFound:
                pass  # finished, then trimmed by retention (kept 50 completed / 20 failed)
        # Some jobs are left behind on purpose: waiting, delayed and removed ones.
        await queues[0].pause()
        await queues[0].add("mixed", {"kind": "ok"})
        await queues[0].add("mixed", {"kind": "ok"}, delay=3600)
        removed = await queues[0].add("mixed", {"kind": "ok"})
        await queues[0].remove(removed.id)
    redis = queues[0].redis
    problems = await audit(redis, key_prefix, settings)
    assert problems == [], "\n".join(problems)
    for q in queues:
        await q.close()


async def audit(redis: Any, prefix: str, settings: Settings) -> list[str]:
    keys: list[str] = []
    cursor = "0"
    while True:
        cursor, batch = await redis.command("SCAN", cursor, "MATCH", f"{prefix}:*", "COUNT", 1000)
        keys += batch
        if str(cursor) == "0":
            break
    assert keys, "the run left no keys at all?"
    problems: list[str] = []
    live: dict[str, set[str]] = {}
    for key in keys:
        if key == f"{prefix}:queues":
            continue  # the registry: one name per queue
        base, _, rest = key.partition("}:")
        queue = base.split(":{", 1)[1]
        ttl = int(await redis.command("TTL", key))
        if queue not in live:
            members: set[str] = set()
            for state in STATE_SETS:
                members |= set(await redis.command("ZRANGE", f"{base}}}:{state}", 0, -1))
            members |= set(await redis.command("LRANGE", f"{base}}}:{WAIT_LIST}", 0, -1))
            live[queue] = members
            completed = int(await redis.command("ZCARD", f"{base}}}:completed"))
            failed = int(await redis.command("ZCARD", f"{base}}}:failed"))
            if completed > settings.keep_completed or failed > settings.keep_failed:
                problems.append(f"{queue}: retention not applied ({completed} / {failed})")
            leases = int(await redis.command("HLEN", f"{base}}}:leases"))
            active = int(await redis.command("ZCARD", f"{base}}}:active"))
            if leases > active:
                problems.append(f"{queue}: {leases} leases for {active} active jobs")
        kind, _, job_id = rest.partition(":")
        if rest in STATE_SETS or rest in FIXED or rest in ("workers", "leases", WAIT_LIST):
            continue  # live-job indexes, retention-capped sets, fixed-size hashes
        if rest == "events":
            length = int(await redis.command("XLEN", key))
            if length > settings.events_max_length * 1.2 + 100:
                problems.append(f"{key}: {length} entries, over the cap")
            continue
        if kind in ("job", "logs", "errors"):
            if job_id not in live[queue]:
                problems.append(f"{key}: belongs to no live job (ttl {ttl})")
            continue
        if ttl < 0:
            problems.append(f"{key}: no TTL and not a known capped structure")
    return problems
