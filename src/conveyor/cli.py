"""The ``conveyor`` command line (click + rich).

Commands: ``worker`` (run jobs), ``demo`` (the one-command tour), and the operator commands
``info``, ``jobs``, ``show``, ``enqueue``, ``retry``, ``remove``, ``clean``, ``pause``,
``resume``. Every option also reads an environment variable: the one shown in ``--help``, else
``CONVEYOR_<COMMAND>_<OPTION>`` (click's ``auto_envvar_prefix``); ``--url`` reads
``CONVEYOR_URL`` then ``REDIS_URL``.

Exit codes (``cli_common``), the same for every command::

    0  success (a worker stopped cleanly, or finished in --burst / --max-jobs mode)
    1  the operation failed (job not found, wrong state, --check found no live worker, crash)
    2  usage or configuration error (bad option, target not importable, invalid or unknown
       queue name)
    3  Redis is unreachable or refused the command
    4  Redis is configured unsafely (evicting maxmemory-policy); the worker refused to start
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import orjson

from . import logs
from .cli_admin import COMMANDS
from .cli_common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    cli_settings,
    fail,
    run_async,
    url_option,
)
from .cli_flow import FLOW_COMMANDS
from .cli_info import info
from .cli_outbox import outbox_relay  # ecosystem: the PostgreSQL outbox relay
from .cli_schedules import schedules  # job schedulers
from .cli_serve import dashboard, demo
from .cli_workflows import COMMANDS as WORKFLOW_COMMANDS
from .errors import ConfigurationError, ConveyorError
from .queue import Handler, Queue
from .worker import Worker

__all__ = ["build_worker", "load_target", "main"]

log = logging.getLogger("conveyor.cli")

#: How a supervised child is started: this prefix, then the worker arguments.
CHILD_PREFIX = [sys.executable, "-c", "import sys; from conveyor.cli import main; main()", "worker"]


@click.group(
    context_settings={
        "help_option_names": ["-h", "--help"],
        "max_content_width": 100,
        # Every option without a documented variable of its own reads CONVEYOR_<COMMAND>_<OPTION>
        # (e.g. CONVEYOR_CLEAN_OLDER_THAN, CONVEYOR_INFO_JSON=1), as docs/design.md §6 asks.
        "auto_envvar_prefix": "CONVEYOR",
    }
)
@click.version_option(package_name="conveyor-queue")
def main() -> None:
    """Conveyor: a Redis-backed background job queue.

    Start with `conveyor demo`. Run workers with `conveyor worker app.tasks:queue`.

    Every option also reads an environment variable: the one shown in a command's --help, else
    CONVEYOR_<COMMAND>_<OPTION> (e.g. CONVEYOR_CLEAN_OLDER_THAN=1h, CONVEYOR_INFO_JSON=1).
    """


for _command in [
    info,
    *COMMANDS,
    *FLOW_COMMANDS,
    *WORKFLOW_COMMANDS,
    schedules,
    demo,
    dashboard,
    outbox_relay,
]:
    main.add_command(_command)


# -- worker ---------------------------------------------------------------------------------------


def load_target(spec: str) -> Any:
    """Import ``module:attr`` (or ``module.attr``, or ``path/to/file.py:attr``)."""
    if ":" in spec:
        module_name, attr = spec.rsplit(":", 1)
    elif "." in spec:
        module_name, attr = spec.rsplit(".", 1)
    else:
        fail(f"{spec!r} is not module:attribute (e.g. app.tasks:queue)", EXIT_USAGE)
    if "." not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        if module_name.endswith(".py") or os.sep in module_name:
            module = _import_path(Path(module_name))
        else:
            module = importlib.import_module(module_name)
    except ConveyorError:
        raise
    except Exception as exc:
        fail(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}", EXIT_USAGE)
    try:
        return getattr(module, attr)
    except AttributeError:
        fail(f"module {module_name!r} has no attribute {attr!r}", EXIT_USAGE)


def _import_path(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    sys.path.insert(0, str(path.resolve().parent))
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _handlers_from(value: Any) -> dict[str, Handler]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    return {getattr(fn, "__name__", repr(fn)): fn for fn in value}


def build_worker(
    obj: Any,
    *,
    url: str | None = None,
    prefix: str | None = None,
    queues: Sequence[str] = (),
    concurrency: int | None = None,
    burst: bool = False,
    max_jobs: int | None = None,
    shutdown_grace: float | None = None,
    allow_evicting_redis: bool = False,
) -> Worker:
    """A Worker from what ``worker TARGET`` names (Queue, Worker or a settings object), with the
    command line's options applied on top of what the target sets."""
    if callable(obj) and not isinstance(obj, (Queue, Worker, type)):
        obj = obj()  # a factory function
    template: dict[str, Any] = {}
    if isinstance(obj, Worker):
        base_queues, handlers = list(obj.queues), dict(obj.handlers)
        template = {
            "concurrency": obj.concurrency,
            "backoff_strategies": obj.strategies,
            "shutdown_grace": obj.shutdown_grace,
            "burst": obj.burst,
            "max_jobs": obj.max_jobs,
            "allow_evicting_redis": obj.allow_evicting_redis,
        }
    elif isinstance(obj, Queue):
        base_queues, handlers = [obj], {}
    elif hasattr(obj, "queues") or hasattr(obj, "queue"):
        raw = getattr(obj, "queues", None) or [getattr(obj, "queue", None)]
        raw = [raw] if isinstance(raw, (Queue, str)) else list(raw)
        settings = cli_settings(getattr(obj, "url", None) or url, prefix)
        base_queues = [q if isinstance(q, Queue) else Queue(q, settings=settings) for q in raw]
        handlers = _handlers_from(getattr(obj, "handlers", None) or getattr(obj, "functions", None))
        for key in ("concurrency", "shutdown_grace", "burst", "max_jobs", "allow_evicting_redis"):
            if getattr(obj, key, None) is not None:
                template[key] = getattr(obj, key)
        if getattr(obj, "backoff_strategies", None):
            template["backoff_strategies"] = obj.backoff_strategies
    else:
        fail(
            f"the target is a {type(obj).__name__}; expected a Queue, a Worker, or an object "
            "with `queues` (and optionally `handlers`, `concurrency`, ...)",
            EXIT_USAGE,
        )
    if not base_queues:
        fail("the target names no queue", EXIT_USAGE)
    for queue in base_queues:
        for name, fn in queue.handlers.items():
            handlers.setdefault(name, fn)
    settings = base_queues[0].settings
    changes = {k: v for k, v in (("url", url), ("prefix", prefix)) if v}
    if changes:
        settings = settings.replace(**changes)
        base_queues = [Queue(q.name, settings=settings) for q in base_queues]
    if queues:
        by_name = {q.name: q for q in base_queues}
        base_queues = [by_name.get(n) or Queue(n, settings=settings) for n in queues]
    for key, value in (
        ("concurrency", concurrency),
        ("shutdown_grace", shutdown_grace),
        ("max_jobs", max_jobs),
    ):
        if value is not None:
            template[key] = value
    if burst:
        template["burst"] = True
    if allow_evicting_redis:
        template["allow_evicting_redis"] = True
    return Worker(base_queues, handlers, **template)


