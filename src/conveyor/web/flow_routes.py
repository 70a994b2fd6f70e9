"""Flow control in the JSON API: ``GET /api/queues/{queue}/groups`` (paged, most waiting first),
with the queue's flow state (its rate limit, a hold, whether a limit holds jobs back now and
until when). Registered by ``create_app``; its part of the OpenAPI document is here too."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from ..admin import Admin
from ..limits import MAX_PAGE, MAX_PAGE_SIZE
from ..storage.flow import FlowCommands
from .fields import Field, parse_query

__all__ = ["GROUPS_QUERY", "add_flow_spec", "flow_routes"]

Handler = Callable[[Request], Awaitable[Any]]

#: ``GET /api/queues/{queue}/groups``.
GROUPS_QUERY = (
    Field("page", "integer", minimum=1, maximum=MAX_PAGE, default=1),
    Field("size", "integer", minimum=1, maximum=MAX_PAGE_SIZE, default=50),
)


def flow_routes(admin: Admin, endpoint: Callable[[Handler], Handler], base: str) -> list[Route]:
    """The routes, each wrapped by the app's ``endpoint`` (auth, errors)."""

    async def groups(request: Request) -> dict[str, Any]:
        query = parse_query(GROUPS_QUERY, request.query_params)
        queue = await admin.require(str(request.path_params["queue"]))
        flow = FlowCommands(queue.commands)
        start = (query["page"] - 1) * query["size"]
        (total, found), state = await queue.redis.run_many(
            [flow.groups(start, start + query["size"] - 1), flow.flow_state()]
        )
        return {
            "groups": [group.to_dict() for group in found],
            "total": total,
            "page": query["page"],
            "size": query["size"],
            "flow": state.to_dict(),
        }

    return [Route(f"{base}/groups", endpoint(groups), methods=["GET"])]


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def add_flow_spec(paths: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Add the flow-control path and schemas to the OpenAPI document being built."""
    from .openapi import _Q, _READ, _closed, _op, _ref, _responses

    integer, text = {"type": "integer"}, {"type": "string"}
    nullable_int = {"type": ["integer", "null"]}
    rate = _nullable(_closed({"limit": integer, "per": {"type": "number"}}))
    schemas["RateLimit"] = _closed({"limit": integer, "per": {"type": "number"}})
    schemas["Group"] = _closed(
        {
            "name": text,
            "waiting": integer,
            "active": integer,
            "paused": {"type": "boolean"},
            "concurrency": nullable_int,
            "rate_limit": rate,
            "weight": integer,
            "max_size": nullable_int,
            "held_until": nullable_int,
            "overrides": {"type": "array", "items": text},
        }
    )
    schemas["FlowState"] = _closed(
        {
            "rate_limit": rate,
            "held_until": nullable_int,
            "limited_until": nullable_int,
            "group_defaults": _closed(
                {
                    "concurrency": nullable_int,
                    "rate_limit": rate,
                    "weight": integer,
                    "max_size": nullable_int,
                }
            ),
            "grouped_waiting": integer,
            "groups": integer,
        }
    )
    schemas["GroupPage"] = _closed(
        {
            "groups": {"type": "array", "items": _ref("Group")},
            "total": integer,
            "page": integer,
            "size": integer,
            "flow": _ref("FlowState"),
        }
    )
    paths["/api/queues/{queue}/groups"] = {
        "get": _op(
            "Flow control: the queue's groups, most waiting first, and its limits",
            _responses("200", _ref("GroupPage"), f"{_READ} 400 404"),
            [_Q, *(field.parameter() for field in GROUPS_QUERY)],
            tag="queues",
        )
    }
