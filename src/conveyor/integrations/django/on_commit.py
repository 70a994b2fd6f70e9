"""Enqueue once the surrounding Django transaction commits (``transaction.on_commit``).

An add made inside ``transaction.atomic()`` before the commit can reach a worker before the
rows it refers to are visible, or survive a rollback. These helpers defer the add until the
commit and drop it on a rollback. They leave one window open: a process that dies between the
commit and the add loses the job (the data is committed, the job never sent). Where that
matters, use the PostgreSQL outbox (``conveyor.outbox``), which writes the job in the same
transaction.
"""

from __future__ import annotations

from typing import Any

from ...options import OPTION_NAMES, build_spec
from ...sync_queue import SyncQueue

__all__ = ["add_on_commit", "enqueue_on_commit"]


def add_on_commit(
    queue: SyncQueue | str, name: str, data: Any = None, *, using: str | None = None, **options: Any
) -> None:
    """``queue.add(name, data, **options)`` when the transaction on ``using`` commits (at once
    outside a transaction). The job is validated now, so a bad option fails in the view."""
    from django.db import transaction  # type: ignore[import-untyped, unused-ignore]

    from ...errors import ConfigurationError
    from . import get_queue

    target = get_queue(queue) if isinstance(queue, str) else queue
    unknown = sorted(set(options) - OPTION_NAMES)
    if unknown:
        raise ConfigurationError(f"unknown job options {unknown}")
    build_spec(target.settings, name, data, **options)  # raises here, not after the commit
    transaction.on_commit(lambda: target.add(name, data, **options), using=using)


def enqueue_on_commit(task: Any, *args: Any, using: str | None = None, **kwargs: Any) -> None:
    """``task.enqueue(*args, **kwargs)`` (a Django Tasks ``@task``) when the transaction on
    ``using`` commits."""
    from django.db import transaction  # type: ignore[import-untyped, unused-ignore]

    if not callable(getattr(task, "enqueue", None)):
        from ...errors import ConfigurationError

        raise ConfigurationError(f"enqueue_on_commit needs a Django task (@task), not {task!r}")
    transaction.on_commit(lambda: task.enqueue(*args, **kwargs), using=using)
