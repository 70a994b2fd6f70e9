"""The one check Conveyor makes for OpenTelemetry when it is not in use: is its SDK loaded?

Called when a queue is made and when a worker starts. Without the SDK imported that is a
dictionary lookup; ``conveyor.otel`` (and ``opentelemetry``) are imported only once it is.
"""

from __future__ import annotations

import sys

__all__ = ["autostart"]


def autostart() -> None:
    if "opentelemetry.sdk.trace" not in sys.modules:
        return
    try:
        from . import otel
    except ImportError:  # the SDK without the API's propagators: nothing to do
        return
    otel.auto_instrument()
