"""tests/wheel runs against a built wheel installed in a fresh virtualenv (scripts/test-wheel),
not against the source tree: it is collected only when CONVEYOR_WHEEL_VENV names that
virtualenv, so a plain `pytest` leaves it out."""

from __future__ import annotations

import os

if not os.environ.get("CONVEYOR_WHEEL_VENV"):
    collect_ignore_glob = ["test_*.py"]
