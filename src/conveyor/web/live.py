"""Server-sent events: each queue's event stream, forwarded to the dashboard as it happens, so
the page refreshes when something changed instead of on a timer.

``GET /api/queues/{q}/events`` (``?job=ID`` keeps the events of one job) and ``GET /api/events``
(every queue; one Redis node only, since one XREAD cannot span Cluster slots). One message per
Redis read: ``{"events": [{"queue", "event", "job"}, ...], "count"}`` with the last entry's id as
its SSE id, so a reconnecting browser resumes where it stopped (``Last-Event-ID``). A burst of
thousands of transitions is a handful of messages; the page throttles its refreshes. The two
paths and the message's schema in the OpenAPI document are here too (``paths``, ``SCHEMAS``).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..admin import Admin
from ..errors import ConnectionError
from ..events import Event
from ..queue import Queue
from ..storage.ops import read_event_streams
from .contract import JOB_ID
from .security import WebError

__all__ = ["SCHEMAS", "LiveEvents", "paths"]

#: Streams open at once per app: each holds a blocking Redis read on its own connection.
MAX_STREAMS = 32
#: How long one blocking read waits; an idle stream sends a comment this often, so proxies
#: keep it open and a dead browser is noticed.
IDLE_SECONDS = 15.0
#: The all-queues stream waits at most this long per read, to notice new queues soon.
NEW_QUEUES_SECONDS = 5.0
#: Stream entries taken per read, and events listed per message (the count says the rest).
READ_COUNT = 500
LISTED_PER_MESSAGE = 50
#: What the browser waits before reconnecting after the stream broke, in ms.
RECONNECT_MS = 3000
_ENTRY_ID = re.compile(r"^\d{1,20}-\d{1,20}$")

_TEXT = {"type": "string"}
_EVENT = {"queue": _TEXT, "event": _TEXT, "job": _TEXT}
_MESSAGE: dict[str, Any] = {
    "events": {
        "type": "array",
        "items": {"type": "object", "properties": _EVENT, "required": list(_EVENT)},
    },
    "count": {"type": "integer"},
}
#: The OpenAPI schema of one message's data.
SCHEMAS: dict[str, Any] = {
    "LiveEvents": {"type": "object", "properties": _MESSAGE, "required": list(_MESSAGE)},
}


def paths(
    op: Callable[..., dict[str, Any]],
    responses: Callable[[str, dict[str, Any], str], dict[str, Any]],
    queue_param: dict[str, Any],
    read: str,
) -> dict[str, Any]:
    """The OpenAPI paths of the two streams (built with openapi.py's helpers)."""
    job = {"name": "job", "in": "query", "required": False, "schema": {"type": "string"}}
    return {
        "/api/events": {
            "get": op(
                "Live: every queue's transitions as server-sent events (one Redis node only)",
                _event_stream(responses, f"{read} 501"),
                tag="live",
            )
        },
        "/api/queues/{queue}/events": {
            "get": op(
                "Live: one queue's transitions (or one job's, with job=) as server-sent events",
                _event_stream(responses, f"{read} 404"),
                [queue_param, job],
                tag="live",
            )
        },
    }


def _message_ref() -> dict[str, Any]:
    return {"$ref": "#/components/schemas/LiveEvents"}


def _event_stream(
    responses: Callable[[str, dict[str, Any], str], dict[str, Any]], codes: str
) -> dict[str, Any]:
    """A text/event-stream answer: each message's data is a ``LiveEvents`` object, its id the
    last stream entry read (send it back as Last-Event-ID to resume)."""
    out = responses("200", _message_ref(), codes)
    out["200"] = {
        "description": 'server-sent events; event "queues" when a queue appeared',
        "content": {"text/event-stream": {"schema": _message_ref()}},
    }
    return out


class LiveEvents:
    def __init__(self, admin: Admin) -> None:
        self.admin = admin
        self.open = 0

    async def queue_stream(self, request: Request) -> Response:
        name = str(request.path_params["queue"])
        await self.admin.require(name)
        given = request.query_params.get("job")
        job = str(JOB_ID.parse(given, "job")) if given else None
        return await self._respond(request, [self.admin.queue(name)], job)

    async def all_queues_stream(self, request: Request) -> Response:
        if self.admin.redis.is_cluster:
            raise WebError(
                501,
                "not_on_cluster",
                "live events of every queue need one Redis node (one XREAD cannot span Cluster "
                "slots); open a queue for its own stream, or rely on polling",
            )
        names = await self.admin.queue_names()
        return await self._respond(request, [self.admin.queue(n) for n in names], None, every=True)

    async def _respond(
        self, request: Request, queues: Sequence[Queue], job: str | None, every: bool = False
    ) -> Response:
        """``every``: the stream follows every queue, including those made after it opened."""
        if self.open >= MAX_STREAMS:
            raise WebError(
                503, "too_many_streams", f"{MAX_STREAMS} live streams are open; poll instead"
            )
        after = request.headers.get("last-event-id", "")
        # Where each stream starts is fixed before the answer goes out: an event written after
        # the client saw the 200 is never missed.
        last = {q.name: after for q in queues}
        if not _ENTRY_ID.match(after):
            for q in queues:
                last[q.name] = await q.redis.run(q.commands.last_event_id())
        return StreamingResponse(
            self._messages(list(queues), last, job, every),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    async def _messages(
        self, queues: list[Queue], last: dict[str, str], job: str | None, every: bool
    ) -> AsyncIterator[bytes]:
        self.open += 1
        try:
            yield f"retry: {RECONNECT_MS}\n\n".encode()
            while True:
                try:
                    if every and await self._add_new_queues(queues, last):
                        yield b"event: queues\ndata: {}\n\n"  # a queue appeared: refresh
                    wait = NEW_QUEUES_SECONDS if every else IDLE_SECONDS
                    batches = await self._read(queues, last, wait) if queues else await _idle()
                except ConnectionError as exc:
                    message = orjson.dumps({"message": f"Redis is unreachable: {exc}"})
                    yield b"event: unreachable\ndata: " + message + b"\n\n"
                    return  # the browser reconnects after RECONNECT_MS
                if not batches:
                    yield b": idle\n\n"
                    continue
                events: list[dict[str, Any]] = []
                count = 0
                for name, entries in batches:
                    for entry_id, fields in entries:
                        last[name] = entry_id
                        for event in Event.from_entry(entry_id, fields):
                            if job is not None and event.job_id != job:
                                continue
                            count += 1
                            if len(events) < LISTED_PER_MESSAGE:
                                events.append(
                                    {"queue": name, "event": event.event, "job": event.job_id}
                                )
                if count:
                    newest = max(last.values(), key=_entry_key)
                    data = orjson.dumps({"events": events, "count": count})
                    yield f"id: {newest}\n".encode() + b"data: " + data + b"\n\n"
        finally:
            self.open -= 1

    async def _add_new_queues(self, queues: list[Queue], last: dict[str, str]) -> bool:
        """Follow the queues registered since the stream opened (from their newest event)."""
        names = [n for n in await self.admin.queue_names() if n not in last]
        for name in names:
            queue = self.admin.queue(name)
            last[name] = await queue.redis.run(queue.commands.last_event_id())
            queues.append(queue)
        return bool(names)

    async def _read(
        self, queues: Sequence[Queue], last: dict[str, str], wait: float
    ) -> list[tuple[str, list[Any]]]:
        """One blocking read: of the queue's stream, or of every queue's at once."""
        block_ms = int(wait * 1000)
        if len(queues) == 1:
            q = queues[0]
            op = q.commands.read_events(last[q.name], READ_COUNT, block_ms)
            entries = await q.blocking_redis.run(op)
            return [(q.name, entries)] if entries else []
        names = {q.commands.keys.events: q.name for q in queues}
        op = read_event_streams({k: last[n] for k, n in names.items()}, READ_COUNT, block_ms)
        return [(names[key], entries) for key, entries in await self.admin.blocking_redis.run(op)]


async def _idle() -> list[tuple[str, list[Any]]]:
    """No queue yet: wait as a read would, then look for queues again."""
    await asyncio.sleep(min(IDLE_SECONDS, 2.0))
    return []


def _entry_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
