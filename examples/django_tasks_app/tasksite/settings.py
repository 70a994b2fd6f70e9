"""Just enough Django for Django Tasks on Conveyor (and the enqueue-after-commit helpers)."""

import os
from pathlib import Path

SECRET_KEY = "example-only-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tasksite.urls"
INSTALLED_APPS = ["conveyor.integrations.django", "billing"]
try:  # Django >= 6 has the Tasks API built in; on 5.2 the django-tasks backport is an app
    import django.tasks  # noqa: F401
except ImportError:
    INSTALLED_APPS.append("django_tasks")
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DB", str(Path(__file__).parent.parent / "db.sqlite3")),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True

TASKS = {
    "default": {
        "BACKEND": "conveyor.integrations.django_tasks.ConveyorBackend",
        "QUEUES": ["default", "emails"],
        "OPTIONS": {
            "url": os.environ.get("REDIS_URL", "redis://localhost:6379/0"),
            "prefix": os.environ.get("CONVEYOR_PREFIX", "conveyor"),
        },
    }
}