def _banner(worker: Worker, fmt: str, processes: int = 1) -> None:
    queues = [q.name for q in worker.queues]
    handlers = sorted(worker.handlers)
    fields: dict[str, Any] = {
        "redis": worker.settings.redacted_url(),
        "prefix": worker.settings.prefix,
        "queues": [q.name for q in worker.queues],
        "concurrency": worker.concurrency,
        "handlers": sorted(worker.handlers),
        "pid": os.getpid(),
    }
    if fmt == "json":
        click.echo(orjson.dumps({"event": "banner", **fields}).decode(), err=True)
        return
    extra = f" x {processes} processes" if processes > 1 else ""
    lines = [
        f"conveyor {_version()} worker (pid {os.getpid()})",
        f"  redis:       {fields['redis']}  (prefix {fields['prefix']!r})",
        f"  queues:      {', '.join(queues)}  (in this order)",
        f"  concurrency: {worker.concurrency}{extra}",
        f"  handlers:    {', '.join(handlers) or '(none!)'}",
    ]
    click.secho("\n".join(lines), err=True, fg="cyan")


def _version() -> str:
    from .version import __version__

    return __version__


async def _check(worker: Worker) -> int:
    """Health probe: Redis answers and every queue has at least one live worker."""
    from .admin import Admin

    async with Admin(settings=worker.settings) as admin:
        await admin.ping()
        overview = await admin.overview([q.name for q in worker.queues])
    missing = [queue["name"] for queue in overview if not queue["workers"]]
    if missing:
        click.echo(f"unhealthy: no live worker on {', '.join(missing)}", err=True)
        return EXIT_ERROR
    click.echo("ok")
    return EXIT_OK


def _child_args(params: Mapping[str, Any]) -> list[str]:
    """Worker arguments that reproduce ``params`` in a supervised child (one process)."""
    args = [params["target"], "--workers", "1", "--no-reload"]
    for key in ("url", "prefix", "queues", "concurrency", "max_jobs", "shutdown_grace"):
        if params.get(key) is not None and params.get(key) != ():
            value = params[key]
            value = ",".join(value) if isinstance(value, (list, tuple)) else value
            args += [f"--{key.replace('_', '-')}", str(value)]
    for flag in ("burst", "allow_evicting_redis"):
        if params.get(flag):
            args.append(f"--{flag.replace('_', '-')}")
    args += ["--log-level", params["log_level"], "--log-format", params["log_format"]]
    return args


