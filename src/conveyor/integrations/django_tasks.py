"""A backend for Django's Tasks framework (Django 6's ``django.tasks``, or the ``django-tasks``
backport on Django 5.2) that enqueues onto Conveyor.

settings.py::

    TASKS = {
        "default": {
            "BACKEND": "conveyor.integrations.django_tasks.ConveyorBackend",
            "QUEUES": ["default", "emails"],          # Conveyor queues of the same names
            "OPTIONS": {
                "url": "redis://localhost:6379/0",    # else settings.CONVEYOR / CONVEYOR_URL
                "prefix": "myproject",
                "job_options": {"attempts": 3},      # any Queue.add option, for every task
            },
        }
    }

``@task`` functions then ``.enqueue()`` as jobs called ``django_task`` (the task's import
path, arguments and backend in the job's data); run them with
``python manage.py conveyor_worker conveyor.integrations.django_tasks:worker`` (every option of
``conveyor worker``; ``--queues`` picks some). ``priority`` maps to the job's priority,
``run_after`` to ``run_at``, the result id is the job id, and ``get_result`` reads status,
return value, errors (one per failed attempt, with the traceback) and timestamps back from
Redis while the job is kept (``keep_completed`` / ``keep_failed``).
"""

from __future__ import annotations

import datetime as dt
import importlib
import secrets
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigurationError
from ..job import Job, JobState
from ..settings import Settings
from ..sync_queue import SyncQueue
from ..worker import Worker


def _import_api() -> tuple[Any, str]:
    """Django's own Tasks API where there is one (Django >= 6), else the backport's."""
    for package in ("django.tasks", "django_tasks"):
        try:
            importlib.import_module(f"{package}.backends.base")
        except ImportError:
            continue
        return importlib.import_module(package), package
    raise ImportError(
        "no Django Tasks API: use Django >= 6.0, or pip install 'conveyor-queue[django]' "
        "(the django-tasks backport)"
    )


_api, _PACKAGE = _import_api()
_base = importlib.import_module(f"{_PACKAGE}.base")
_backends = importlib.import_module(f"{_PACKAGE}.backends.base")
_BaseTaskBackend: Any = _backends.BaseTaskBackend
_signals = importlib.import_module(f"{_PACKAGE}.signals")
_exceptions = importlib.import_module(f"{_PACKAGE}.exceptions")

__all__ = ["JOB_NAME", "ConveyorBackend", "run_django_task", "worker"]

#: Every task is one job of this name; which task it is lives in the job's data.
JOB_NAME = "django_task"
#: OPTIONS keys the backend reads (any case).
_OPTION_KEYS = {"url", "prefix", "job_options"}

_STATUS = {
    JobState.WAITING: "READY",
    JobState.DELAYED: "READY",
    JobState.ACTIVE: "RUNNING",
    JobState.COMPLETED: "SUCCESSFUL",
    JobState.FAILED: "FAILED",
}

_queues: dict[tuple[Settings, str], SyncQueue] = {}
_queues_lock = threading.Lock()


def _shared_queue(settings: Settings, name: str) -> SyncQueue:
    """One ``SyncQueue`` per queue for the process: Django makes a backend per thread."""
    key = (settings, name)
    queue = _queues.get(key)
    if queue is None:
        with _queues_lock:
            queue = _queues.setdefault(key, SyncQueue(name, settings=settings))
    return queue


