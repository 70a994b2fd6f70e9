"""``conveyor demo``: Redis, the example email app, a worker and the dashboard, in one command.

The example's code is not in the package: it is ``examples/email_app/`` (``tasks.py``, the
worker side, and ``app.py``, the web side), loaded from there so that what runs is exactly
what a user reads and copies.

Which Redis, in this order (and the demo always says which it chose):

1. ``--url`` / ``REDIS_URL``;
2. a Redis answering on ``localhost:6379`` (unless ``--private-redis``) that is configured
   safely (``noeviction``);
3. a private ``redis-server`` from PATH, on a free port, in a temporary folder, without
   persistence; it is stopped and its folder removed on exit.

Every key the demo writes is under its own prefix (``conveyor-demo`` by default), so it never
mixes with an application's data in a shared Redis.

Everything else runs in this one process (web app and dashboard on uvicorn, the worker on the
same event loop), so Ctrl-C stops it all and leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import webbrowser
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import click

from .errors import ConfigurationError, ConveyorError
from .storage.urls import redact_url

if TYPE_CHECKING:
    from .storage.safety import RedisSafety

__all__ = ["DemoError", "DemoRedisError", "DemoSetupError", "find_examples", "run_demo"]

log = logging.getLogger("conveyor.demo")

INSTALL_REDIS = """\
No Redis server was found: nothing answers on localhost:6379 and there is no `redis-server`
on PATH to start a private one. Install Redis, then run the demo again:
  Debian/Ubuntu:  sudo apt-get install redis-server
  Fedora:         sudo dnf install redis
  macOS:          brew install redis
  Docker:         docker run -d -p 6379:6379 redis:7
Or point the demo at a Redis you have: conveyor demo --url redis://host:6379/0"""


class DemoError(ConveyorError):
    """The demo cannot run; the message says what to do about it."""

    code = "demo_failed"


class DemoSetupError(DemoError, ConfigurationError):
    """Something the demo needs is missing or taken: the example app, the web extra, a port, a
    usable Redis URL."""


class DemoRedisError(DemoError):
    """No Redis to run on: the one named does not answer or refuses commands, none answers on
    localhost and none can be started."""

    code = "demo_no_redis"


def find_examples() -> Path:
    """``examples/email_app`` of this checkout (or ``CONVEYOR_EXAMPLES_DIR``)."""
    candidates = []
    if os.environ.get("CONVEYOR_EXAMPLES_DIR"):
        candidates.append(Path(os.environ["CONVEYOR_EXAMPLES_DIR"]))
    candidates += [Path(__file__).resolve().parents[2] / "examples", Path.cwd() / "examples"]
    for base in candidates:
        if (base / "email_app" / "tasks.py").is_file():
            return base / "email_app"
    raise DemoSetupError(
        "the demo's example app (examples/email_app) was not found; run the demo from a "
        "checkout of the Conveyor repository, or set CONVEYOR_EXAMPLES_DIR"
    )


# -- Redis ----------------------------------------------------------------------------------------


@dataclass
class RedisChoice:
    url: str
    how: str
    process: subprocess.Popen[bytes] | None = None
    directory: str | None = None
    notes: list[str] = field(default_factory=list)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # redis-server shuts down cleanly on SIGTERM
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)


