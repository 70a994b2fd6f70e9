"""Search in the JSON API: ``GET /api/queues/{queue}/search`` reads every job of one state, a
slice per call, for the ones whose id, name or data holds the text (``Admin.search_jobs``), and
says where the next call goes on from. ``app`` and ``openapi`` take the route, its path and its
schema from here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.routing import Route

from .contract import SEARCH_QUERY
from .fields import parse_query

if TYPE_CHECKING:
    from ..admin import Admin

__all__ = ["SCHEMAS", "paths", "routes"]

_JOB_SUMMARY = {"$ref": "#/components/schemas/JobSummary"}
_PAGE: dict[str, Any] = {
    "jobs": {"type": "array", "items": _JOB_SUMMARY},
    "scanned": {"type": "integer"},
    "total": {"type": "integer"},
    "next_cursor": {"type": ["string", "null"]},
}
SCHEMAS: dict[str, Any] = {
    "SearchPage": {"type": "object", "properties": _PAGE, "required": list(_PAGE)},
}


def paths(
    op: Callable[..., dict[str, Any]],
    responses: Callable[[str, dict[str, Any], str], dict[str, Any]],
    queue_param: dict[str, Any],
    read: str,
) -> dict[str, Any]:
    """The OpenAPI path of the route below (built with openapi.py's helpers)."""
    return {
        "/api/queues/{queue}/search": {
            "get": op(
                "Search every job of one state by id, name and data: up to size matches, "
                "reading at most 10,000 jobs per call; call again with next_cursor",
                responses("200", {"$ref": "#/components/schemas/SearchPage"}, f"{read} 400 404"),
                [queue_param, *(field.parameter() for field in SEARCH_QUERY)],
                tag="jobs",
            )
        }
    }


def routes(
    endpoint: Callable[[Callable[[Request], Awaitable[Any]]], Any], admin: Admin, base: str
) -> list[Route]:
    """The route, wrapped by the app's ``endpoint`` (auth, errors)."""

    async def search(request: Request) -> dict[str, Any]:
        query = parse_query(SEARCH_QUERY, request.query_params)
        found = await admin.search_jobs(
            str(request.path_params["queue"]),
            query["state"],
            job_name=query["name"] or None,
            text=query["q"] or None,
            cursor=query["cursor"] or None,
            size=query["size"],
            sort=query["sort"],
        )
        return found.to_dict()

    return [Route(f"{base}/search", endpoint(search), methods=["GET"])]
