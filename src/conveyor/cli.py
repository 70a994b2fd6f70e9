"""The ``conveyor`` command line."""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
from typing import Any

import click

from .errors import ConveyorError
from .queue import Queue
from .settings import Settings
from .worker import Worker

__all__ = ["main"]


def load_target(spec: str) -> Any:
    """Import ``module:attr`` (or ``module.attr``)."""
    if ":" in spec:
        module_name, attr = spec.split(":", 1)
    elif "." in spec:
        module_name, attr = spec.rsplit(".", 1)
    else:
        raise click.BadParameter(f"{spec!r} is not module:attribute", param_hint="TARGET")
    sys.path.insert(0, ".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(f"cannot import {module_name!r}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise click.BadParameter(f"module {module_name!r} has no attribute {attr!r}") from None


@click.group()
@click.version_option(package_name="conveyor-queue")
def main() -> None:
    """Conveyor: a Redis-backed background job queue."""


@main.command()
@click.argument("target")
@click.option("--concurrency", "-c", type=int, envvar="CONVEYOR_CONCURRENCY", help="Jobs at once.")
@click.option("--burst", is_flag=True, envvar="CONVEYOR_BURST", help="Exit when queues are empty.")
@click.option("--max-jobs", type=int, envvar="CONVEYOR_MAX_JOBS", help="Exit after N jobs.")
@click.option("--allow-evicting-redis", is_flag=True, envvar="CONVEYOR_ALLOW_EVICTING_REDIS")
@click.option("--log-level", default="INFO", envvar="CONVEYOR_LOG_LEVEL", show_default=True)
def worker(
    target: str,
    concurrency: int | None,
    burst: bool,
    max_jobs: int | None,
    allow_evicting_redis: bool,
    log_level: str,
) -> None:
    """Run a worker for TARGET (module:attr naming a Queue or a Worker)."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    obj = load_target(target)
    if isinstance(obj, Worker):
        run = obj
    elif isinstance(obj, Queue):
        run = Worker(
            obj,
            concurrency=concurrency,
            burst=burst,
            max_jobs=max_jobs,
            allow_evicting_redis=allow_evicting_redis,
        )
    else:
        raise click.BadParameter(f"{target} is a {type(obj).__name__}, not a Queue or Worker")
    try:
        asyncio.run(run.run())
    except ConveyorError as exc:
        raise click.ClickException(str(exc)) from exc


def _settings() -> Settings:
    return Settings.from_env()
