"""``conveyor demo`` (the one-command tour) and ``conveyor dashboard`` (the web UI and API)."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import click

from . import logs
from .cli_common import EXIT_USAGE, cli_settings, exit_code_for, fail
from .settings import Settings

__all__ = ["dashboard", "demo"]


@click.command()
@click.option(
    "--url",
    envvar=["CONVEYOR_URL", "REDIS_URL"],
    show_envvar=True,
    help="Redis to use [default: one on localhost:6379 that is safe, else a throwaway one].",
)
@click.option(
    "--prefix",
    default="conveyor-demo",
    envvar="CONVEYOR_DEMO_PREFIX",
    show_envvar=True,
    show_default=True,
    help="Key prefix for the demo's data.",
)
@click.option(
    "--private-redis",
    is_flag=True,
    envvar="CONVEYOR_DEMO_PRIVATE_REDIS",
    show_envvar=True,
    help="Always start a throwaway redis-server, even when one answers on localhost:6379.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    envvar="CONVEYOR_DEMO_HOST",
    show_default=True,
    help="Address the example app and the dashboard listen on.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=3000,
    envvar="CONVEYOR_DEMO_PORT",
    show_envvar=True,
    show_default=True,
    help="Port of the example web app.",
)
@click.option(
    "--dashboard-port",
    type=click.IntRange(0, 65535),
    default=3001,
    envvar="CONVEYOR_DASHBOARD_PORT",
    show_envvar=True,
    show_default=True,
    help="Port of the dashboard.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=5,
    envvar="CONVEYOR_CONCURRENCY",
    help="Jobs the demo's worker runs at once.",
)
@click.option(
    "--open",
    "open_browser",
    is_flag=True,
    envvar="CONVEYOR_DEMO_OPEN",
    help="Open the example app in a browser.",
)
@click.option(
    "--log-level",
    default="INFO",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    envvar="CONVEYOR_LOG_LEVEL",
    help="Log lines at this level and above.",
)
def demo(**params: Any) -> None:
    """The one-command tour: Redis, an example web app that sends emails, a worker and the
    dashboard. Ctrl-C stops everything."""
    from .demo import DemoError, run_demo

    logs.configure(params.pop("log_level"))
    try:
        code = run_demo(**params)
    except DemoError as exc:
        fail(str(exc), exit_code_for(exc))
    sys.exit(code)


@click.command()
@click.option(
    "--host", default="127.0.0.1", envvar="CONVEYOR_HOST", show_envvar=True, show_default=True,
    help="Address to listen on.",
)  # fmt: skip
@click.option(
    "--port", type=click.IntRange(0, 65535), default=3001, envvar="CONVEYOR_PORT", show_envvar=True,
    show_default=True, help="Port to listen on.",
)  # fmt: skip
@click.option("--url", envvar=["CONVEYOR_URL", "REDIS_URL"], show_envvar=True, help="Redis URL.")
@click.option("--prefix", envvar="CONVEYOR_PREFIX", show_envvar=True, help="Key prefix in Redis.")
@click.option("--token", envvar="CONVEYOR_TOKEN", show_envvar=True, help="API/dashboard token.")
@click.option(
    "--username", envvar="CONVEYOR_USERNAME", show_envvar=True, help="Login name (with --password)."
)
@click.option(
    "--password",
    envvar="CONVEYOR_PASSWORD",
    show_envvar=True,
    help="Login password, 8 characters at least (with --username).",
)
@click.option(
    "--secret-key",
    envvar="CONVEYOR_SECRET_KEY",
    show_envvar=True,
    help=(
        "Key login sessions are signed with, 32 bytes at least. Give the same one to every "
        "dashboard process behind one address, so that each accepts the others' sessions and "
        "a restart keeps them. Default: a random key per process. Prefer the environment "
        "variable: a command line is visible to every local user."
    ),
)
@click.option(
    "--read-only",
    is_flag=True,
    envvar="CONVEYOR_READ_ONLY",
    show_envvar=True,
    help="Show everything, change nothing (no retry, remove, pause, ...).",
)
@click.option(
    "--forwarded-allow-ips",
    envvar="CONVEYOR_FORWARDED_ALLOW_IPS",
    show_envvar=True,
    help=(
        "Comma-separated addresses of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed. Default: none, so the client address is the socket's "
        "(a local process cannot pose as another client to dodge the login throttle)."
    ),
)
def dashboard(
    host: str,
    port: int,
    url: str | None,
    prefix: str | None,
    token: str | None,
    username: str | None,
    password: str | None,
    secret_key: str | None,
    read_only: bool,
    forwarded_allow_ips: str | None,
) -> None:
    """Serve the dashboard and the JSON API (http://HOST:PORT/). Without --token or
    --username/--password it binds to loopback only."""
    try:
        import uvicorn

        from .web import create_app
        from .web.security import is_loopback
    except ImportError as exc:
        fail(f"the dashboard needs the web extra: pip install 'conveyor-queue[web]' ({exc})")
    if not (token or username) and not is_loopback(host):
        fail(
            f"refusing to bind to {host} without credentials: set --token (CONVEYOR_TOKEN) or "
            "--username/--password, or bind to 127.0.0.1",
            EXIT_USAGE,
        )
    settings = cli_settings(url, prefix)
    try:
        app = create_app(
            settings=settings, token=token, username=username, password=password,
            read_only=read_only, secret_key=None if secret_key is None else secret_key.encode(),
        )  # fmt: skip
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    shown = "localhost" if is_loopback(host) else host
    click.echo(f"Conveyor dashboard on http://{shown}:{port}/  (Redis {settings.redacted_url()})")
    if not (token or username):
        click.echo("No credentials configured: serving loopback clients only.")
    unreachable = redis_problem(settings)
    if unreachable:
        click.echo(f"Warning: {unreachable} The dashboard says so until it answers.", err=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        # Live event streams never end by themselves: give them this long at shutdown.
        timeout_graceful_shutdown=3,
        proxy_headers=bool(forwarded_allow_ips),
        forwarded_allow_ips=forwarded_allow_ips or "",
    )


def redis_problem(settings: Settings) -> str | None:
    """Why Redis cannot be used now (said once at start, since the page may not be opened for a
    while), or None when it answers a PING."""
    from .storage.commands import ping
    from .storage.redis import SyncRedis
    from .storage.urls import redact_url

    redis: SyncRedis | None = None
    try:
        redis = SyncRedis(dataclasses.replace(settings, socket_timeout_seconds=2.0))
        redis.run(ping())
    except Exception as exc:  # a hint at start: whatever the client raises must not stop serving
        return f"Redis at {settings.redacted_url()}: {redact_url(str(exc)).rstrip('.')}."
    finally:
        if redis is not None:
            redis.close()
    return None
