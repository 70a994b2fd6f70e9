"""Conveyor in Flask apps: an extension that hands out blocking ``SyncQueue``s.

::

    from flask import Flask
    from conveyor.integrations.flask import Conveyor

    conveyor = Conveyor()

    def create_app() -> Flask:
        app = Flask(__name__)
        app.config["CONVEYOR_URL"] = "redis://localhost:6379/0"   # or REDIS_URL in the env
        conveyor.init_app(app)
        return app

    @app.post("/signup")
    def signup():
        job = conveyor.queue("email").add("welcome", {"to": request.form["email"]})
        return {"job": job.id}

Config keys: ``CONVEYOR_URL`` (else ``REDIS_URL``, else the environment), ``CONVEYOR_PREFIX``,
and ``CONVEYOR_SETTINGS`` (a dict of other ``Settings`` fields). Queues are created once per
app and shared by its threads (redis-py's pool is thread-safe). Run the worker with
``conveyor worker yourapp.tasks:queue`` as usual; the worker does not need Flask.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app

from ..settings import Settings
from ..sync_queue import SyncQueue

__all__ = ["Conveyor"]


class _State:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.queues: dict[str, SyncQueue] = {}


class Conveyor:
    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        config = app.config
        changes: dict[str, Any] = dict(config.get("CONVEYOR_SETTINGS") or {})
        url = config.get("CONVEYOR_URL") or config.get("REDIS_URL")
        if url:
            changes["url"] = url
        if config.get("CONVEYOR_PREFIX"):
            changes["prefix"] = config["CONVEYOR_PREFIX"]
        app.extensions["conveyor"] = _State(Settings.from_env(**changes))

    def _state(self, app: Flask | None = None) -> _State:
        target = app or current_app
        try:
            state: _State = target.extensions["conveyor"]
        except KeyError:
            raise RuntimeError("call conveyor.init_app(app) first") from None
        return state

    def queue(self, name: str, app: Flask | None = None) -> SyncQueue:
        """The app's ``SyncQueue`` called ``name`` (created on first use)."""
        state = self._state(app)
        queue = state.queues.get(name)
        if queue is None:
            queue = state.queues.setdefault(name, SyncQueue(name, settings=state.settings))
        return queue

    def close(self, app: Flask | None = None) -> None:
        state = self._state(app)
        for queue in state.queues.values():
            queue.close()
        state.queues.clear()