class ConveyorBackend(_BaseTaskBackend):  # type: ignore[misc]
    """Django Tasks onto Conveyor queues (see the module's docstring)."""

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        options = {str(key).lower(): value for key, value in (self.options or {}).items()}
        unknown = set(options) - _OPTION_KEYS
        if unknown:
            raise ConfigurationError(
                f"TASKS[{alias!r}]['OPTIONS'] has unknown keys {sorted(unknown)}; "
                f"use {', '.join(sorted(_OPTION_KEYS))}"
            )
        if not self.queues:
            raise ConfigurationError(
                f"TASKS[{alias!r}]['QUEUES'] must name the queues (results are read from them)"
            )
        from .django import get_settings

        changes = {k: options[k] for k in ("url", "prefix") if options.get(k)}
        self.settings = get_settings().replace(**changes) if changes else get_settings()
        job_options = options.get("job_options") or {}
        if not isinstance(job_options, Mapping):
            raise ConfigurationError(f"OPTIONS['job_options'] must be a dict, not {job_options!r}")
        self.job_options = dict(job_options)
        for fixed in ("priority", "run_at", "delay", "job_id"):
            if fixed in self.job_options:
                raise ConfigurationError(
                    f"OPTIONS['job_options'] cannot set {fixed!r}: it comes from each task"
                )

    def queue(self, name: str) -> SyncQueue:
        return _shared_queue(self.settings, name)

    # -- enqueue -------------------------------------------------------------------------------

    def enqueue(self, task: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        self.validate_task(task)
        from django.utils import timezone  # type: ignore[import-untyped, unused-ignore]

        data = {
            "task": task.module_path,
            "args": _utils().normalize_json(list(args)),
            "kwargs": _utils().normalize_json(dict(kwargs)),
            "backend": self.alias,
            "queue": task.queue_name,
            "takes_context": bool(task.takes_context),
        }
        run_at = task.run_after
        if run_at is not None and timezone.is_naive(run_at):
            run_at = timezone.make_aware(run_at)
        job = self.queue(task.queue_name).add(
            JOB_NAME,
            data,
            **self.job_options,
            priority=int(task.priority),
            run_at=run_at,
            # Random like other backends' ids, so a result id names one job in any queue.
            job_id=secrets.token_hex(16),
        )
        result = _task_result(task, job, self.alias, [])
        _signals.task_enqueued.send(type(self), task_result=result)
        return result

    # -- results -------------------------------------------------------------------------------

    def get_result(self, result_id: str) -> Any:
        for name in sorted(self.queues):
            queue = self.queue(name)
            try:
                job = queue.get_job(result_id)
            except ConfigurationError:  # not a possible job id: no such result
                break
            if job is not None and job.name == JOB_NAME:
                task = _load_task(job.data)
                errors = _errors(job, queue.job_attempts(job.id))
                return _task_result(task, job, self.alias, errors)
        raise _exceptions.TaskResultDoesNotExist(result_id)


def _utils() -> Any:
    return importlib.import_module(f"{_PACKAGE}.utils")


def _aware(ms: int | None) -> dt.datetime | None:
    return None if ms is None else dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def _task_result(task: Any, job: Job, alias: str, errors: list[Any]) -> Any:
    status = _base.TaskResultStatus[_STATUS[job.state]]
    data = job.data if isinstance(job.data, dict) else {}
    runs = job.attempts_made + (1 if job.state is JobState.ACTIVE else 0)
    result = _base.TaskResult(
        task=task,
        id=job.id,
        status=status,
        enqueued_at=_aware(job.created_at),
        started_at=_aware(job.started_at),
        finished_at=_aware(job.finished_at) if job.is_finished else None,
        last_attempted_at=_aware(job.started_at),
        args=list(data.get("args") or []),
        kwargs=dict(data.get("kwargs") or {}),
        backend=alias,
        errors=errors,
        worker_ids=[job.worker or ""] * runs,
    )
    if job.state is JobState.COMPLETED:
        object.__setattr__(result, "_return_value", job.result)
    return result


def _errors(job: Job, attempts: list[dict[str, Any]]) -> list[Any]:
    errors = [
        _base.TaskError(
            exception_class_path=_class_path(str(record.get("error") or ""), record),
            traceback=str(record.get("traceback") or record.get("error") or ""),
        )
        for record in attempts
    ]
    if job.state is JobState.FAILED and not errors:  # failed without running (cancel, ttl)
        text = job.error or "failed"
        errors.append(_base.TaskError(exception_class_path="conveyor.errors.JobFailed",
                                      traceback=text))  # fmt: skip
    return errors


def _class_path(error: str, record: Mapping[str, Any]) -> str:
    """The exception's import path, from the traceback's last line (``pkg.mod.Error: text``,
    or ``ValueError: text`` for a builtin)."""
    lines = str(record.get("traceback") or "").strip().splitlines()
    last = lines[-1] if lines else error
    name = last.split(":", 1)[0].strip() or "Exception"
    if not name.replace(".", "").replace("_", "").isalnum():
        return "builtins.Exception"
    return name if "." in name else f"builtins.{name}"


def _load_task(data: Any) -> Any:
    from django.utils.module_loading import (  # type: ignore[import-untyped, unused-ignore]
        import_string,
    )

    if not isinstance(data, dict) or not isinstance(data.get("task"), str):
        raise ConfigurationError(f"not the data of a Django task job: {data!r}")
    found = import_string(data["task"])
    if isinstance(found, _base.Task):
        return found
    # The module holds the plain function (a task made with task()(fn) under another name).
    return _base.Task(
        func=found,
        backend=data.get("backend", "default"),
        queue_name=data.get("queue", "default"),
        takes_context=bool(data.get("takes_context")),
    )


# -- the worker side --------------------------------------------------------------------------


def run_django_task(job: Job) -> Any:
    """The handler of ``django_task`` jobs: import the task and call it, in a worker thread,
    with Django's per-thread database connections tidied as a request would."""
    from django.db import close_old_connections  # type: ignore[import-untyped, unused-ignore]

    task = _load_task(job.data)
    data = job.data
    backend_cls = ConveyorBackend
    running = _task_result(task, job, data.get("backend", "default"), [])
    object.__setattr__(running, "status", _base.TaskResultStatus.RUNNING)
    _signals.task_started.send(sender=backend_cls, task_result=running)
    close_old_connections()
    try:
        args, kwargs = list(data.get("args") or []), dict(data.get("kwargs") or {})
        if task.takes_context:
            value = task.call(_base.TaskContext(task_result=running), *args, **kwargs)
        else:
            value = task.call(*args, **kwargs)
        value = _utils().normalize_json(value)
    except BaseException:
        object.__setattr__(running, "status", _base.TaskResultStatus.FAILED)
        _signals.task_finished.send(sender=backend_cls, task_result=running)
        raise
    finally:
        close_old_connections()
    object.__setattr__(running, "status", _base.TaskResultStatus.SUCCESSFUL)
    object.__setattr__(running, "_return_value", value)
    _signals.task_finished.send(sender=backend_cls, task_result=running)
    return value


def worker() -> Worker:
    """The ``conveyor worker`` target: every queue of every ConveyorBackend in ``TASKS``, with
    the task handler (``python manage.py conveyor_worker
    conveyor.integrations.django_tasks:worker``; plain ``conveyor worker`` sets Django up from
    ``DJANGO_SETTINGS_MODULE``)."""
    import django  # type: ignore[import-untyped, unused-ignore]
    from django.apps import apps  # type: ignore[import-untyped, unused-ignore]

    if not apps.ready:
        django.setup()
    queues: dict[str, SyncQueue] = {}
    settings: Settings | None = None
    for alias in _api.task_backends.settings:
        backend = _api.task_backends[alias]
        if isinstance(backend, ConveyorBackend):
            settings = settings or backend.settings
            if backend.settings != settings:
                raise ConfigurationError(
                    "TASKS backends with different Redis url/prefix need a worker each: "
                    "use --url/--prefix and --queues"
                )
            queues.update({name: backend.queue(name) for name in sorted(backend.queues)})
    if settings is None:
        raise ConfigurationError("no TASKS backend is conveyor.integrations.django_tasks")
    from ..queue import Queue

    return Worker([Queue(name, settings=settings) for name in queues], {JOB_NAME: run_django_task})
