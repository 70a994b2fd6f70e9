"""Browser tests: the real dashboard (built front end + JSON API on uvicorn) in Debian's
chromium through Playwright, against the session Redis, with a worker in a subprocess.

Screenshots go to ``test-output/screenshots/`` for people to look at.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.processes import ProcessManager
from tests.support.waiting import wait_for

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

playwright_api = pytest.importorskip("playwright.sync_api")
uvicorn = pytest.importorskip("uvicorn")

from conveyor.web.app import STATIC_DIR, create_app  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
TOKEN = "browser-test-token"
QUEUE = "emails"

WORKER_CODE = """
import asyncio, os, sys
from conveyor import Queue, Worker

url, prefix, flag = sys.argv[1:4]
queue = Queue("emails", url=url, prefix=prefix)

async def send(job):
    await job.update_progress(30)
    await job.log("connecting to smtp")
    await asyncio.sleep(0.3)
    await job.log("sent")
    await job.update_progress(100)
    return {"sent": True, "to": (job.data or {}).get("to")}

async def flaky(job):
    if not os.path.exists(flag):
        raise RuntimeError("smtp refused: " + str((job.data or {}).get("note", "")))
    return {"ok": True}

async def hold(job):
    # Runs until the flag file exists (at most 30 s): a job to watch while it runs.
    for _ in range(300):
        if os.path.exists(flag):
            return "released"
        await asyncio.sleep(0.1)

async def main():
    print("worker starting", flush=True)
    await Worker(queue, {"send": send, "flaky": flaky, "hold": hold}, concurrency=4).run()

asyncio.run(main())
"""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session", autouse=True)
def _dashboard_built() -> None:
    if not (STATIC_DIR / "index.html").is_file():
        pytest.fail("the dashboard is not built: run `bash scripts/setup` (npm run build)")
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: apt-get install chromium (scripts/setup does it)")


class Server:
    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> Server:
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=10, message="uvicorn did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def dashboard(redis_url: str, key_prefix: str) -> Iterator[Server]:
    app = create_app(url=redis_url, prefix=key_prefix, token=TOKEN)
    with Server(app) as server:
        yield server


@pytest.fixture
def flag_file(tmp_path: Path) -> Path:
    """Jobs named "flaky" fail until this file exists."""
    return tmp_path / "let-flaky-succeed"


@pytest.fixture
def start_worker(
    spawn: ProcessManager, redis_url: str, key_prefix: str, flag_file: Path
) -> Iterator[Any]:
    def start() -> Any:
        proc = spawn(WORKER_CODE, args=(redis_url, key_prefix, str(flag_file)), name="worker")
        proc.wait_for_output("worker starting", timeout=15)
        return proc

    yield start


# Module scope, not session: Playwright's sync API keeps an event loop running in this thread
# while it is open, which would break every pytest-asyncio test collected after this package.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, dashboard: Server) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 900}, color_scheme="dark")
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def on_console(msg: Any) -> None:
        # The first API call before login answers 401 by design; anything else is a bug.
        if msg.type == "error" and "401" not in msg.text:
            errors.append(msg.text)

    page.on("console", on_console)
    page.goto(dashboard.url)
    login(page)
    yield page
    context.close()
    assert not errors, f"errors in the page: {errors}"


def login(page: Any) -> None:
    page.get_by_placeholder("API token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Overview").wait_for()


def shot(page: Any, name: str, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
