"""The request body limit: no route ever holds more of a body than this in memory."""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .security import WebError

__all__ = ["MAX_BODY", "BodyLimitMiddleware", "BodyTooLarge"]

#: The largest request body accepted on any route: a job's data at the payload limit, JSON
#: escaping and the rest of the request around it.
MAX_BODY = 1024 * 1024 + 64 * 1024


class BodyTooLarge(WebError):
    """Raised by the receive channel once a body passes the limit: the route that reads the
    body answers it like any ``WebError``; the middleware answers it if the route did not."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, "payload_too_large", f"request body over {limit} bytes")


async def _send_413(send: Send, limit: int) -> None:
    error = BodyTooLarge(limit)
    body = orjson.dumps({"error": {"code": error.code, "message": error.message}})
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Refuses a body over ``limit`` bytes with 413 before it is buffered: by its
    Content-Length up front, and a streamed (chunked) one by counting as it arrives, so no
    route ever holds more than the limit (plus one chunk) in memory."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and (not declared.isdigit() or len(declared) > 18):
            declared = b"-1"  # unreadable: treat as too large rather than guess
        if declared is not None and not 0 <= int(declared) <= self.limit:
            await _send_413(send, self.limit)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _send_413(send, self.limit)
