"""The OpenAPI 3.1 description of the JSON API, built from small tables (served at
``/api/openapi.json`` and checked against the app by schemathesis in the tests)."""

from __future__ import annotations

from typing import Any

from ..version import __version__

__all__ = ["build_spec"]

_STATES = ["waiting", "delayed", "active", "completed", "failed"]
_NULLABLE_INT = {"type": ["integer", "null"]}
_NULLABLE_NUM = {"type": ["number", "null"]}
_ANY: dict[str, Any] = {}
_TEN_YEARS = 10 * 365 * 24 * 3600


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required is not None:
        schema["required"] = required
    return schema


_COUNTS = _obj(
    {s: {"type": "integer", "minimum": 0} for s in _STATES},
    _STATES,
)
_PERCENTILES = _obj(
    {
        "count": {"type": "integer"},
        "p50": _NULLABLE_NUM,
        "p95": _NULLABLE_NUM,
        "p99": _NULLABLE_NUM,
    },
    ["count", "p50", "p95", "p99"],
)
_SCHEMAS: dict[str, Any] = {
    "Error": _obj(
        {
            "error": _obj(
                {"code": {"type": "string"}, "message": {"type": "string"}}, ["code", "message"]
            )
        },
        ["error"],
    ),
    "Counts": _COUNTS,
    "QueueSummary": _obj(
        {
            "name": {"type": "string"},
            "counts": _ref("Counts"),
            "paused": {"type": "boolean"},
            "workers": {"type": "integer"},
            "busy": {"type": "integer"},
            "oldest_waiting_ms": _NULLABLE_INT,
        },
        ["name", "counts", "paused", "workers", "oldest_waiting_ms"],
    ),
    "Worker": _obj(
        {
            "id": {"type": "string"},
            "host": {"type": "string"},
            "pid": {"type": "integer"},
            "queues": {"type": "array", "items": {"type": "string"}},
            "concurrency": {"type": "integer"},
            "busy": {"type": "integer"},
            "processed": {"type": "integer"},
            "failed": {"type": "integer"},
            "started_at": _NULLABLE_INT,
            "version": {"type": ["string", "null"]},
            "last_heartbeat": {"type": "integer"},
        },
        ["id", "host", "pid", "queues", "concurrency", "busy", "last_heartbeat"],
    ),
    "MetricsSummary": _obj(
        {
            "completed": {"type": "integer"},
            "failed": {"type": "integer"},
            "retried": {"type": "integer"},
            "wait": _PERCENTILES,
            "run": _PERCENTILES,
            "per_minute": {"type": "number"},
        },
        ["completed", "failed", "wait", "run"],
    ),
    "Metrics": _obj(
        {
            "range": {"type": "string"},
            "step_seconds": {"type": "integer"},
            "now": {"type": "integer"},
            "timestamps": {"type": "array", "items": {"type": "integer"}},
            "series": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": _NULLABLE_NUM},
            },
            "summary": _ref("MetricsSummary"),
        },
        ["range", "step_seconds", "timestamps", "series", "summary"],
    ),
    "QueueDetail": _obj(
        {
            "name": {"type": "string"},
            "counts": _ref("Counts"),
            "paused": {"type": "boolean"},
            "workers": {"type": "array", "items": _ref("Worker")},
            "oldest_waiting_ms": _NULLABLE_INT,
            "metrics": _ref("MetricsSummary"),
        },
        ["name", "counts", "paused", "workers", "metrics"],
    ),
    "JobSummary": _obj(
        {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "state": {"type": "string", "enum": _STATES},
            "priority": {"type": "integer"},
            "attempts": {"type": "integer"},
            "attempts_made": {"type": "integer"},
            "progress": _ANY,
            "data_preview": {"type": "string"},
            "error": {"type": ["string", "null"]},
            "created_at": _NULLABLE_INT,
            "run_at": _NULLABLE_INT,
            "started_at": _NULLABLE_INT,
            "finished_at": _NULLABLE_INT,
        },
        ["id", "name", "state"],
    ),
    "JobPage": _obj(
        {
            "jobs": {"type": "array", "items": _ref("JobSummary")},
            "total": {"type": "integer"},
            "page": {"type": "integer"},
            "size": {"type": "integer"},
            "pages": {"type": "integer"},
            "truncated": {"type": "boolean"},
            "scanned": _NULLABLE_INT,
        },
        ["jobs", "total", "page", "size", "pages"],
    ),
    "Job": _obj(
        {
            "id": {"type": "string"},
            "queue": {"type": "string"},
            "name": {"type": "string"},
            "data": _ANY,
            "state": {"type": "string", "enum": _STATES},
            "options": {"type": "object"},
            "attempts_made": {"type": "integer"},
            "progress": _ANY,
            "result": _ANY,
            "error": {"type": ["string", "null"]},
            "attempts": {"type": "array", "items": {"type": "object"}},
            "logs": {"type": "array", "items": {"type": "string"}},
            "timeline": {"type": "array", "items": {"type": "object"}},
            "created_at": _NULLABLE_INT,
            "queued_at": _NULLABLE_INT,
            "started_at": _NULLABLE_INT,
            "finished_at": _NULLABLE_INT,
            "wait_ms": _NULLABLE_INT,
            "run_ms": _NULLABLE_INT,
            "worker": {"type": ["string", "null"]},
        },
        ["id", "name", "data", "state", "options", "progress", "result", "attempts", "logs"],
    ),
    "NewJob": {
        **_obj(
            {
                "name": {"type": "string", "minLength": 1, "maxLength": 256},
                "data": _ANY,
                "options": _obj(
                    {
                        "attempts": {"type": "integer", "minimum": 1, "maximum": 10000},
                        "delay": {"type": "number", "minimum": 0, "maximum": _TEN_YEARS},
                        "priority": {"type": "integer", "minimum": -1000, "maximum": 1000},
                        "job_id": {"type": "string", "minLength": 1, "maxLength": 256},
                        "timeout": {
                            "type": "number",
                            "exclusiveMinimum": 0,
                            "maximum": _TEN_YEARS,
                        },
                        "ttl": {"type": "number", "exclusiveMinimum": 0, "maximum": _TEN_YEARS},
                        "backoff": {
                            "description": "Delay before each retry. exponential: delay * "
                            "2^(attempt-1), capped at max_delay (default 3600 s; null: no "
                            "cap); fixed: delay every time. jitter j draws each delay from "
                            "[(1-j)*d, d].",
                            **_obj(
                                {
                                    "kind": {"type": "string", "enum": ["fixed", "exponential"]},
                                    "delay": {
                                        "type": "number",
                                        "minimum": 0,
                                        "maximum": _TEN_YEARS,
                                        "description": "seconds (exponential: default 1)",
                                    },
                                    "max_delay": {
                                        "type": ["number", "null"],
                                        "minimum": 0,
                                        "maximum": _TEN_YEARS,
                                    },
                                    "jitter": {"type": "number", "minimum": 0, "maximum": 1},
                                },
                                ["kind"],
                            ),
                            "additionalProperties": False,
                        },
                        "run_at": {
                            "description": "When to run (instead of delay): epoch seconds, or "
                            "an ISO 8601 time with a timezone (2030-01-01T09:00:00Z). A time "
                            "in the past runs at once; at most 10 years ahead.",
                            "oneOf": [
                                {"type": "number"},
                                {"type": "string", "format": "date-time"},
                            ],
                        },
                    }
                )
                | {"additionalProperties": False},
            },
            ["name"],
        ),
        "additionalProperties": False,
    },
    "Added": _obj(
        {"id": {"type": "string"}, "state": {"type": "string"}, "queue": {"type": "string"}},
        ["id", "state", "queue"],
    ),
    "Bulk": {
        **_obj(
            {
                "action": {"type": "string", "enum": ["retry", "remove", "promote", "cancel"]},
                "ids": {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1},
                    "maxItems": 1000,
                },
            },
            ["action", "ids"],
        ),
        "additionalProperties": False,
    },
    "BulkResult": _obj(
        {"action": {"type": "string"}, "done": {"type": "integer"}, "results": {"type": "object"}},
        ["action", "done", "results"],
    ),
    "StateBody": {
        **_obj(
            {
                "state": {"type": "string", "enum": ["waiting", "delayed", "completed", "failed"]},
                "older_than": {"type": "number", "minimum": 0},
            }
        ),
        "additionalProperties": False,
    },
    "Count": _obj({"count": {"type": "integer"}}, ["count"]),
    "Ok": _obj({"ok": {"type": "boolean"}}, ["ok"]),
    "Login": {
        **_obj(
            {
                "token": {"type": "string"},
                "username": {"type": "string"},
                "password": {"type": "string"},
            }
        ),
        "additionalProperties": False,
    },
}

