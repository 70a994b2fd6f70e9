"""The job-scheduler routes of the JSON API against a real Redis, with a worker in-process."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from tests.support.conveyor_helpers import running, worker
from tests.support.waiting import async_wait_for

from conveyor import Queue

pytestmark = pytest.mark.timeout(60)


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


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "x", "cron": "99 * * * *"}, "malformed cron expression"),
        ({"name": "x", "cron": "0 3 * * *", "tz": "Atlantis/Capital"}, "unknown time zone"),
        ({"name": "x", "every": 0.5}, "every"),
        ({"name": "x", "every": 5, "cron": "* * * * *"}, "not both"),
        ({"name": "x"}, "either cron= or every="),
        ({"name": "x", "every": 5, "misfire": "sometimes"}, "misfire"),
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
