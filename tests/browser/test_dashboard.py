"""The dashboard in a real browser: live counts, job detail with traceback, retry, bulk retry,
inert XSS payloads, screenshots of every page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from tests.browser.conftest import QUEUE, shot
from tests.support.waiting import wait_for

from conveyor import SyncQueue

pytestmark = pytest.mark.timeout(120)

XSS = "<img src=x onerror=window.__xss=1>"


@pytest.fixture
def queue(redis_url: str, key_prefix: str) -> Any:
    q = SyncQueue(QUEUE, url=redis_url, prefix=key_prefix)
    yield q
    q.close()


def _row(page: Any, name: str = QUEUE) -> Any:
    return page.locator(f'[data-testid=queues] tr[data-queue="{name}"]')


def _failed(queue: SyncQueue, n: int) -> None:
    wait_for(lambda: queue.counts()["failed"] == n, timeout=20, message=f"{n} failed jobs")


def test_overview_counts_change_as_a_worker_runs(
    page: Any, queue: SyncQueue, start_worker: Any
) -> None:
    for i in range(6):
        queue.add("send", {"to": f"user{i}@example.com"})
    row = _row(page)
    expect(row.get_by_test_id("count-waiting")).to_have_text("6", timeout=15_000)
    expect(page.get_by_test_id("no-workers")).to_be_visible()
    shot(page, "01-overview-waiting")
    start_worker()
    expect(row.get_by_test_id("count-completed")).to_have_text("6", timeout=30_000)
    expect(row.get_by_test_id("count-waiting")).to_have_text("0")
    expect(page.get_by_test_id("no-workers")).to_have_count(0)
    expect(page.get_by_test_id("workers-online")).to_contain_text("1")
    shot(page, "02-overview-after-worker")

    page.get_by_role("link", name="Workers").click()
    expect(page.get_by_test_id("workers").locator("tbody tr")).to_have_count(1)
    shot(page, "06-workers")


def test_failed_job_traceback_retry_and_complete(
    page: Any, queue: SyncQueue, start_worker: Any, flag_file: Path
) -> None:
    start_worker()
    job = queue.add("flaky", {"note": "first try"})
    _failed(queue, 1)
    page.goto(page.url.split("#")[0] + f"#/queues/{QUEUE}/jobs/{job.id}")
    expect(page.get_by_test_id("state").first).to_have_text("failed")
    trace = page.get_by_test_id("traceback").first
    expect(trace).to_contain_text("Traceback (most recent call last)")
    expect(trace).to_contain_text("RuntimeError: smtp refused: first try")
    shot(page, "04-job-failed")
    flag_file.touch()
    page.get_by_test_id("retry").click()
    expect(page.get_by_test_id("state").first).to_have_text("completed", timeout=20_000)
    expect(page.get_by_test_id("job-result")).to_contain_text('"ok": true')
    shot(page, "05-job-completed")


def test_bulk_retry_from_the_queue_view(
    page: Any, queue: SyncQueue, start_worker: Any, flag_file: Path
) -> None:
    start_worker()
    for i in range(3):
        queue.add("flaky", {"note": f"bulk {i}"})
    for i in range(4):
        queue.add("send", {"to": f"bulk{i}@example.com"})
    _failed(queue, 3)
    wait_for(lambda: queue.counts()["completed"] == 4, timeout=20)
    page.goto(page.url.split("#")[0] + f"#/queues/{QUEUE}/failed")
    rows = page.get_by_test_id("jobs").locator("tbody tr[data-job]")
    expect(rows).to_have_count(3)
    expect(page.get_by_test_id("tab-failed")).to_contain_text("3")
    page.get_by_test_id("select-all").check()
    expect(page.get_by_test_id("selected-count")).to_have_text("3 selected")
    shot(page, "03-queue-failed-selected")
    flag_file.touch()
    page.get_by_test_id("bulk-retry").click()
    expect(page.get_by_test_id("tab-completed")).to_contain_text("7", timeout=20_000)
    expect(page.get_by_test_id("tab-failed")).to_contain_text("0")
    expect(rows).to_have_count(0)
    # retry-all shows the count in its confirm dialog
    flag_file.unlink()
    queue.add("flaky", {"note": "again"})
    _failed(queue, 1)
    expect(page.get_by_test_id("tab-failed")).to_contain_text("1", timeout=10_000)
    page.get_by_test_id("retry-all").click()
    expect(page.get_by_test_id("confirm")).to_contain_text("1 failed jobs will be queued again")
    page.get_by_test_id("confirm-cancel").click()
    page.get_by_test_id("tab-completed").click()
    expect(page.get_by_test_id("jobs").locator("tbody tr[data-job]")).to_have_count(7)
    shot(page, "07-queue-completed")


def test_xss_payloads_in_name_data_and_error_are_inert(
    page: Any, queue: SyncQueue, start_worker: Any
) -> None:
    job = queue.add("flaky", {"note": XSS, "html": XSS})
    evil = queue.add(XSS, {"x": XSS}, delay=3600)
    start_worker()
    _failed(queue, 1)
    base = page.url.split("#")[0]
    for route in (
        "#/",
        f"#/queues/{QUEUE}/failed",
        f"#/queues/{QUEUE}/delayed",
        f"#/queues/{QUEUE}/jobs/{job.id}",
        f"#/queues/{QUEUE}/jobs/{evil.id}",
    ):
        page.goto(base + route)
        page.wait_for_load_state("networkidle")
        page.locator("main section").first.wait_for()
        if "jobs/" in route:
            expect(page.get_by_test_id("job-data")).to_contain_text(XSS)
        assert page.locator("img[src=x]").count() == 0, route
        assert page.evaluate("window.__xss") is None, route
    expect(page.get_by_test_id("job-name")).to_have_text(XSS)
    page.goto(base + f"#/queues/{QUEUE}/jobs/{job.id}")
    expect(page.get_by_test_id("job-error")).to_contain_text(XSS)
    shot(page, "08-xss-inert")
    assert page.evaluate("window.__xss") is None


def test_mobile_and_light_layouts(browser: Any, dashboard: Any, queue: SyncQueue) -> None:
    from tests.browser.conftest import login

    for i in range(3):
        queue.add("send", {"to": f"m{i}@example.com"})
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, color_scheme="dark"
    )
    page = context.new_page()
    page.goto(dashboard.url)
    login(page)
    expect(_row(page).get_by_test_id("count-waiting")).to_have_text("3")
    shot(page, "09-mobile-overview")
    page.goto(dashboard.url + f"#/queues/{QUEUE}")
    expect(page.get_by_test_id("jobs").locator("tbody tr[data-job]")).to_have_count(3)
    shot(page, "10-mobile-queue")
    page.get_by_role("button", name="toggle theme").click()
    shot(page, "11-mobile-queue-light")
    context.close()


def test_bidi_controls_are_shown_as_code_points_and_a_bad_link_does_not_break_the_page(
    page: Any, queue: SyncQueue
) -> None:
    # U+202E would show "exe.txt" for "txt.exe"; U+2066 opens an isolate.
    job = queue.add("send", {"file": "invoice\u202etxt.exe", "note": "a\u2066b"})
    base = page.url.split("#")[0]
    page.goto(base + f"#/queues/{QUEUE}/jobs/{job.id}")
    data = page.get_by_test_id("job-data")
    expect(data).to_contain_text("invoice<U+202E>txt.exe")
    expect(data).to_contain_text("a<U+2066>b")
    text = page.locator("main").inner_text()
    assert "\u202e" not in text and "\u2066" not in text
    # A malformed escape in a hand-edited link: the page still routes (the fixture fails the
    # test on any uncaught error in the page).
    page.goto(base + "#/%E0%A4%A")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def test_a_throttled_login_counts_down_before_the_next_try(browser: Any, dashboard: Any) -> None:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.goto(dashboard.url)
    token = page.get_by_placeholder("API token")
    sign_in = page.get_by_test_id("sign-in")
    statuses = []
    for i in range(12):  # a few wrong guesses are answered; then the server says wait
        token.fill(f"wrong-guess-{i}")
        with page.expect_response(lambda r: r.url.endswith("/api/login")) as answer:
            sign_in.click()
        statuses.append(answer.value.status)
        if statuses[-1] == 429:
            break
    assert statuses[-1] == 429, statuses
    # The wait is short (a second or two): catch the countdown while it runs.
    page.wait_for_function(
        "() => { const b = document.querySelector('[data-testid=sign-in]');"
        " return b.disabled && /^Try again in \\d+ s$/.test(b.textContent); }",
        timeout=5_000,
    )
    expect(page.get_by_role("alert")).to_contain_text("before the next try")
    shot(page, "12-login-throttled")
    expect(sign_in).to_be_enabled(timeout=15_000)  # and it ends
    expect(sign_in).to_have_text("Sign in")
    context.close()


def test_the_workers_view_shows_what_each_worker_runs_now(
    page: Any, queue: SyncQueue, start_worker: Any, flag_file: Path
) -> None:
    held = queue.add("hold", {"report": 7})
    start_worker()
    page.goto(page.url.split("#")[0] + "#/workers")
    running = page.get_by_test_id("workers").get_by_test_id("running")
    expect(running).to_contain_text(f"#{held.id} hold")
    expect(running).to_contain_text(f"{QUEUE} · for")
    expect(page.get_by_test_id("restarts")).to_have_text("0")
    shot(page, "06b-workers-running")
    running.get_by_role("link", name=f"#{held.id}").click()
    expect(page.get_by_test_id("job-name")).to_have_text("hold")
    flag_file.touch()
    wait_for(lambda: queue.counts()["completed"] == 1, timeout=20, message="the held job ends")


def test_server_sent_events_drive_the_views_not_the_poll(
    page: Any, queue: SyncQueue, start_worker: Any, flag_file: Path
) -> None:
    # The slowest poll: a stream open, the next poll is 30 s away; every change below shows
    # within a few seconds, so it came from the event stream.
    page.get_by_test_id("poll").select_option("10")
    expect(page.get_by_test_id("live")).to_have_text("live")
    queue.add("send", {"to": "first@example.com"})  # the queue appears on the overview
    expect(_row(page).get_by_test_id("count-waiting")).to_have_text("1", timeout=8_000)
    queue.add("send", {"to": "second@example.com"})
    expect(_row(page).get_by_test_id("count-waiting")).to_have_text("2", timeout=5_000)
    held = queue.add("hold", {})
    start_worker()
    page.goto(page.url.split("#")[0] + f"#/queues/{QUEUE}/jobs/{held.id}")
    expect(page.get_by_test_id("state")).to_have_text("active", timeout=15_000)
    flag_file.touch()
    expect(page.get_by_test_id("state")).to_have_text("completed", timeout=5_000)
    expect(page.get_by_test_id("job-result")).to_contain_text("released")
    # Paused means paused: the stream is closed too.
    page.get_by_test_id("poll").select_option("0")
    expect(page.get_by_test_id("live")).to_have_text("paused")


def test_a_search_reads_every_job_of_the_state_not_only_the_newest(
    page: Any, queue: SyncQueue
) -> None:
    # The one match is the oldest of 25,000 waiting jobs: beyond any "newest N" window.
    queue.add("send", {"to": "needle-in-a-haystack@example.com"})
    for _ in range(25):
        queue.add_bulk([{"name": "send", "data": {"to": "hay@example.com"}}] * 1000)
    page.goto(page.url.split("#")[0] + f"#/queues/{QUEUE}/waiting")
    page.get_by_test_id("search").fill("NEEDLE-in")
    page.get_by_role("button", name="Filter").click()
    rows = page.get_by_test_id("jobs").locator("tbody tr[data-job]")
    expect(rows).to_have_count(1, timeout=30_000)
    expect(rows.first).to_contain_text("needle-in-a-haystack")
    expect(page.get_by_test_id("search-done")).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("search-progress")).to_contain_text(
        "1 match · searched 25,001 of 25,001 waiting jobs"
    )
    shot(page, "07b-search-every-job")
