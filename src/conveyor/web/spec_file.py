"""The OpenAPI document as the file the dashboard's build reads.

``python -m conveyor.web.spec_file > frontend/src/openapi.json`` after changing the API: the
build generates the dashboard's TypeScript types from that file (so it needs neither Python nor
a server), and a test fails while the file differs from ``build_spec()``.
"""

from __future__ import annotations

import json
import sys

from .openapi import build_spec

__all__ = ["render"]


def render() -> str:
    """The document as JSON text, exactly as the committed file holds it."""
    return json.dumps(build_spec(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
