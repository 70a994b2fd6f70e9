"""Handlers; run them with ``python manage.py conveyor_worker shop.tasks:queue``."""

from __future__ import annotations

from conveyor import Job, Queue
from conveyor.integrations.django import get_settings

queue = Queue("email", settings=get_settings())  # the CONVEYOR dict from settings.py


@queue.handler("welcome")
def welcome(job: Job) -> dict[str, str]:
    # Django is set up in the worker: models and settings can be used here.
    from django.conf import settings

    return {"sent_to": job.data["to"], "debug": str(settings.DEBUG)}
