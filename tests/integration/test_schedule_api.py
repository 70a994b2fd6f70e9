"""The job-scheduler routes of the JSON API, and the add route's dedup option, against a real
Redis, with a worker in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from tests.support.conveyor_helpers import running, worker
from tests.support.waiting import async_wait_for

from conveyor import Queue
from conveyor.web import create_app

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def client(redis_url: str, key_prefix: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(url=redis_url, prefix=key_prefix)
    transport = httpx.ASGITransport(app=app)
    headers = {"x-conveyor-request": "1"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1", headers=headers
    ) as c:
        yield c
    await app.state.admin.close()


async def test_put_get_list_and_delete_a_schedule(client: httpx.AsyncClient) -> None:
    body = {
        "name": "report",
        "data": {"kind": "daily"},
        "cron": "0 3 * * *",
        "tz": "Europe/Berlin",
        "options": {"attempts": 3, "backoff": {"kind": "fixed", "delay": 5}},
    }
    r = await client.put("/api/queues/reports/schedules/nightly", json=body)
    assert r.status_code == 200, r.text
    made = r.json()
    assert (made["id"], made["cron"], made["tz"], made["paused"]) == (
        "nightly",
        "0 3 * * *",
        "Europe/Berlin",
        False,
    )
    assert made["options"]["attempts"] == 3 and made["options"]["backoff"]["kind"] == "fixed"
    assert made["next_run"].endswith("+00:00") and made["last_run"] is None
    assert made["misfire_grace"] == 5.0
    r = await client.put(
        "/api/queues/reports/schedules/nightly", json={**body, "misfire_grace": 120}
    )
    assert r.status_code == 200 and r.json()["misfire_grace"] == 120.0, r.text
    made = r.json()

    listed = (await client.get("/api/queues/reports/schedules")).json()["schedules"]
    assert [s["id"] for s in listed] == ["nightly"]
    assert (await client.get("/api/queues/reports/schedules/nightly")).json() == made
    assert "reports" in [q["name"] for q in (await client.get("/api/queues")).json()["queues"]]

    r = await client.delete("/api/queues/reports/schedules/nightly")
    assert r.status_code == 200 and r.json() == {"ok": True}
    r = await client.delete("/api/queues/reports/schedules/nightly")
    assert r.status_code == 404 and r.json()["error"]["code"] == "schedule_not_found"
    r = await client.get("/api/queues/reports/schedules/nightly")
    assert r.status_code == 404


async def test_pause_resume_trigger_and_the_last_job_with_its_state(
    client: httpx.AsyncClient, make_queue: Callable[..., Queue]
) -> None:
    queue = make_queue("polls")
    r = await client.put("/api/queues/polls/schedules/feed", json={"name": "poll", "every": 3600})
    assert r.status_code == 200, r.text
    r = await client.post("/api/queues/polls/schedules/feed/pause")
    assert r.json() == {"ok": True, "changed": True}
    paused = (await client.get("/api/queues/polls/schedules/feed")).json()
    assert paused["paused"] is True and paused["next_run"] is None
    r = await client.post("/api/queues/polls/schedules/feed/resume")
    assert r.json() == {"ok": True, "changed": True}
    r = await client.post("/api/queues/polls/schedules/feed/trigger")
    job_id = r.json()["job"]
    shown = (await client.get("/api/queues/polls/schedules/feed")).json()
    assert (shown["last_job"], shown["last_job_state"]) == (job_id, "waiting")

    async with running(worker(queue, {"poll": lambda job: None})):

        async def finished() -> bool:
            found = (await client.get("/api/queues/polls/schedules/feed")).json()
            return bool(found["last_job_state"] == "completed")

        await async_wait_for(finished, timeout=10)
    for action in ("pause", "resume", "trigger"):
        r = await client.post(f"/api/queues/polls/schedules/nope/{action}")
        assert r.status_code == 404, action


async def test_a_retried_trigger_with_an_idempotency_key_returns_the_same_job(
    client: httpx.AsyncClient, make_queue: Callable[..., Queue]
) -> None:
    queue = make_queue("retries")
    r = await client.put("/api/queues/retries/schedules/feed", json={"name": "poll", "every": 3600})
    assert r.status_code == 200, r.text
    url = "/api/queues/retries/schedules/feed/trigger"
    first = await client.post(url, headers={"Idempotency-Key": "req-1"})
    again = await client.post(url, headers={"Idempotency-Key": "req-1"})
    assert first.status_code == again.status_code == 200, again.text
    assert first.json()["deduplicated"] is False and again.json()["deduplicated"] is True
    assert again.json()["job"] == first.json()["job"]
    other = await client.post(url, headers={"Idempotency-Key": "req-2"})
    plain = await client.post(url)
    jobs = {first.json()["job"], other.json()["job"], plain.json()["job"]}
    assert len(jobs) == 3 and (await queue.counts())["waiting"] == 3
    shown = (await client.get("/api/queues/retries/schedules/feed")).json()
    assert shown["last_job"] == plain.json()["job"]  # a repeat is not a new run

    for bad, message in (("x" * 257, "Idempotency-Key"), ("tab\there", "control characters")):
        r = await client.post(url, headers={"Idempotency-Key": bad})
        assert r.status_code == 400, r.text
        assert message in r.json()["error"]["message"]
    assert (await queue.counts())["waiting"] == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "x", "cron": "99 * * * *"}, "malformed cron expression"),
        ({"name": "x", "cron": "0 3 * * *", "tz": "Atlantis/Capital"}, "unknown time zone"),
        ({"name": "x", "every": 0.5}, "every"),
        ({"name": "x", "every": 5, "cron": "* * * * *"}, "not both"),
        ({"name": "x"}, "either cron= or every="),
        ({"name": "x", "every": 5, "misfire": "sometimes"}, "misfire"),
        ({"name": "x", "every": 5, "misfire_grace": 0.5}, "misfire_grace must be a number from 1"),
        ({"name": "x", "every": 5, "options": {"delay": 3}}, "delay"),
        ({"every": 5}, "name"),
    ],
)
async def test_bad_schedules_are_400_and_store_nothing(
    client: httpx.AsyncClient, make_queue: Callable[..., Queue], body: dict, message: str
) -> None:
    queue = make_queue("bad")
    await queue.add("x")  # registered, so listing works
    r = await client.put("/api/queues/bad/schedules/s", json=body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]["message"]
    assert (await client.get("/api/queues/bad/schedules")).json() == {"schedules": []}


async def test_an_unknown_queue_is_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/queues/ghost/schedules")
    assert r.status_code == 404 and r.json()["error"]["code"] == "queue_not_found"


async def test_the_add_route_takes_each_dedupe_mode(
    client: httpx.AsyncClient, make_queue: Callable[..., Queue]
) -> None:
    queue = make_queue("dd")

    async def add(data: object, dedupe: dict[str, object]) -> dict[str, object]:
        body = {"name": "sync", "data": data, "options": {"dedupe": dedupe}}
        r = await client.post("/api/queues/dd/jobs", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    live = {"mode": "until_finished", "key": "user-1"}
    first, again = await add(1, live), await add(2, live)
    assert again["id"] == first["id"] and (first["deduplicated"], again["deduplicated"]) == (
        False,
        True,
    )
    throttled = {"mode": "throttle", "key": "user-2", "ttl": 60}
    assert (await add(1, throttled))["id"] == (await add(2, throttled))["id"]
    debounced = {"mode": "debounce", "key": "user-3", "delay": 30}
    made = await add({"v": 1}, debounced)
    assert made["state"] == "delayed"
    repeat = await add({"v": 2}, debounced)
    assert repeat["id"] == made["id"] and repeat["deduplicated"] is True
    job = await queue.get_job(str(made["id"]))
    assert job is not None and job.data == {"v": 2}  # the last add's data wins
    assert (await queue.counts())["waiting"] + (await queue.counts())["delayed"] == 3


@pytest.mark.parametrize(
    ("dedupe", "says"),
    [
        ("user-1", "options.dedupe must be an object"),
        ({"key": "k"}, "options.dedupe.mode is required"),
        ({"mode": "once", "key": "k"}, "options.dedupe.mode must be"),
        ({"mode": "throttle"}, "options.dedupe.key is required"),
        ({"mode": "throttle", "key": "k"}, "options.dedupe.ttl is required for mode 'throttle'"),
        ({"mode": "debounce", "key": "k", "ttl": 5}, "options.dedupe.ttl does not apply"),
        ({"mode": "until_finished", "key": "k", "delay": 5}, "delay does not apply"),
        ({"mode": "throttle", "key": "k", "ttl": 0}, "options.dedupe.ttl"),
        ({"mode": "throttle", "key": "", "ttl": 5}, "options.dedupe.key"),
        ({"mode": "throttle", "key": "a\tb", "ttl": 5}, "dedupe key"),
        ({"mode": "throttle", "key": "k", "ttl": 5, "window": 2}, "unknown options.dedupe"),
    ],
)
async def test_a_bad_dedupe_option_is_a_400_and_adds_nothing(
    client: httpx.AsyncClient, make_queue: Callable[..., Queue], dedupe: object, says: str
) -> None:
    queue = make_queue("dd-bad")
    r = await client.post(
        "/api/queues/dd-bad/jobs", json={"name": "x", "options": {"dedupe": dedupe}}
    )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "bad_request" and says in error["message"], error
    assert sum((await queue.counts()).values()) == 0
    both = {"dedupe": {"mode": "until_finished", "key": "k"}, "job_id": "j"}
    r = await client.post("/api/queues/dd-bad/jobs", json={"name": "x", "options": both})
    assert r.status_code == 400 and "not both" in r.json()["error"]["message"]
