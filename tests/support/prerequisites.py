"""What a test needs from the machine besides Python: PostgreSQL, node, ruby with Sidekiq.

Locally a missing prerequisite skips the test, saying what to install. Under CI (``CI=true``,
as CI services set it) it fails instead: scripts/setup installs every prerequisite there, so a
missing one is a broken setup, and a run that skipped it would pass without having tested.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest

__all__ = ["in_ci", "missing", "require_module"]


def in_ci() -> bool:
    """True when the environment says this is a CI run (``CI`` set to true, 1 or yes)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing(reason: str) -> NoReturn:
    """Skip the running test (locally) or fail it (under CI): ``reason`` says what is missing."""
    if in_ci():
        pytest.fail(f"prerequisite missing under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def require_module(name: str, reason: str) -> ModuleType:
    """``import name``, or :func:`missing` with ``reason`` when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(reason)
