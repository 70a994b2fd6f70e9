"""Just enough Django for the example."""

import os

SECRET_KEY = "example-only-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "mysite.urls"
INSTALLED_APPS = ["conveyor.integrations.django", "shop"]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

CONVEYOR = {
    "URL": os.environ.get("REDIS_URL", "redis://localhost:6379/0"),
    "PREFIX": os.environ.get("CONVEYOR_PREFIX", "conveyor"),
}
