"""The JSON API of job schedulers: ``GET /api/queues/{q}/schedules``, ``GET/PUT/DELETE
/api/queues/{q}/schedules/{id}`` and ``POST .../{id}/pause|resume|trigger``, with the request
tables (``Field``) and the OpenAPI paths they are documented by."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from ..admin import Admin
from ..errors import ScheduleNotFound
from ..limits import MAX_TEXT
from ..options import JOB_OPTIONS
from ..schedules import (
    MAX_EVERY_SECONDS,
    MAX_LIMIT,
    MAX_MISFIRE_GRACE_SECONDS,
    MIN_EVERY_SECONDS,
    MIN_MISFIRE_GRACE_SECONDS,
    MISFIRE_POLICIES,
)
from .contract import _option_field, job_options
from .fields import Field

__all__ = ["SCHEDULE_BODY", "schedule_paths", "schedule_routes"]

#: The ``{id}`` path parameter of a schedule.
SCHEDULE_ID = Field("id", "string", required=True, min_length=1, max_length=MAX_TEXT)
#: The ``Idempotency-Key`` header of ``POST .../{id}/trigger``: a retry with it returns the
#: first request's job (``Queue.trigger_schedule(key=...)``).
IDEMPOTENCY_KEY = Field(
    "Idempotency-Key",
    "string",
    min_length=1,
    max_length=MAX_TEXT,
    description="a retry with the same key returns the first request's job, adding none",
)
_NOT_FOR_SCHEDULES = {"delay", "run_at", "job_id"}
#: ``PUT /api/queues/{queue}/schedules/{id}``: as ``Queue.schedule`` takes it.
SCHEDULE_BODY = Field(
    "",
    "object",
    fields=(
        Field("name", "string", required=True, min_length=1, max_length=MAX_TEXT),
        Field("data", "any"),
        Field("cron", "string", nullable=True, min_length=1, max_length=MAX_TEXT,
              description="a cron expression (five fields, or @daily, @hourly, ...)"),
        Field("every", "number", nullable=True, minimum=MIN_EVERY_SECONDS,
              maximum=MAX_EVERY_SECONDS, description="seconds between runs (instead of cron)"),
        Field("tz", "string", nullable=True, min_length=1, max_length=64,
              description="the time zone of a cron schedule (IANA name; default UTC)"),
        Field("start_at", "instant", nullable=True),
        Field("end_at", "instant", nullable=True),
        Field("limit", "integer", nullable=True, minimum=1, maximum=MAX_LIMIT,
              description="number of runs at most"),
        Field("misfire", "string", enum=MISFIRE_POLICIES,
              description="ticks missed while no worker ran: skip them, or run once"),
        Field("misfire_grace", "number", minimum=MIN_MISFIRE_GRACE_SECONDS,
              maximum=MAX_MISFIRE_GRACE_SECONDS,
              description="seconds a tick may be late and still run (default 5); later, "
              "misfire decides"),
        Field("overlap", "boolean",
              description="false: skip a tick while the previous run waits or runs"),
        Field(
            "options",
            "object",
            nullable=True,
            fields=tuple(
                _option_field(option)
                for option in JOB_OPTIONS.values()
                if option.name not in _NOT_FOR_SCHEDULES
            ),
        ),
    ),
)  # fmt: skip

Route_ = Callable[..., Route]


def _id(request: Request) -> str:
    return str(SCHEDULE_ID.parse(str(request.path_params["id"]), "schedule id"))


class _ScheduleApi:
    def __init__(self, admin: Admin, body: Callable[..., Any]) -> None:
        self.admin = admin
        self.body = body

    async def list(self, request: Request) -> dict[str, Any]:
        queue = await self.admin.require(str(request.path_params["queue"]))
        return {"schedules": [s.to_dict() for s in await queue.schedules()]}

    async def get(self, request: Request) -> dict[str, Any]:
        queue = await self.admin.require(str(request.path_params["queue"]))
        schedule_id = _id(request)
        found = await queue.get_schedule(schedule_id)
        if found is None:
            raise ScheduleNotFound(f"no schedule {schedule_id!r} in queue {queue.name!r}")
        return found.to_dict()

    async def put(self, request: Request) -> dict[str, Any]:
        queue = self.admin.queue(str(request.path_params["queue"]))  # may be new
        schedule_id = _id(request)
        body = SCHEDULE_BODY.parse(await self.body(request))
        given = {k: v for k, v in body.items() if v is not None}
        options = job_options(given.pop("options", None) or {})
        name, data = given.pop("name"), given.pop("data", None)
        made = await queue.schedule(schedule_id, name, data, **given, **options)
        return made.to_dict()

    async def delete(self, request: Request) -> dict[str, Any]:
        queue = await self.admin.require(str(request.path_params["queue"]))
        schedule_id = _id(request)
        if not await queue.unschedule(schedule_id):
            raise ScheduleNotFound(f"no schedule {schedule_id!r} in queue {queue.name!r}")
        return {"ok": True}

    async def action(self, request: Request) -> dict[str, Any]:
        queue = await self.admin.require(str(request.path_params["queue"]))
        schedule_id = _id(request)
        action = request.url.path.rsplit("/", 1)[-1]
        if action == "trigger":
            key = request.headers.get(IDEMPOTENCY_KEY.name)
            if key is not None:
                key = IDEMPOTENCY_KEY.parse(key, "the Idempotency-Key header")
            job = await queue.trigger_schedule(schedule_id, key=key)
            return {"ok": True, "job": job.id, "deduplicated": job.deduplicated}
        if action == "pause":
            changed = await queue.pause_schedule(schedule_id)
        else:
            changed = await queue.resume_schedule(schedule_id)
        return {"ok": True, "changed": changed}


def schedule_routes(admin: Admin, route: Route_, body: Callable[..., Any]) -> list[Route]:
    """The routes, made with the app's ``route`` (auth, CSRF, errors) and body parser."""
    api = _ScheduleApi(admin, body)
    s = "/api/queues/{queue}/schedules"
    routes = [
        route(s, api.list, ["GET"]),
        route(s + "/{id}", api.get, ["GET"]),
        route(s + "/{id}", api.put, ["PUT"], write=True),
        route(s + "/{id}", api.delete, ["DELETE"], write=True),
    ]
    for action in ("pause", "resume", "trigger"):
        routes.append(route(s + "/{id}/" + action, api.action, ["POST"], write=True))
    return routes


