"""Conveyor in Django projects.

1. ``INSTALLED_APPS += ["conveyor.integrations.django"]``
2. settings::

       CONVEYOR = {
           "URL": "redis://localhost:6379/0",     # else REDIS_URL / CONVEYOR_URL from the env
           "PREFIX": "myproject",                 # optional; any other Settings field too
       }

3. enqueue from views with ``get_queue("email").add("welcome", {...})`` (a blocking
   ``SyncQueue``, shared by the process's threads);
4. run workers with ``python manage.py conveyor_worker myapp.tasks:queue`` (every option of
   ``conveyor worker``; Django is set up first, so handlers can use the ORM, and the
   ``--workers N`` processes are started through manage.py too).
"""

from __future__ import annotations

import threading
from typing import Any

from ...settings import Settings
from ...sync_queue import SyncQueue
from .on_commit import add_on_commit, enqueue_on_commit  # ecosystem: enqueue after commit

__all__ = ["add_on_commit", "enqueue_on_commit", "get_queue", "get_settings"]

_lock = threading.Lock()


def get_settings() -> Settings:
    """Conveyor settings from ``settings.CONVEYOR`` (keys are ``Settings`` fields, any case)."""
    from django.conf import settings as django_settings  # type: ignore[import-untyped, unused-ignore]

    raw: dict[str, Any] = dict(getattr(django_settings, "CONVEYOR", {}) or {})
    return Settings.from_env(**{key.lower(): value for key, value in raw.items()})


def get_queue(name: str) -> SyncQueue:
    """The process-wide ``SyncQueue`` called ``name``."""
    from django.apps import apps  # type: ignore[import-untyped, unused-ignore]

    config = apps.get_app_config("conveyor")
    queues: dict[str, SyncQueue] = config.queues
    queue = queues.get(name)
    if queue is None:
        with _lock:
            queue = queues.get(name)
            if queue is None:
                queue = queues[name] = SyncQueue(name, settings=get_settings())
    return queue
