"""Issue 20 item 2, in the browser: a completed job's earlier error is its last failed attempt,
short durations read as such, counts are coloured by meaning, the live dot and the banner say
Redis is down once, and an unknown job id leads back to its queue."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from tests.browser.conftest import QUEUE, TOKEN, Server, login, shot
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_for

from conveyor import Backoff, SyncQueue
from conveyor.web.app import create_app

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def queue(redis_url: str, key_prefix: str) -> Any:
    q = SyncQueue(QUEUE, url=redis_url, prefix=key_prefix)
    yield q
    q.close()


def test_a_completed_job_shows_its_earlier_error_as_the_last_failed_attempt(
    page: Any, queue: SyncQueue, start_worker: Any, flag_file: Path
) -> None:
    start_worker()
    job = queue.add("flaky", {"note": "once"}, attempts=2, backoff=Backoff.fixed(1.0))
    wait_for(lambda: queue.job_attempts(job.id), timeout=20, message="first attempt failed")
    flag_file.touch()
    wait_for(lambda: queue.counts()["completed"] == 1, timeout=20, message="the retry completed")
    base = page.url.split("#")[0]
    page.goto(base + f"#/queues/{QUEUE}/jobs/{job.id}")
    expect(page.get_by_test_id("state").first).to_have_text("completed")
    last = page.get_by_test_id("last-failed-attempt")
    expect(last).to_contain_text("smtp refused: once")
    expect(page.get_by_role("heading", name="Last failed attempt (attempt 1)")).to_be_visible()
    expect(page.get_by_test_id("job-error")).to_have_count(0)
    color = last.evaluate("e => getComputedStyle(e).color")
    bad = page.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--bad').trim()"
    )
    assert color != _rgb(bad), "an earlier attempt's error is not shown as the job's error"
    text = page.locator("main").inner_text()
    assert "0.00 ms" not in text, text
    for shown in re.findall(r"(\d+(?:\.\d+)?) ms", text):
        assert shown == "0" or not shown.startswith("0.0"), text  # "0.4 ms", never "0.00 ms"
    shot(page, "12-job-completed-after-a-failed-attempt")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(last).to_be_visible()
    shot(page, "12-mobile-job-completed-after-a-failed-attempt")


def test_counts_are_coloured_by_meaning(page: Any, queue: SyncQueue) -> None:
    queue.add("send", {"to": "a@example.com"})
    row = page.locator(f'[data-testid=queues] tr[data-queue="{QUEUE}"]')
    waiting = row.get_by_test_id("count-waiting").locator("a")
    # The overview learns of a new queue from its event stream, which looks for new queues
    # between reads (up to NEW_QUEUES_SECONDS, 5 s), or from its read when the stream opens
    # (the next test): expect's default 5 s is too short a wait.
    expect(waiting).to_have_text("1", timeout=15_000)

    def color(testid: str) -> str:
        link = row.get_by_test_id(testid).locator("a")
        return str(link.evaluate("e => getComputedStyle(e).color"))

    def var(name: str) -> str:
        script = f"getComputedStyle(document.documentElement).getPropertyValue('{name}')"
        return _rgb(str(page.evaluate(script)))

    muted = var("--muted")
    assert color("count-waiting") not in (var("--accent"), muted)  # not coloured as active
    assert color("count-failed") == muted  # a zero is not red
    assert color("count-active") == muted  # nor coloured at all
    expect(row.get_by_test_id("count-failed")).to_have_class(re.compile(r"\bzero\b"))
    for stat in ("total-active", "total-completed", "total-failed"):
        value = page.get_by_test_id(stat).locator(".stat-value")
        expect(value).to_have_text("0")
        assert value.evaluate("e => getComputedStyle(e).color") == muted, stat
    shot(page, "13-overview-counts")


def test_a_queue_made_before_the_live_stream_opened_shows_without_waiting_for_a_poll(
    page: Any, queue: SyncQueue
) -> None:
    # The stream starts where Redis is when it opens, so a queue made between the overview's
    # read and that moment is in none of its events: the page reads once more when it opens.
    held: list[Any] = []
    page.route("**/api/events", lambda route: held.append(route))
    page.reload()
    expect(page.get_by_role("heading", name="Queues")).to_be_visible()
    expect(page.locator("[data-testid=queues] tbody tr")).to_have_count(1)  # "no queues yet"
    while not held:
        page.wait_for_timeout(50)
    queue.add("send", {"to": "a@example.com"})
    held[0].continue_()
    row = page.locator(f'[data-testid=queues] tr[data-queue="{QUEUE}"]')
    # Well before the next poll (30 s while the stream is open).
    expect(row.get_by_test_id("count-waiting")).to_have_text("1", timeout=5_000)


def test_an_unknown_job_id_says_so_and_leads_back_to_its_queue(
    browser: Any, dashboard: Server, queue: SyncQueue
) -> None:
    # Not the page fixture: the browser reports the API's 404 on the console, as it should.
    queue.add("send", {"to": "a@example.com"})
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(dashboard.url)
    login(page)
    page.goto(dashboard.url + f"#/queues/{QUEUE}/jobs/no-such-job")
    missing = page.get_by_test_id("job-missing")
    expect(missing).to_contain_text("no job #no-such-job")
    expect(page.locator(".banner.error")).to_be_hidden()
    shot(page, "14-unknown-job")
    page.get_by_test_id("back-to-queue").click()
    expect(page.get_by_test_id("jobs").locator("tbody tr[data-job]")).to_have_count(1)
    context.close()


def test_the_live_dot_and_banner_say_once_that_redis_is_down(
    browser: Any, make_redis: Any, key_prefix: str
) -> None:
    server: RedisServer = make_redis()
    with SyncQueue(QUEUE, url=server.url, prefix=key_prefix) as q:
        q.add("send", {"to": "a@example.com"})
    app = create_app(url=server.url, prefix=key_prefix, token=TOKEN)
    with Server(app) as web:
        context = browser.new_context(viewport={"width": 1360, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(web.url)
        login(page)
        page.get_by_test_id("poll").select_option("2")
        live = page.get_by_test_id("live")
        expect(live).to_have_text("live")
        server.stop()
        banner = page.locator(".banner.error")
        expect(banner).to_contain_text("Redis is unreachable", timeout=20_000)
        expect(live).to_have_class(re.compile(r"\bdown\b"))
        expect(live).to_have_text("offline")
        said = banner.inner_text()
        assert said.lower().count("redis is unreachable") == 1 and ".." not in said, said
        shot(page, "15-redis-unreachable")
        server.start()
        expect(live).to_have_text("live", timeout=20_000)
        expect(banner).to_be_hidden()
        context.close()


def _rgb(css_hex: str) -> str:
    """'#8b97a6' -> 'rgb(139, 151, 166)', as getComputedStyle reports a colour."""
    value = css_hex.strip().lstrip("#")
    r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgb({r}, {g}, {b})"


def test_a_manual_retry_is_marked_between_the_runs_of_attempts(
    page: Any, queue: SyncQueue, start_worker: Any
) -> None:
    start_worker()
    job = queue.add("flaky", {"note": "run"}, attempts=2, backoff=Backoff.fixed(0.1))
    wait_for(lambda: queue.counts()["failed"] == 1, timeout=20, message="the first run failed")
    queue.retry(job.id)  # by hand: attempts count from 1 again
    wait_for(lambda: queue.counts()["failed"] == 1 and len(queue.job_attempts(job.id)) == 4,
             timeout=20, message="the second run failed")  # fmt: skip
    page.goto(page.url.split("#")[0] + f"#/queues/{QUEUE}/jobs/{job.id}")
    summaries = page.locator(".attempt summary")
    expect(summaries).to_have_count(4)
    # Newest first: 2, 1 | retried by hand | 2, 1; the marker sits between the two runs.
    marker = page.get_by_test_id("manual-retry")
    expect(marker).to_have_count(1)
    texts = page.locator(".attempts > *").all_inner_texts()
    assert [t.split(" ·")[0] if t.startswith("Attempt") else "marker" for t in texts] == [
        "Attempt 2", "Attempt 1", "marker", "Attempt 2", "Attempt 1",
    ], texts  # fmt: skip
    shot(page, "12b-job-manual-retry-marked")
