"""The dashboard's views of wave-2 features, in a real browser: a queue's schedules."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect
from tests.browser.conftest import QUEUE, shot
from tests.support.waiting import wait_for

from conveyor import SyncQueue

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def queue(redis_url: str, key_prefix: str) -> Any:
    q = SyncQueue(QUEUE, url=redis_url, prefix=key_prefix)
    yield q
    q.close()


def test_the_schedules_view_shows_each_schedule_and_steers_it(
    page: Any, queue: SyncQueue, start_worker: Any
) -> None:
    queue.schedule(
        "nightly", "send", {"kind": "digest"}, cron="30 2 * * *", tz="Europe/Berlin",
        misfire="run_once", misfire_grace=60,
    )  # fmt: skip
    queue.schedule("poll", "send", {"to": "feed@example.com"}, every=3600)
    page.goto(page.url.split("#")[0] + f"#/queues/{QUEUE}")
    page.get_by_test_id("schedules-link").click()
    rows = page.get_by_test_id("schedules").locator("tbody tr[data-schedule]")
    expect(rows).to_have_count(2)
    nightly = page.locator('tr[data-schedule="nightly"]')
    expect(nightly).to_contain_text("30 2 * * * (Europe/Berlin)")
    poll = page.locator('tr[data-schedule="poll"]')
    expect(poll).to_contain_text("every 3600 s")
    # The misfire policy and its grace, compact; the title says what they mean.
    expect(nightly.get_by_test_id("misfire")).to_have_text("run once · 60 s grace")
    expect(nightly.get_by_test_id("misfire")).to_have_attribute(
        "title", re.compile(r"more than 60 s late was missed: one catch-up run")
    )
    expect(poll.get_by_test_id("misfire")).to_contain_text("skip · ")
    shot(page, "20-schedules")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the column folds away
    expect(nightly.get_by_test_id("misfire")).to_be_hidden()
    expect(nightly.get_by_test_id("next-run")).to_be_visible()
    page.set_viewport_size({"width": 1360, "height": 900})

    poll.get_by_test_id("schedule-pause").click()
    expect(poll.get_by_test_id("next-run")).to_have_text("paused")
    assert queue.get_schedule("poll").paused  # type: ignore[union-attr]
    poll.get_by_test_id("schedule-resume").click()
    expect(poll.get_by_test_id("next-run")).not_to_have_text("paused")

    start_worker()
    nightly.get_by_test_id("schedule-trigger").click()
    expect(nightly.get_by_test_id("state")).to_have_text("completed", timeout=20_000)
    wait_for(lambda: queue.counts()["completed"] == 1, timeout=10, message="the run completed")

    nightly.get_by_test_id("schedule-remove").click()
    page.get_by_test_id("confirm-ok").click()
    expect(rows).to_have_count(1)
    assert queue.get_schedule("nightly") is None
    shot(page, "21-schedules-after-remove")


def test_the_groups_view_and_a_rate_limit_holding_jobs_back(
    page: Any, queue: SyncQueue, start_worker: Any
) -> None:
    from conveyor import RateLimit

    for i in range(30):
        queue.add("send", {"n": i}, group="tenant-big")
    for i in range(3):
        queue.add("send", {"n": i}, group="tenant-small")
    queue.set_group("tenant-small", concurrency=2, rate_limit=RateLimit(5, per=1), weight=3)
    queue.pause_group("tenant-big")
    page.goto(page.url.split("#")[0] + f"#/queues/{QUEUE}")
    page.get_by_test_id("groups-link").click()
    rows = page.get_by_test_id("groups").locator("tbody tr[data-group]")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("tenant-big")  # most waiting first
    expect(rows.nth(0)).to_contain_text("paused")
    small = page.locator('tr[data-group="tenant-small"]')
    expect(small).to_contain_text("5 per 1 s")
    expect(page.get_by_test_id("flow-summary")).to_contain_text("2 groups")
    shot(page, "22-groups")

    # A queue rate limit of 1 a minute: the worker runs one job, then the queue view says the
    # limit holds the rest back, and until when.
    queue.resume_group("tenant-big")
    queue.set_rate_limit(RateLimit(1, per=60))
    start_worker()
    wait_for(lambda: queue.counts()["completed"] >= 1, timeout=20, message="one job ran")
    page.goto(page.url.split("#")[0] + f"#/queues/{QUEUE}")
    expect(page.get_by_test_id("flow-held")).to_contain_text(
        "held back by the rate limit (1 per 60 s) until", timeout=15_000
    )
    # The waiting list holds the jobs waiting in groups, with the others, a page at a time.
    rows = page.get_by_test_id("jobs").locator("tbody tr[data-job]")
    expect(rows).to_have_count(20)
    expect(rows.nth(0)).to_contain_text("send")
    expect(page.get_by_text("· 32 jobs")).to_be_visible()
    expect(page.get_by_test_id("grouped-note")).to_have_count(0)
    shot(page, "23-queue-rate-limited")
    job = queue.get_jobs("completed")[0]
    page.goto(page.url.split("#")[0] + f"#/queues/{QUEUE}/jobs/{job.id}")
    expect(page.locator(".facts")).to_contain_text("tenant-")


def test_a_flow_shows_as_a_tree_and_a_batch_job_shows_its_batch(
    page: Any, queue: SyncQueue, start_worker: Any
) -> None:
    from conveyor import FlowJob

    parent = queue.add_flow(
        FlowJob("send", {"to": "parent@example.com"}, children=[
            FlowJob("send", {"to": f"child{i}@example.com"}) for i in range(3)
        ])
    )  # fmt: skip
    base = page.url.split("#")[0]
    page.goto(base + f"#/queues/{QUEUE}/jobs/{parent.id}")
    expect(page.get_by_test_id("state").first).to_have_text("waiting-children")
    children = page.get_by_test_id("flow-children")
    expect(children).to_contain_text("Children (3)")
    expect(children.get_by_test_id("state")).to_have_count(3)
    expect(children.get_by_test_id("state").first).to_have_text("waiting")
    shot(page, "24-flow-parent-waiting")
    child = children.locator("a").first
    child.click()
    expect(page.get_by_test_id("flow-parent")).to_contain_text(f"#{parent.id}")
    page.goto(base + f"#/queues/{QUEUE}/jobs/{parent.id}")
    start_worker()
    expect(page.get_by_test_id("state").first).to_have_text("completed", timeout=30_000)
    expect(children.get_by_test_id("state").first).to_have_text("completed")
    shot(page, "25-flow-parent-completed")

    batch = queue.add_batch(
        [{"name": "send", "data": {"to": f"b{i}@example.com"}} for i in range(4)]
    )
    wait_for(lambda: queue.get_batch(batch.id).pending == 0, timeout=30, message="batch done")  # type: ignore[union-attr]
    member = next(j for j in queue.get_jobs("completed") if j.batch == batch.id)
    page.goto(base + f"#/queues/{QUEUE}/jobs/{member.id}")
    expect(page.get_by_test_id("batch")).to_contain_text("4 succeeded, 0 failed, 0 pending of 4")
    shot(page, "26-batch-member")