_TIME = {"type": ["string", "null"], "format": "date-time"}
_SCHEDULE = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "data": {},
        "cron": {"type": ["string", "null"]},
        "every": {"type": ["number", "null"]},
        "tz": {"type": ["string", "null"]},
        "start_at": _TIME,
        "end_at": _TIME,
        "limit": {"type": ["integer", "null"]},
        "misfire": {"type": "string", "enum": list(MISFIRE_POLICIES)},
        "misfire_grace": {"type": "number"},
        "overlap": {"type": "boolean"},
        "options": {"type": "object"},
        "paused": {"type": "boolean"},
        "ended": {"type": "boolean"},
        "next_run": _TIME,
        "last_run": _TIME,
        "last_job": {"type": ["string", "null"]},
        "last_job_state": {"type": ["string", "null"]},
        "runs": {"type": "integer"},
        "created_at": _TIME,
        "updated_at": _TIME,
    },
    "required": ["id", "name", "paused", "next_run", "last_run", "last_job", "runs"],
}


def schedule_paths(
    op: Callable[..., dict[str, Any]],
    responses: Callable[[str, dict[str, Any], str], dict[str, Any]],
    queue_param: dict[str, Any],
    read: str,
    write: str,
) -> dict[str, Any]:
    """The OpenAPI paths of the routes above (built with openapi.py's helpers)."""
    id_param = SCHEDULE_ID.parameter("path")
    params = [queue_param, id_param]
    ok = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    body = {"required": True, "content": {"application/json": {"schema": SCHEDULE_BODY.schema()}}}
    listing = {
        "type": "object",
        "properties": {"schedules": {"type": "array", "items": _SCHEDULE}},
        "required": ["schedules"],
    }
    put = op(
        "Create or replace a schedule (cron or every), upserted by id",
        responses("200", _SCHEDULE, f"{write} 404 413"),
        params,
        tag="schedules",
    )
    put["requestBody"] = body

    def action(summary: str, schema: dict[str, Any], *extra: dict[str, Any]) -> dict[str, Any]:
        codes = responses("200", schema, f"{write} 404")
        return {"post": op(summary, codes, [*params, *extra], tag="schedules")}

    s = "/api/queues/{queue}/schedules"
    changed = ok | {"properties": {"ok": {"type": "boolean"}, "changed": {"type": "boolean"}}}
    triggered = ok | {
        "properties": {
            "ok": {"type": "boolean"},
            "job": {"type": "string"},
            "deduplicated": {
                "type": "boolean",
                "description": "a repeat of an Idempotency-Key: the first job",
            },
        }
    }
    return {
        s: {
            "get": op(
                "Every schedule of a queue: next run, last run, last job and its state",
                responses("200", listing, f"{read} 400 404"),
                [queue_param],
                tag="schedules",
            )
        },
        s + "/{id}": {
            "get": op(
                "One schedule", responses("200", _SCHEDULE, f"{read} 400 404"), params,
                tag="schedules",
            ),
            "put": put,
            "delete": op(
                "Delete a schedule (its jobs stay)", responses("200", ok, f"{write} 404"),
                params, tag="schedules",
            ),
        },
        s + "/{id}/pause": action("Pause a schedule", changed),
        s + "/{id}/resume": action("Resume a schedule from its next tick after now", changed),
        s + "/{id}/trigger": action("Run a schedule once now (its timetable is unchanged)",
                                    triggered, IDEMPOTENCY_KEY.parameter("header")),
    }  # fmt: skip