_ERRORS = {
    "400": "bad input",
    "401": "authentication required",
    "403": "forbidden (read-only, CSRF, host)",
    "404": "unknown queue or job",
    "409": "the job is not in a state that allows this",
    "413": "payload too large",
    "415": "body is not JSON",
    "503": "Redis unavailable",
}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _responses(ok: str, schema: dict[str, Any], codes: str) -> dict[str, Any]:
    out = {ok: _json(schema)}
    for code in codes.split():
        out[code] = _json(_ref("Error"), _ERRORS[code])
    return out


def _param(name: str, where: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema}


_Q = _param("queue", "path", {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"})
_ID = _param("id", "path", {"type": "string", "minLength": 1, "maxLength": 256})
_RANGE = _param("range", "query", {"type": "string", "enum": ["1h", "6h", "24h", "7d"]})
_READ = "401 403 503"
_WRITE = "400 401 403 415 503"


def _op(summary: str, responses: dict[str, Any], params: list[Any] | None = None,
        body: str | None = None, tag: str = "queues") -> dict[str, Any]:  # fmt: skip
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    return op


def _job_action(verb: str) -> dict[str, Any]:
    return {
        "post": _op(
            f"{verb.capitalize()} one job",
            _responses("200", _ref("Ok"), f"{_WRITE} 404 409"),
            [_Q, _ID],
            tag="jobs",
        )
    }


def build_spec() -> dict[str, Any]:
    """The OpenAPI document (paths relative to where the app is mounted)."""
    list_params = [
        _Q,
        _param("state", "query", {"type": "string", "enum": _STATES}),
        _param("name", "query", {"type": "string", "maxLength": 256}),
        _param("q", "query", {"type": "string", "maxLength": 256}),
        _param("page", "query", {"type": "integer", "minimum": 1, "maximum": 100000}),
        _param("size", "query", {"type": "integer", "minimum": 1, "maximum": 200}),
        _param("sort", "query", {"type": "string", "enum": ["newest", "oldest"]}),
    ]
    paths: dict[str, Any] = {
        "/api/health": {
            "get": _op(
                "Health probe (no auth): is Redis reachable, and has it kept every queue's "
                "data? 503 with code redis_unavailable or data_loss otherwise",
                {"200": _json(_obj({"status": {"type": "string"}})), "503": _json(_ref("Error"))},
                tag="meta",
            )
        },
        "/api/config": {
            "get": _op(
                "What the dashboard needs to know (auth kind, read-only, version)",
                {"200": _json({"type": "object"})},
                tag="meta",
            )
        },
        "/api/login": {
            "post": _op(
                "Exchange a token or username/password for a session cookie",
                _responses("200", _ref("Ok"), "400 401 403 415"),
                body="Login",
                tag="meta",
            )
        },
        "/api/logout": {
            "post": _op("Drop the session cookie", _responses("200", _ref("Ok"), "403"), tag="meta")
        },
        "/api/queues": {
            "get": _op(
                "Every queue with its counts (the cheap poll)",
                _responses(
                    "200",
                    _obj({"queues": {"type": "array", "items": _ref("QueueSummary")}}, ["queues"]),
                    _READ,
                ),
            )
        },
        "/api/queues/{queue}": {
            "get": _op(
                "Counts, paused flag, workers and metrics summary of one queue",
                _responses("200", _ref("QueueDetail"), f"{_READ} 400 404"),
                [_Q],
            )
        },
        "/api/queues/{queue}/jobs": {
            "get": _op(
                "List and search jobs of one state (newest first by default)",
                _responses("200", _ref("JobPage"), f"{_READ} 400 404"),
                list_params,
                tag="jobs",
            ),
            "post": _op(
                "Add a job",
                _responses("201", _ref("Added"), f"{_WRITE} 413"),
                [_Q],
                body="NewJob",
                tag="jobs",
            ),
        },
        "/api/queues/{queue}/jobs/bulk": {
            "post": _op(
                "Retry, remove, promote or cancel many jobs",
                _responses("200", _ref("BulkResult"), f"{_WRITE} 404"),
                [_Q],
                body="Bulk",
                tag="jobs",
            )
        },
        "/api/queues/{queue}/jobs/{id}": {
            "get": _op(
                "Everything about one job",
                _responses("200", _ref("Job"), f"{_READ} 400 404"),
                [_Q, _ID],
                tag="jobs",
            ),
            "delete": _op(
                "Delete a job that is not running",
                _responses("200", _ref("Ok"), f"{_WRITE} 404 409"),
                [_Q, _ID],
                tag="jobs",
            ),
        },
        "/api/queues/{queue}/jobs/{id}/retry": _job_action("retry"),
        "/api/queues/{queue}/jobs/{id}/promote": _job_action("promote"),
        "/api/queues/{queue}/jobs/{id}/cancel": _job_action("cancel"),
        "/api/queues/{queue}/pause": {
            "post": _op("Pause a queue", _responses("200", _ref("Ok"), f"{_WRITE} 404"), [_Q])
        },
        "/api/queues/{queue}/resume": {
            "post": _op("Resume a queue", _responses("200", _ref("Ok"), f"{_WRITE} 404"), [_Q])
        },
        "/api/queues/{queue}/retry-all": {
            "post": _op(
                "Retry every failed job (state=failed) or promote every delayed one",
                _responses("200", _ref("Count"), f"{_WRITE} 404 409"),
                [_Q],
                body="StateBody",
            )
        },
        "/api/queues/{queue}/clean": {
            "post": _op(
                "Delete every job of a state (older than older_than seconds)",
                _responses("200", _ref("Count"), f"{_WRITE} 404 409"),
                [_Q],
                body="StateBody",
            )
        },
        "/api/queues/{queue}/metrics": {
            "get": _op(
                "Throughput, failures and wait/run percentiles of one queue over a range",
                _responses("200", _ref("Metrics"), f"{_READ} 400 404"),
                [_Q, _RANGE],
                tag="metrics",
            )
        },
        "/api/metrics": {
            "get": _op(
                "The same, summed over every queue",
                _responses("200", _ref("Metrics"), f"{_READ} 400"),
                [_RANGE],
                tag="metrics",
            )
        },
        "/api/workers": {
            "get": _op(
                "Live workers",
                _responses(
                    "200",
                    _obj({"workers": {"type": "array", "items": _ref("Worker")}}, ["workers"]),
                    _READ,
                ),
                tag="workers",
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Conveyor API",
            "version": __version__,
            "description": "Inspect and steer Conveyor queues. Errors are "
            '{"error": {"code", "message"}}. Authenticate with a bearer token, HTTP Basic, '
            "or the session cookie from /api/login.",
        },
        "paths": paths,
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
                "session": {"type": "apiKey", "in": "cookie", "name": "conveyor_session"},
            },
        },
        "security": [{"bearer": []}, {"basic": []}, {"session": []}],
    }
