"""Conveyor in FastAPI and Starlette apps.

::

    from typing import Annotated
    from fastapi import Depends, FastAPI
    from conveyor import Queue
    from conveyor.integrations.fastapi import Conveyor

    conveyor = Conveyor("email")                     # URL from REDIS_URL / CONVEYOR_URL
    app = FastAPI(lifespan=conveyor.lifespan)        # opens (checks) and closes the connections
    app.mount("/queues", conveyor.dashboard())       # the dashboard and its JSON API

    @app.post("/signup")
    async def signup(queue: Annotated[Queue, Depends(conveyor.dependency("email"))]) -> dict:
        job = await queue.add("welcome", {"to": "ada@example.com"})
        return {"job": job.id}

Starlette is the same: ``Starlette(lifespan=conveyor.lifespan, routes=[...])`` and
``conveyor.queue("email")`` (or ``request.state.conveyor``) in the endpoints. With a lifespan
of your own, nest ours: ``async with conveyor.lifespan(app): yield``.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..errors import ConfigurationError
from ..procedures import make_settings
from ..queue import Queue
from ..settings import Settings
from ..storage.commands import ping

__all__ = ["Conveyor"]


class Conveyor:
    """The queues of one ASGI app. ``Conveyor("email", "reports", url=..., prefix=...)``."""

    def __init__(
        self,
        *queues: str,
        url: str | None = None,
        settings: Settings | None = None,
        **overrides: Any,
    ) -> None:
        if not queues:
            raise ConfigurationError("name at least one queue: Conveyor('email')")
        self.settings = make_settings(url, settings, overrides)
        self.queues = {name: Queue(name, settings=self.settings) for name in queues}
        self.default = queues[0]

    def queue(self, name: str | None = None) -> Queue:
        """The queue called ``name`` (default: the first one named)."""
        try:
            return self.queues[name or self.default]
        except KeyError:
            known = ", ".join(self.queues)
            raise ConfigurationError(f"no queue {name!r} here (known: {known})") from None

    def dependency(self, name: str | None = None) -> Callable[[], Queue]:
        """A FastAPI dependency handing out one queue: ``Depends(conveyor.dependency("email"))``."""
        queue = self.queue(name)

        def get_queue() -> Queue:
            return queue

        return get_queue

    async def open(self) -> None:
        """Check that Redis answers, so a misconfigured app fails at startup, not at first use."""
        for queue in self.queues.values():
            await queue.redis.run(ping())

    async def close(self) -> None:
        for queue in self.queues.values():
            await queue.close()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any = None) -> AsyncIterator[dict[str, Any]]:
        """``FastAPI(lifespan=conveyor.lifespan)``; also sets ``request.state.conveyor``."""
        await self.open()
        try:
            yield {"conveyor": self}
        finally:
            await self.close()

    def dashboard(self, **options: Any) -> Any:
        """The dashboard and JSON API as an ASGI app to mount: ``app.mount("/queues", ...)``.

        ``options`` go to ``conveyor.web.create_app`` (e.g. auth settings)."""
        try:
            create_app = importlib.import_module("conveyor.web").create_app
        except (ImportError, AttributeError) as exc:
            raise ImportError(
                "the dashboard needs the web extra: pip install 'conveyor-queue[web]'"
            ) from exc
        accepted = inspect.signature(create_app).parameters
        offered = {"settings": self.settings, "url": self.settings.url}
        offered["prefix"] = self.settings.prefix
        kwargs = {k: v for k, v in offered.items() if k in accepted and k not in options}
        return create_app(**kwargs, **options)