def _ping(url: str, timeout: float = 0.5) -> RedisSafety | None:
    """PING the server; what the worker's safety check finds when it answers, None when it
    does not."""
    from .errors import CommandRefused, ConnectionError
    from .settings import Settings
    from .storage.commands import ping
    from .storage.redis import SyncRedis
    from .storage.safety import check_safety

    try:
        redis = SyncRedis(Settings(url=url, socket_timeout_seconds=timeout))
    except (ConfigurationError, ValueError) as exc:
        raise DemoSetupError(f"cannot use the Redis URL {redact_url(url)!r}: {exc}") from exc
    try:
        try:
            redis.run(ping())
        except CommandRefused as exc:
            raise DemoRedisError(
                f"Redis at {redact_url(url)} answered with an error: {exc}"
            ) from exc
        except ConnectionError:
            return None
        try:
            return check_safety(redis)  # (CONFIG may be disabled: then the policy is None)
        except ConnectionError:
            return None
    finally:
        redis.close()


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def start_private_redis(timeout: float = 10.0) -> RedisChoice:
    binary = shutil.which("redis-server")
    if binary is None:
        raise DemoRedisError(INSTALL_REDIS)
    directory = tempfile.mkdtemp(prefix="conveyor-demo-redis-")
    port = _free_port()
    args = ["--bind", "127.0.0.1", "--port", str(port), "--dir", directory, "--save", ""]
    args += ["--appendonly", "no", "--daemonize", "no", "--maxmemory-policy", "noeviction"]
    process = subprocess.Popen(
        [binary, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the terminal's Ctrl-C is ours to handle, in order
    )
    url = f"redis://127.0.0.1:{port}/0"
    choice = RedisChoice(url, f"a private redis-server (pid {process.pid}), stopped on exit")
    choice.process, choice.directory = process, directory
    deadline = time.monotonic() + timeout
    while _ping(url, 0.2) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            choice.stop()
            raise DemoRedisError(f"the private redis-server did not start on port {port}")
        time.sleep(0.05)
    return choice


def choose_redis(url: str | None, private: bool) -> RedisChoice:
    if url:
        if _ping(url, 2.0) is None:
            raise DemoRedisError(f"Redis at {redact_url(url)} does not answer")
        return RedisChoice(url, "the Redis you named (--url / REDIS_URL)")
    if not private:
        local = "redis://localhost:6379/0"
        found = _ping(local, 0.3)
        if found is not None and not found.may_evict:
            return RedisChoice(
                local,
                "the Redis answering on localhost:6379, database 0 "
                "(--private-redis uses a throwaway server instead)",
            )
        if found is not None:
            choice = start_private_redis()
            choice.notes.append(
                f"localhost:6379 answers but may evict keys (maxmemory-policy "
                f"{found.policy}), so the demo did not use it"
            )
            return choice
    return start_private_redis()


# -- the example and the dashboard ---------------------------------------------------------------


def load_example(directory: Path) -> tuple[ModuleType, ModuleType]:
    """Import ``tasks`` and ``app`` from the example folder (as a user would run them)."""
    sys.path.insert(0, str(directory))
    for name in ("tasks", "app"):
        sys.modules.pop(name, None)
    try:
        return importlib.import_module("tasks"), importlib.import_module("app")
    except ImportError as exc:
        raise DemoSetupError(
            f"the example app needs the web extra: pip install 'conveyor-queue[web]' ({exc})"
        ) from exc


def dashboard_app(settings: Any) -> Any:
    """The dashboard and JSON API (``conveyor.web``) on the example's Redis and prefix."""
    try:
        from .web import create_app
    except ImportError as exc:
        raise DemoSetupError(
            f"the dashboard needs the web extra: pip install 'conveyor-queue[web]' ({exc})",
        ) from exc
    return create_app(settings=settings)


# -- running -------------------------------------------------------------------------------------


def _bind(host: str, port: int, what: str, flag: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise DemoSetupError(
            f"cannot serve the {what} on {host}:{port} ({exc.strerror}); choose another port "
            f"with {flag}"
        ) from exc
    sock.listen(128)
    sock.set_inheritable(False)
    return sock


def _server(app: Any, sock: socket.socket) -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # the demo handles signals itself
            yield

    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    server = Server(config)
    return server


def _url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::1", "::") else host
    return f"http://{shown}:{port}"


async def _follow_events(queue: Any) -> None:
    """Print each job's story as it happens (the same events the dashboard shows)."""
    try:
        async for event in queue.events():
            fields = event.fields
            line = {
                "added": "added",
                "active": "started",
                "completed": "completed",
                "retrying": f"failed ({fields.get('error')}); retrying in "
                f"{int(fields.get('delay', 0)) / 1000:g} s",
                "failed": f"FAILED for good: {fields.get('error')}",
            }.get(event.event)
            if line:
                click.echo(f"  [{queue.name} job {event.job_id}] {line}")
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the feed is a nicety; never let it take the demo down
        log.debug("event feed stopped: %s", exc)


async def _serve_all(
    host: str,
    app_sock: socket.socket,
    dash_sock: socket.socket,
    concurrency: int,
    examples: Path,
    open_browser: bool,
    redis: RedisChoice,
    prefix: str,
) -> int:
    tasks_module, app_module = load_example(examples)
    from .worker import Worker

    queue = tasks_module.queue
    app_url, dash_url = _url(host, app_sock), _url(host, dash_sock)
    dashboard = dashboard_app(queue.settings)
    web = app_module.create_app(queue, dashboard_url=dash_url)
    worker = Worker(queue, concurrency=concurrency, shutdown_grace=5.0)
    app_server, dash_server = _server(web, app_sock), _server(dashboard, dash_sock)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            click.echo("\nstopping (Ctrl-C again to stop at once)...")
        stop.set()
        if signals > 1:
            # Forced: uvicorn skips the apps' lifespan shutdown and would log it as an error.
            logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
            worker.shutdown_grace = 0.0
            for server in (app_server, dash_server):
                server.force_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)

    running = [
        asyncio.create_task(worker.run(install_signal_handlers=False), name="worker"),
        asyncio.create_task(app_server.serve(sockets=[app_sock]), name="app"),
        asyncio.create_task(dash_server.serve(sockets=[dash_sock]), name="dashboard"),
    ]
    feed = asyncio.create_task(_follow_events(queue), name="events")
    while not (app_server.started and dash_server.started):
        done = [t for t in running if t.done()]
        if done:
            stop.set()
            break
        await asyncio.sleep(0.02)
    else:
        _print_banner(app_url, dash_url, redis, prefix)
        if open_browser:
            webbrowser.open(app_url)
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait([stopper, *running], return_when=asyncio.FIRST_COMPLETED)
    code = 0
    for task in running:
        if task.done() and not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            click.secho(f"error: the {task.get_name()} stopped: {exc}", err=True, fg="red")
            code = 1
    await worker.close()
    app_server.should_exit = dash_server.should_exit = True
    feed.cancel()
    stopper.cancel()
    await asyncio.gather(feed, stopper, return_exceptions=True)
    results = await asyncio.gather(*running, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            code = 1
    await queue.close()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
    return code


def _print_banner(app_url: str, dash_url: str, redis: RedisChoice, prefix: str) -> None:
    echo = click.echo
    echo("")
    click.secho("Conveyor demo is running", bold=True, fg="green")
    echo(f"  Example app:   {app_url}/")
    echo(f"  Send an email: {app_url}/send-email?to=ada@example.com")
    echo(
        f"                curl -X POST {app_url}/send-email -H 'content-type: application/json'"
        ' -d \'{"to": "ada@example.com", "title": "Hi", "body": "Hello"}\''
    )
    echo(f"  Watch a job:   {app_url}/jobs/<id>")
    echo(f"  Dashboard:     {dash_url}/")
    echo(f"  JSON API:      {dash_url}/api/queues")
    shown_url = redact_url(redis.url)
    echo(f"  Redis:         {shown_url} - {redis.how}")
    echo(f"                 the demo's keys are under '{prefix}:*' and nothing else is touched")
    for note in redis.notes:
        echo(f"                 note: {note}")
    echo(f"  Try the CLI:   {cli_command()} info --url {shown_url} --prefix {prefix}")
    echo("Press Ctrl-C to stop.")
    echo("")


def cli_command() -> str:
    """How to call ``conveyor`` from the shell the demo was started in: the bare name when it
    is on PATH (an activated venv), else the path of this very executable (e.g.
    ``.venv/bin/conveyor``), so the command works when copied as shown."""
    running = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    found = shutil.which("conveyor")
    if found and (running is None or Path(found).resolve() == running):
        return "conveyor"
    if running is None or running.name != "conveyor":
        return f"{Path(sys.executable).parent / 'conveyor'}"
    try:
        return os.path.relpath(running)
    except ValueError:
        return str(running)


def run_demo(
    *,
    url: str | None,
    prefix: str,
    private_redis: bool,
    host: str,
    port: int,
    dashboard_port: int,
    concurrency: int,
    open_browser: bool,
) -> int:
    examples = find_examples()
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)  # the demo prints its own
    app_sock = _bind(host, port, "example app", "--port")
    try:
        dash_sock = _bind(host, dashboard_port, "dashboard", "--dashboard-port")
    except DemoError:
        app_sock.close()
        raise
    redis = choose_redis(url, private_redis)
    # The example's queue reads its settings from the environment, like any user's would.
    os.environ["REDIS_URL"] = os.environ["CONVEYOR_URL"] = redis.url
    os.environ["CONVEYOR_PREFIX"] = prefix
    try:
        return asyncio.run(
            _serve_all(
                host,
                app_sock,
                dash_sock,
                concurrency,
                examples,
                open_browser,
                redis,
                prefix,
            )
        )
    finally:
        app_sock.close()
        dash_sock.close()
        redis.stop()
        click.echo("demo stopped")
