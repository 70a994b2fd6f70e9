"""The JSON API of workflows: ``GET /api/queues/{q}/batches/{id}``, and the schema of what a
job's JSON gains (``parent``, ``children``, ``batch``). ``app`` and ``openapi`` take these
in one line each."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.routing import Route

from ..errors import JobNotFound
from .contract import JOB_ID

if TYPE_CHECKING:
    from ..admin import Admin

__all__ = ["JOB_FIELDS", "SCHEMAS", "paths", "routes"]

_REF = {"$ref": "#/components/schemas/JobRef"}
_INT = {"type": "integer", "minimum": 0}

#: The properties a job's JSON gains (its flow parent and children, its batch).
JOB_FIELDS: dict[str, Any] = {
    "parent": {"anyOf": [_REF, {"type": "null"}]},
    "children": {"anyOf": [{"type": "array", "items": _REF}, {"type": "null"}]},
    "batch": {"type": ["string", "null"]},
}

_BATCH_PROPS: dict[str, Any] = {
    "id": {"type": "string"},
    "queue": {"type": "string"},
    "total": _INT,
    "pending": _INT,
    "completed": _INT,
    "failed": _INT,
    "state": {"type": "string", "enum": ["running", "success", "complete"]},
    "created_at": {"type": ["integer", "null"]},
    "finished_at": {"type": ["integer", "null"]},
    "callbacks": {"type": "object", "additionalProperties": {"type": "string"}},
}

SCHEMAS: dict[str, Any] = {
    "JobRef": {
        "type": "object",
        "properties": {"queue": {"type": "string"}, "id": {"type": "string"}},
        "required": ["queue", "id"],
    },
    "Batch": {"type": "object", "properties": _BATCH_PROPS, "required": list(_BATCH_PROPS)},
}


def paths(op: Callable[..., Any], responses: Callable[..., Any], queue_param: Any) -> Any:
    """The OpenAPI paths, built with openapi.py's helpers."""
    batch_param = {**JOB_ID.parameter("path"), "name": "id", "description": "batch id"}
    return {
        "/api/queues/{queue}/batches/{id}": {
            "get": op(
                "A batch's counts and state",
                responses("200", {"$ref": "#/components/schemas/Batch"}, "401 403 429 503 400 404"),
                [queue_param, batch_param],
                tag="jobs",
            )
        }
    }


def routes(
    endpoint: Callable[[Callable[[Request], Awaitable[Any]]], Any], admin: Admin
) -> list[Route]:
    async def batch(request: Request) -> dict[str, Any]:
        queue = await admin.require(str(request.path_params["queue"]))
        batch_id = str(JOB_ID.parse(str(request.path_params["id"]), "batch id"))
        info = await queue.get_batch(batch_id)
        if info is None:
            raise JobNotFound(f"no batch {batch_id!r} in queue {queue.name!r}", batch_id)
        return info.to_dict()

    return [Route("/api/queues/{queue}/batches/{id}", endpoint(batch), methods=["GET"])]