def _split_queues(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(part.strip() for part in value.split(",") if part.strip())


@main.command()
@click.argument("target", envvar="CONVEYOR_TARGET")
@url_option
@click.option(
    "--queues",
    "-q",
    callback=_split_queues,
    envvar="CONVEYOR_QUEUES",
    show_envvar=True,
    help="Comma-separated queues, fetched in this order (default: the target's).",
)
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(min=1),
    envvar="CONVEYOR_CONCURRENCY",
    show_envvar=True,
    help="Jobs run at once per process [default: the target's, else 10].",
)
@click.option(
    "--workers",
    "-w",
    type=click.IntRange(min=1),
    default=1,
    envvar="CONVEYOR_WORKERS",
    show_envvar=True,
    show_default=True,
    help="Worker processes; with more than 1 a supervisor restarts any that dies.",
)
@click.option(
    "--burst",
    is_flag=True,
    envvar="CONVEYOR_BURST",
    show_envvar=True,
    help="Exit when the queues are empty.",
)
@click.option(
    "--max-jobs",
    type=click.IntRange(min=1),
    envvar="CONVEYOR_MAX_JOBS",
    show_envvar=True,
    help="Exit after this many jobs.",
)
@click.option(
    "--shutdown-grace",
    type=float,
    envvar="CONVEYOR_SHUTDOWN_GRACE",
    show_envvar=True,
    help="Seconds running jobs get to finish on SIGTERM [default: 30].",
)
@click.option(
    "--reload/--no-reload",
    default=False,
    envvar="CONVEYOR_RELOAD",
    show_envvar=True,
    help="Restart when a .py file under the current directory changes (development).",
)
@click.option(
    "--log-level",
    default="INFO",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    envvar="CONVEYOR_LOG_LEVEL",
    show_envvar=True,
    show_default=True,
    help="Log lines at this level and above.",
)
@click.option(
    "--log-format",
    default="text",
    type=click.Choice(["text", "json"]),
    envvar="CONVEYOR_LOG_FORMAT",
    show_envvar=True,
    show_default=True,
    help="json: one object per line with queue, job_id, job_name, attempt, duration_ms.",
)
@click.option(
    "--allow-evicting-redis",
    is_flag=True,
    envvar="CONVEYOR_ALLOW_EVICTING_REDIS",
    show_envvar=True,
    help="Start even when Redis may evict keys (jobs can be lost).",
)
@click.option(
    "--check",
    is_flag=True,
    help="Health probe: exit 0 if every queue has a live worker, else 1.",
)
@click.pass_context
def worker(ctx: click.Context, /, **params: Any) -> None:
    """Run a worker for TARGET: module:attr (or module.attr, or file.py:attr) naming a Queue, a
    Worker, or an object with `queues` and `handlers`.

    \b
    Examples:
      conveyor worker app.tasks:queue --concurrency 50
      conveyor worker app.tasks:queue --workers 4 --queues high,default,low
      conveyor worker app.tasks:queue --burst          # process what is there, then exit
      conveyor worker app.tasks:queue --check          # health probe for a process manager
    """
    logs.configure(params["log_level"], params["log_format"])
    obj = load_target(params["target"])
    try:
        built = build_worker(
            obj,
            url=params["url"],
            prefix=params["prefix"],
            queues=params["queues"],
            concurrency=params["concurrency"],
            burst=params["burst"],
            max_jobs=params["max_jobs"],
            shutdown_grace=params["shutdown_grace"],
            allow_evicting_redis=params["allow_evicting_redis"],
        )
    except ConfigurationError as exc:
        fail(str(exc), EXIT_USAGE)
    if params["check"]:
        ctx.exit(run_async(_check(built)))
    if params["workers"] > 1 or params["reload"]:
        from .supervisor import Supervisor

        _banner(built, params["log_format"], params["workers"])
        prefix = (ctx.obj or {}).get("child_prefix", CHILD_PREFIX)
        supervisor = Supervisor(
            [*prefix, *_child_args(params)],
            params["workers"],
            reload_paths=[os.getcwd()] if params["reload"] else (),
            stop_timeout=built.shutdown_grace + 10,
        )
        ctx.exit(supervisor.run())
    from .supervisor import watch_parent

    watch_parent()
    if not os.environ.get("CONVEYOR_WORKER_PROCESS"):
        _banner(built, params["log_format"])
    run_async(built.run(), freeze_heap=True)
    ctx.exit(EXIT_OK)
