"""Issue 20 item 7, in the browser: the demo's /send-email, opened in a browser, goes on to the
job's live page, and that page words the attempt as the job's log does."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect
from tests.browser.conftest import shot
from tests.integration.test_demo import CLI, stop_demo
from tests.support.processes import ProcessManager
from tests.support.redis_server import find_free_port

pytestmark = pytest.mark.timeout(120)


def test_send_email_from_a_browser_goes_to_the_live_job_page(
    browser: Any, spawn: ProcessManager, redis_url: str, key_prefix: str
) -> None:
    port, dashboard_port = find_free_port(), find_free_port()
    proc = spawn(
        CLI,
        args=["demo", "--url", redis_url, "--prefix", key_prefix, "--port", str(port),
              "--dashboard-port", str(dashboard_port)],
        env={"EMAIL_FAILURE_RATE": "0", "EMAIL_SECONDS": "3", "REDIS_URL": ""},
        name="demo",
    )  # fmt: skip
    proc.wait_for_output("Press Ctrl-C to stop.", timeout=30)
    app = f"http://127.0.0.1:{port}"
    context = browser.new_context(viewport={"width": 900, "height": 700})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{app}/send-email?to=ada@example.com&title=Hi")
    assert re.fullmatch(rf"{re.escape(app)}/jobs/[^/]+", page.url), page.url
    state, attempt, logs = (page.locator(f"#{x}") for x in ("state", "attempt", "logs"))
    expect(state).to_have_text("active")
    expect(logs).to_contain_text("attempt 1 of 5")
    expect(attempt).to_have_text("(attempt 1 of 5)")  # the log's words, not "0 of 5"
    shot(page, "16-demo-job-running")
    expect(state).to_have_text("completed", timeout=20_000)
    expect(attempt).to_have_text("(done in attempt 1 of 5)")
    shot(page, "17-demo-job-completed")
    context.close()
    stop_demo(proc)
