"""The live event streams (server-sent events, web/live.py) of a real server process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.support.dashboard import serve_app
from tests.support.processes import ProcessManager

from conveyor import SyncQueue

pytestmark = pytest.mark.timeout(60)

TOKEN = "a-token-for-the-live-stream-tests"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def server(spawn: ProcessManager, redis_url: str, key_prefix: str) -> str:
    _, base = serve_app(spawn, url=redis_url, prefix=key_prefix, token=TOKEN)
    return base


@pytest.fixture
def queue(redis_url: str, key_prefix: str) -> Iterator[SyncQueue]:
    q = SyncQueue("live", url=redis_url, prefix=key_prefix)
    q.add("setup")  # registers the queue
    yield q
    q.close()


def messages(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """Each SSE message as {"event", "id", "data"} (comments skipped)."""
    message: dict[str, Any] = {}
    for line in response.iter_lines():
        if not line:
            if "data" in message:
                yield message
            message = {}
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            message[field] = value.strip()


def test_a_queue_stream_sends_its_transitions_and_resumes_from_the_last_id(
    server: str, queue: SyncQueue
) -> None:
    with httpx.Client(base_url=server, headers=AUTH, timeout=20) as client:
        with client.stream("GET", "/api/queues/live/events") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = messages(response)
            first = queue.add("email", {"n": 1})
            message = next(stream)
            assert json.loads(message["data"]) == {
                "events": [{"queue": "live", "event": "added", "job": first.id}], "count": 1,
            }  # fmt: skip
            resume_from = message["id"]
        # Added while no one listened: a browser reconnecting with Last-Event-ID gets it.
        missed = queue.add("email", {"n": 2})
        resume = {"last-event-id": resume_from}
        with client.stream("GET", "/api/queues/live/events", headers=resume) as response:
            data = json.loads(next(messages(response))["data"])
            assert data["events"][0]["job"] == missed.id


def test_a_job_stream_keeps_that_jobs_events_only(server: str, queue: SyncQueue) -> None:
    watched = queue.add("email")
    with httpx.Client(base_url=server, headers=AUTH, timeout=20) as client:
        url = f"/api/queues/live/events?job={watched.id}"
        with client.stream("GET", url) as response:
            stream = messages(response)
            for _ in range(5):
                queue.add("email")  # other jobs: nothing is sent for them
            queue.remove(watched.id)
            data = json.loads(next(stream)["data"])
            assert data == {"events": [{"queue": "live", "event": "removed", "job": watched.id}],
                            "count": 1}  # fmt: skip


def test_the_all_queues_stream_follows_queues_made_after_it_opened(
    server: str, queue: SyncQueue, redis_url: str, key_prefix: str
) -> None:
    with (
        httpx.Client(base_url=server, headers=AUTH, timeout=20) as client,
        client.stream("GET", "/api/events") as response,
        SyncQueue("newcomer", url=redis_url, prefix=key_prefix) as newcomer,
    ):
        stream = messages(response)
        newcomer.add("hello")  # the first add registers the queue
        assert next(stream).get("event") == "queues"  # the page refreshes: a new row
        queue.add("x")
        newcomer.add("again")
        received: list[dict[str, Any]] = []
        while len(received) < 2:
            received += json.loads(next(stream)["data"])["events"]
        assert {e["queue"] for e in received} == {"live", "newcomer"}


def test_streams_need_credentials_and_a_known_queue(server: str, queue: SyncQueue) -> None:
    with httpx.Client(base_url=server, timeout=10) as client:
        assert client.get("/api/events").status_code == 401
        assert client.get("/api/queues/live/events").status_code == 401
        r = client.get("/api/queues/nosuch/events", headers=AUTH)
        assert (r.status_code, r.json()["error"]["code"]) == (404, "queue_not_found")
        r = client.get("/api/queues/live/events", params={"job": "x" * 5000}, headers=AUTH)
        assert (r.status_code, r.json()["error"]["code"]) == (400, "bad_request"), r.text
