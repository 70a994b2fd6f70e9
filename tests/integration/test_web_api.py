"""The JSON API (docs/design.md §5) against a real Redis, with a worker running in-process."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from tests.support.conveyor_helpers import running, worker
from tests.support.waiting import async_wait_for

from conveyor import Queue
from conveyor.web import create_app

pytestmark = pytest.mark.timeout(60)


async def ok(job: Any) -> dict[str, Any]:
    await job.update_progress(100)
    await job.log("done")
    return {"sent": True}


async def boom(job: Any) -> None:
    raise RuntimeError("smtp refused")


async def test_queues_counts_and_job_lifecycle(
    client: httpx.AsyncClient, make_queue: Callable[..., Queue]
) -> None:
    queue = make_queue("email")
    r = await client.post("/api/queues/email/jobs", json={"name": "send", "data": {"to": "a"}})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    r = await client.get("/api/queues")
    [summary] = r.json()["queues"]
    assert summary["name"] == "email"
    assert summary["counts"]["waiting"] == 1
    assert summary["oldest_waiting_ms"] is not None

    async with running(worker(queue, {"send": ok})):
        await (await queue.get_job(job_id)).wait(timeout=10)  # type: ignore[union-attr]

    job = (await client.get(f"/api/queues/email/jobs/{job_id}")).json()
    assert job["state"] == "completed"
    assert job["result"] == {"sent": True}
    assert job["progress"] == 100
    assert job["logs"] == ["done"]
    assert job["run_ms"] is not None and job["wait_ms"] is not None
    assert job["timeline"][0]["event"] == "created"

    detail = (await client.get("/api/queues/email")).json()
    assert detail["counts"]["completed"] == 1
    assert detail["metrics"]["completed"] == 1
    assert detail["metrics"]["run"]["count"] == 1
    assert detail["metrics"]["wait"]["p95"] is not None


async def test_failed_job_retry_and_bulk(
    client: httpx.AsyncClient, make_queue: Callable[..., Queue]
) -> None:
    queue = make_queue("mail")
    jobs = [await queue.add("boom", {"n": i}) for i in range(3)]
    handlers: dict[str, Any] = {"boom": boom}
    async with running(worker(queue, handlers)):
        await async_wait_for(lambda: _count(client, "mail", "failed", 3), timeout=10)
    page = (await client.get("/api/queues/mail/jobs", params={"state": "failed"})).json()
    assert page["total"] == 3
    assert page["jobs"][0]["error"] == "RuntimeError: smtp refused"
    detail = (await client.get(f"/api/queues/mail/jobs/{jobs[0].id}")).json()
    assert "Traceback" in detail["attempts"][0]["traceback"]

    # one retry, then a bulk retry of the rest (plus an unknown id)
    r = await client.post(f"/api/queues/mail/jobs/{jobs[0].id}/retry")
    assert r.status_code == 200, r.text
    r = await client.post(
        "/api/queues/mail/jobs/bulk",
        json={"action": "retry", "ids": [jobs[1].id, jobs[2].id, "nope"]},
    )
    body = r.json()
    assert body["done"] == 2
    assert body["results"]["nope"]["code"] == "job_not_found"
    counts = (await client.get("/api/queues/mail")).json()["counts"]
    assert counts["waiting"] == 3 and counts["failed"] == 0

    # retrying a waiting job is a 409 with a stable code
    r = await client.post(f"/api/queues/mail/jobs/{jobs[0].id}/retry")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "wrong_state"

    handlers["boom"] = ok
    async with running(worker(queue, handlers)):
        await async_wait_for(lambda: _count(client, "mail", "completed", 3), timeout=10)
    metrics = (await client.get("/api/queues/mail/metrics", params={"range": "1h"})).json()
    assert metrics["summary"]["failed"] == 3
    assert metrics["summary"]["completed"] == 3
    assert len(metrics["timestamps"]) == len(metrics["series"]["completed"])
    assert sum(metrics["series"]["failed"]) == 3
    assert (await client.get("/api/metrics?range=7d")).json()["summary"]["completed"] == 3


async def _count(client: httpx.AsyncClient, name: str, state: str, want: int) -> bool:
    counts = (await client.get(f"/api/queues/{name}")).json()["counts"]
    return bool(counts[state] == want)


async def test_search_paging_and_filters(
    client: httpx.AsyncClient, make_queue: Callable[..., Queue]
) -> None:
    queue = make_queue("s")
    await queue.add_bulk(
        [{"name": "a" if i % 2 else "b", "data": {"user": f"user-{i}"}} for i in range(25)]
    )
    page = (await client.get("/api/queues/s/jobs", params={"size": 10})).json()
    assert page["total"] == 25 and page["pages"] == 3 and len(page["jobs"]) == 10
    assert page["jobs"][0]["data_preview"] == '{"user":"user-24"}'  # newest first
    oldest = (await client.get("/api/queues/s/jobs", params={"sort": "oldest", "size": 1})).json()
    assert oldest["jobs"][0]["data_preview"] == '{"user":"user-0"}'
    named = (await client.get("/api/queues/s/jobs", params={"name": "a"})).json()
    assert named["total"] == 12
    assert {j["name"] for j in named["jobs"]} == {"a"}
    found = (await client.get("/api/queues/s/jobs", params={"q": "USER-17"})).json()
    assert [j["data_preview"] for j in found["jobs"]] == ['{"user":"user-17"}']
    both = (await client.get("/api/queues/s/jobs", params={"q": "user-1", "name": "b"})).json()
    assert both["total"] == 5  # user-10,12,14,16,18


async def test_cancel_pause_clean_and_errors(
    client: httpx.AsyncClient, make_queue: Callable[..., Queue]
) -> None:
    queue = make_queue("c")
    later = await queue.add("x", {}, delay=3600)
    now = await queue.add("x", {})
    r = await client.post(f"/api/queues/c/jobs/{later.id}/promote")
    assert r.status_code == 200
    r = await client.post(f"/api/queues/c/jobs/{later.id}/cancel")
    assert r.status_code == 200
    cancelled = (await client.get(f"/api/queues/c/jobs/{later.id}")).json()
    assert (cancelled["state"], cancelled["error"]) == ("failed", "cancelled")
    r = await client.post(f"/api/queues/c/jobs/{later.id}/cancel")
    assert (r.status_code, r.json()["error"]["code"]) == (409, "wrong_state")
    r = await client.delete(f"/api/queues/c/jobs/{now.id}")
    assert r.status_code == 200
    assert (await client.post("/api/queues/c/pause")).json() == {"ok": True}
    assert (await client.get("/api/queues/c")).json()["paused"] is True
    await client.post("/api/queues/c/resume")
    assert (await client.get("/api/queues/c")).json()["paused"] is False
    await queue.add("x", {}, delay=3600)
    r = await client.post("/api/queues/c/clean", json={"state": "delayed"})
    assert r.json() == {"count": 1}

    errors = {
        ("GET", "/api/queues/nope"): (404, "queue_not_found"),
        ("GET", "/api/queues/c/jobs/999"): (404, "job_not_found"),
        ("GET", "/api/queues/bad%20name"): (400, "invalid_queue_name"),
        ("GET", "/api/queues/c/jobs?state=bogus"): (400, "bad_request"),
        ("GET", "/api/queues/c/jobs?page=0"): (400, "bad_request"),
        ("GET", "/api/queues/c/metrics?range=1y"): (400, "bad_request"),
        ("GET", "/api/nothing-here"): (404, "not_found"),
        ("PUT", "/api/queues"): (405, "method_not_allowed"),
    }
    for (method, path), (status, code) in errors.items():
        r = await client.request(method, path)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), path
    r = await client.post("/api/queues/c/jobs", json={"name": "x", "options": {"nope": 1}})
    assert r.status_code == 400
    r = await client.post("/api/queues/c/jobs", json={"name": "x", "data": "y" * 600_000})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


async def test_cancel_stops_a_running_job_and_delete_refuses_it(
    client: httpx.AsyncClient, make_queue: Callable[..., Queue]
) -> None:
    import asyncio

    queue = make_queue("run")
    stopped = asyncio.Event()

    async def slow(job: Any) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            stopped.set()
            raise

    job = await queue.add("slow", {}, attempts=5)
    async with running(worker(queue, {"slow": slow})):
        await async_wait_for(lambda: _count(client, "run", "active", 1), timeout=10)
        r = await client.delete(f"/api/queues/run/jobs/{job.id}")
        assert (r.status_code, r.json()["error"]["code"]) == (409, "job_active")
        workers = (await client.get("/api/workers")).json()["workers"]
        assert workers and workers[0]["concurrency"] == 5
        assert "run" in workers[0]["queues"]
        # What the worker runs now, from its lease: the job, its queue and since when.
        assert workers[0]["running_total"] == 1
        (now_running,) = workers[0]["running"]
        assert {k: now_running[k] for k in ("queue", "id", "name")} == {
            "queue": "run", "id": job.id, "name": "slow",
        }  # fmt: skip
        assert 0 <= time.time() * 1000 - now_running["since"] < 30_000
        assert workers[0]["restarts"] == 0  # no supervisor restarted it
        r = await client.post(f"/api/queues/run/jobs/{job.id}/cancel")
        assert r.status_code == 200
        await async_wait_for(lambda: _count(client, "run", "failed", 1), timeout=10)
    assert stopped.is_set()
    failed = (await client.get(f"/api/queues/run/jobs/{job.id}")).json()
    assert failed["error"] == "cancelled"
    assert failed["attempts_made"] == 1  # not retried, although attempts remained


async def test_prometheus_metrics(
    client: httpx.AsyncClient, make_queue: Callable[..., Queue]
) -> None:
    queue = make_queue("p")
    await queue.add("x", {})
    async with running(worker(queue, {"x": ok})):
        await async_wait_for(lambda: _count(client, "p", "completed", 1), timeout=10)
    await queue.add("x", {})
    text = (await client.get("/metrics")).text
    assert 'conveyor_jobs_total{outcome="completed",queue="p"} 1.0' in text
    assert 'conveyor_queue_jobs{queue="p",state="waiting"} 1.0' in text
    assert 'conveyor_job_run_seconds_count{queue="p"} 1.0' in text
    assert 'conveyor_job_wait_seconds_bucket{le="+Inf",queue="p"} 1.0' in text
    assert "conveyor_queue_oldest_job_age_seconds" in text


async def test_health_reports_redis_down(key_prefix: str) -> None:
    app = create_app(url="redis://127.0.0.1:1/0", prefix=key_prefix)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        r = await c.get("/api/health")
        assert r.status_code == 503
        r = await c.get("/api/queues")
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "redis_unavailable"
    await app.state.admin.close()


async def test_huge_or_infinite_delays_are_a_400_not_a_500(client: httpx.AsyncClient) -> None:
    # Found by schemathesis: delay=1e308 overflowed in the core's option parsing.
    for options in ({"delay": 1e308}, {"timeout": 1e300}, {"ttl": -1}, {"delay": "soon"}):
        r = await client.post("/api/queues/c/jobs", json={"name": "x", "options": options})
        assert r.status_code == 400, (options, r.text)


async def test_add_job_with_backoff_and_run_at(
    client: httpx.AsyncClient, make_queue: Callable[..., Queue]
) -> None:
    import datetime as dt
    import time

    queue = make_queue("opts")
    backoff = {"kind": "exponential", "delay": 2, "max_delay": 60, "jitter": 0.5}
    r = await client.post(
        "/api/queues/opts/jobs",
        json={"name": "x", "options": {"attempts": 3, "backoff": backoff}},
    )
    assert r.status_code == 201, r.text
    job = await queue.get_job(r.json()["id"])
    assert job is not None and job.backoff is not None
    assert job.backoff.to_dict() == {**backoff, "delay": 2.0, "max_delay": 60.0}
    detail = (await client.get(f"/api/queues/opts/jobs/{job.id}")).json()
    assert detail["options"]["backoff"]["kind"] == "exponential"

    r = await client.post(
        "/api/queues/opts/jobs",
        json={"name": "x", "options": {"backoff": {"kind": "fixed", "delay": 5}}},
    )
    assert r.status_code == 201, r.text
    fixed = await queue.get_job(r.json()["id"])
    assert fixed is not None and fixed.backoff is not None
    assert (fixed.backoff.kind, fixed.backoff.delay, fixed.backoff.max_delay) == (
        "fixed",
        5.0,
        None,
    )

    in_an_hour = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    for run_at in (in_an_hour.isoformat(), in_an_hour.strftime("%Y-%m-%dT%H:%M:%SZ")):
        r = await client.post(
            "/api/queues/opts/jobs", json={"name": "x", "options": {"run_at": run_at}}
        )
        assert r.status_code == 201, (run_at, r.text)
        assert r.json()["state"] == "delayed"
        stored = (await client.get(f"/api/queues/opts/jobs/{r.json()['id']}")).json()
        assert abs(stored["run_at"] / 1000 - in_an_hour.timestamp()) < 5
    r = await client.post(
        "/api/queues/opts/jobs", json={"name": "x", "options": {"run_at": time.time() + 600}}
    )
    assert r.status_code == 201 and r.json()["state"] == "delayed"
    r = await client.post(
        "/api/queues/opts/jobs", json={"name": "x", "options": {"run_at": time.time() - 600}}
    )
    assert r.status_code == 201 and r.json()["state"] == "waiting"  # due: runs at once


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"backoff": "exponential"}, "options.backoff must be an object"),
        ({"backoff": {"kind": "linear", "delay": 1}}, "'fixed' or 'exponential'"),
        ({"backoff": {"kind": "fixed"}}, "delay is required"),
        ({"backoff": {"kind": "fixed", "delay": -1}}, "options.backoff.delay"),
        ({"backoff": {"kind": "exponential", "jitter": 2}}, "jitter"),
        ({"backoff": {"kind": "exponential", "max_delay": "1h"}}, "max_delay"),
        ({"backoff": {"kind": "exponential", "base": 2}}, "unknown options.backoff fields"),
        ({"run_at": "2030-01-01T09:00:00"}, "has no timezone"),
        ({"run_at": "tomorrow"}, "ISO 8601"),
        ({"run_at": True}, "ISO 8601"),
        ({"run_at": "2030-13-01T00:00:00Z"}, "ISO 8601"),
        ({"run_at": "9999-01-01T00:00:00Z"}, "10 years"),
        ({"run_at": 4102444800, "delay": 5}, "not both"),
    ],
)
async def test_add_job_refuses_bad_backoff_or_run_at_with_a_400(
    client: httpx.AsyncClient, options: dict[str, Any], says: str
) -> None:
    r = await client.post("/api/queues/opts/jobs", json={"name": "x", "options": options})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "bad_request" and says in error["message"], error
