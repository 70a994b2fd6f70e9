"""The web face of Conveyor: JSON API (+OpenAPI), Prometheus ``/metrics`` and the dashboard.

``create_app(url=..., token=...)`` returns a Starlette ASGI app; mount it under any path, or
run ``conveyor dashboard``. Needs the ``web`` extra (starlette, uvicorn, prometheus-client).
"""

from .app import create_app

__all__ = ["create_app"]
