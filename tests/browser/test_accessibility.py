"""axe-core (from npm, the frontend's lockfile) in every view, dark and light, at desktop width
and at 390 px: no critical or serious finding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from tests.browser.conftest import QUEUE, TOKEN, shot
from tests.support.waiting import wait_for

from conveyor import SyncQueue

pytestmark = pytest.mark.timeout(180)

AXE = Path(__file__).resolve().parents[2] / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
#: The findings that fail a test; "moderate" and "minor" are printed only.
BLOCKING = ("critical", "serious")


def axe_findings(page: Any) -> list[dict[str, Any]]:
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing ({AXE.name}): run `bash scripts/setup` (npm ci)")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => (await axe.run(document)).violations")
    for finding in result:
        if finding["impact"] not in BLOCKING:
            print("axe (not blocking):", finding["id"], finding["impact"], len(finding["nodes"]))
    return [
        {
            "rule": f["id"],
            "impact": f["impact"],
            "help": f["help"],
            "nodes": [n["target"] for n in f["nodes"]][:5],
        }
        for f in result
        if f["impact"] in BLOCKING
    ]


@pytest.fixture
def jobs(redis_url: str, key_prefix: str, start_worker: Any) -> dict[str, str]:
    """A queue with a completed job (progress, logs, result), a failed one and waiting ones."""
    queue = SyncQueue(QUEUE, url=redis_url, prefix=key_prefix)
    done = queue.add("send", {"to": "a11y@example.com"})
    failed = queue.add("flaky", {"note": "for the record"}, attempts=1)
    worker = start_worker()
    wait_for(lambda: queue.counts()["failed"] == 1 and queue.counts()["completed"] == 1, timeout=30)
    worker.terminate()
    for i in range(3):
        queue.add("send", {"to": f"w{i}@example.com"})
    queue.schedule("nightly", "send", {"kind": "digest"}, cron="30 2 * * *", tz="Europe/Berlin")
    queue.add("send", {"to": "tenant@example.com"}, group="tenant-42")
    queue.close()
    return {"done": done.id, "failed": failed.id}


@pytest.mark.parametrize(
    ("width", "scheme"), [(1360, "dark"), (1360, "light"), (390, "dark"), (390, "light")]
)
def test_every_view_has_no_serious_accessibility_finding(
    browser: Any, dashboard: Any, jobs: dict[str, str], width: int, scheme: str
) -> None:
    context = browser.new_context(
        viewport={"width": width, "height": 900},
        color_scheme=scheme,
        is_mobile=width < 500,
        bypass_csp=True,  # only to inject axe; the page itself runs under its CSP elsewhere
    )
    page = context.new_page()
    page.goto(dashboard.url)
    expect(page.get_by_placeholder("API token")).to_be_visible()
    findings = {"login": axe_findings(page)}
    page.get_by_placeholder("API token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Overview").wait_for()
    # No theme was chosen here: the page follows the system's preference.
    assert page.evaluate("document.documentElement.dataset.theme") == scheme
    views = {
        "overview": ("#/", "[data-testid=queues] tr[data-queue]"),
        "queue": (f"#/queues/{QUEUE}/waiting", "[data-testid=jobs] tbody tr[data-job]"),
        "failed": (f"#/queues/{QUEUE}/failed", "[data-testid=jobs] tbody tr[data-job]"),
        "completed job": (f"#/queues/{QUEUE}/jobs/{jobs['done']}", "[data-testid=job-result]"),
        "failed job": (f"#/queues/{QUEUE}/jobs/{jobs['failed']}", "[data-testid=job-error]"),
        "workers": ("#/workers", "[data-testid=workers]"),
        "schedules": (f"#/queues/{QUEUE}/schedules", "tr[data-schedule]"),
        "groups": (f"#/queues/{QUEUE}/groups", "tr[data-group]"),
    }
    for view, (hash_, ready) in views.items():
        page.goto(dashboard.url + hash_)
        page.locator(ready).first.wait_for()
        findings[view] = axe_findings(page)
        shot(page, f"a11y-{view.replace(' ', '-')}-{width}-{scheme}")
    context.close()
    assert {v: f for v, f in findings.items() if f} == {}


def test_the_title_counts_and_the_favicon(page: Any, jobs: dict[str, str]) -> None:
    expect(page).to_have_title("(4 waiting, 1 failed) Overview · Conveyor")
    assert page.locator("link[rel=icon]").get_attribute("href").startswith("data:image/svg+xml")
    page.goto(page.url.split("#")[0] + f"#/queues/{QUEUE}/failed")
    expect(page).to_have_title(f"(4 waiting, 1 failed) {QUEUE} · Conveyor")
