"""The OpenAPI 3.1 description of the JSON API (served at ``/api/openapi.json`` and checked
against the app by schemathesis in the tests). Request bodies and query parameters come from the
tables the handlers parse with (``contract.py``); the responses are described here.

The dashboard's build generates its TypeScript types from this document, as written to
``frontend/src/openapi.json`` by ``python -m conveyor.web.spec_file``.
"""

from __future__ import annotations

from typing import Any

from ..storage.keys import QUEUE_NAME_PATTERN
from ..version import __version__
from . import workflow_routes
from .contract import (
    BULK,
    JOB_ID,
    JOB_LIST_QUERY,
    LOGIN,
    NEW_JOB,
    RANGE_QUERY,
    SEARCH_QUERY,
    STATE_BODY,
    STATE_NAMES,
)
from .schedule_routes import schedule_paths as _schedule_paths  # job schedulers

__all__ = ["build_spec"]

_NULLABLE_INT = {"type": ["integer", "null"]}
_NULLABLE_NUM = {"type": ["number", "null"]}
_NULLABLE_TEXT = {"type": ["string", "null"]}
_INT = {"type": "integer"}
_NUM = {"type": "number"}
_TEXT = {"type": "string"}
_ANY: dict[str, Any] = {}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required is not None:
        schema["required"] = required
    return schema


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


_COUNTS = _obj({s: {"type": "integer", "minimum": 0} for s in STATE_NAMES}, list(STATE_NAMES))
_PERCENTILES = _obj(
    {"count": _INT, "p50": _NULLABLE_NUM, "p95": _NULLABLE_NUM, "p99": _NULLABLE_NUM},
    ["count", "p50", "p95", "p99"],
)


def _closed(props: dict[str, Any]) -> dict[str, Any]:
    """An object whose every property is always present."""
    return _obj(props, list(props))


_RANGE = {"type": "string", "enum": list(RANGE_QUERY.enum)}
_SCHEMAS: dict[str, Any] = {
    "Error": _closed({"error": _closed({"code": _TEXT, "message": _TEXT})}),
    "JobState": {"type": "string", "enum": list(STATE_NAMES)},
    "Counts": _COUNTS,
    "Percentiles": _PERCENTILES,
    "QueueSummary": _closed(
        {
            "name": _TEXT,
            "counts": _ref("Counts"),
            "paused": {"type": "boolean"},
            "workers": _INT,
            "busy": _INT,
            "oldest_waiting_ms": _NULLABLE_INT,
        }
    ),
    "Worker": _closed(
        {
            "id": _TEXT,
            "host": _TEXT,
            "pid": _INT,
            "queues": _array(_TEXT),
            "concurrency": _INT,
            "busy": _INT,
            "processed": _INT,
            "failed": _INT,
            "restarts": _INT,
            "started_at": _NULLABLE_INT,
            "version": _NULLABLE_TEXT,
            "last_heartbeat": _INT,
        }
    ),
    "RunningJob": _closed({"queue": _TEXT, "id": _TEXT, "name": _NULLABLE_TEXT, "since": _INT}),
    "LiveEvents": _closed(
        {
            "events": _array(_closed({"queue": _TEXT, "event": _TEXT, "job": _TEXT})),
            "count": _INT,
        }
    ),
    # /api/workers: a worker and what it runs now (up to 20 jobs, oldest first, and the count).
    "WorkerNow": {
        "allOf": [
            _ref("Worker"),
            _closed({"running": _array(_ref("RunningJob")), "running_total": _INT}),
        ]
    },
    "MetricsSummary": _closed(
        {
            "completed": _INT,
            "failed": _INT,
            "retried": _INT,
            "wait": _ref("Percentiles"),
            "run": _ref("Percentiles"),
            "per_minute": {"type": "number"},
        }
    ),
    "Metrics": _closed(
        {
            "range": _RANGE,
            "step_seconds": _INT,
            "now": _INT,
            "timestamps": _array(_INT),
            "series": {"type": "object", "additionalProperties": _array(_NULLABLE_NUM)},
            "summary": _ref("MetricsSummary"),
        }
    ),
    "QueueDetail": _closed(
        {
            "name": _TEXT,
            "counts": _ref("Counts"),
            "paused": {"type": "boolean"},
            "workers": _array(_ref("Worker")),
            "oldest_waiting_ms": _NULLABLE_INT,
            "metrics": _ref("MetricsSummary"),
            "flow": _ref("FlowState"),  # flow control (web/flow_routes.py)
        }
    ),
    "JobSummary": _closed(
        {
            "id": _TEXT,
            "name": _TEXT,
            "state": _ref("JobState"),
            "priority": _INT,
            "attempts": _INT,
            "attempts_made": _INT,
            "progress": _ANY,
            "data_preview": _TEXT,
            "error": _NULLABLE_TEXT,
            "created_at": _NULLABLE_INT,
            "run_at": _NULLABLE_INT,
            "started_at": _NULLABLE_INT,
            "finished_at": _NULLABLE_INT,
        }
    ),
    "JobPage": _closed(
        {
            "jobs": _array(_ref("JobSummary")),
            "total": _INT,
            "page": _INT,
            "size": _INT,
            "pages": _INT,
            "truncated": {"type": "boolean"},
            "scanned": _NULLABLE_INT,
        }
    ),
    "SearchPage": _closed(
        {
            "jobs": _array(_ref("JobSummary")),
            "scanned": _INT,
            "total": _INT,
            "next_cursor": _NULLABLE_TEXT,
        }
    ),
    "JobOptions": _closed(
        {
            "attempts": _INT,
            "backoff": {"anyOf": [_ref("Backoff"), {"type": "null"}]},
            "timeout": _NULLABLE_NUM,
            "ttl": _NULLABLE_NUM,
            "priority": _INT,
        }
    ),
    "Backoff": _closed({"kind": _TEXT, "delay": _NUM, "max_delay": _NULLABLE_NUM, "jitter": _NUM}),
    "Attempt": _obj(
        {
            "attempt": _INT,
            "error": _NULLABLE_TEXT,
            "traceback": _NULLABLE_TEXT,
            "worker": _NULLABLE_TEXT,
            "at": _INT,
            "duration_ms": {"type": "number"},
        }
    ),
    "TimelineEvent": _obj({"event": _TEXT, "at": _INT, "detail": _NULLABLE_TEXT}, ["event", "at"]),
    "Job": _closed(
        {
            "id": _TEXT,
            "queue": _TEXT,
            "name": _TEXT,
            "data": _ANY,
            "state": _ref("JobState"),
            "options": _ref("JobOptions"),
            "attempts_made": _INT,
            "stalls": _INT,
            "progress": _ANY,
            "result": _ANY,
            "error": _NULLABLE_TEXT,
            "attempts": _array(_ref("Attempt")),
            "logs": _array(_TEXT),
            "timeline": _array(_ref("TimelineEvent")),
            "created_at": _NULLABLE_INT,
            "queued_at": _NULLABLE_INT,
            "run_at": _NULLABLE_INT,
            "started_at": _NULLABLE_INT,
            "finished_at": _NULLABLE_INT,
            "wait_ms": _NULLABLE_INT,
            "run_ms": _NULLABLE_INT,
            "worker": _NULLABLE_TEXT,
            "group": _NULLABLE_TEXT,  # flow control
            "decode_error": _NULLABLE_TEXT,
            **workflow_routes.JOB_FIELDS,
        }
    ),
    "NewJob": NEW_JOB.schema(),
    "Added": _closed(
        {
            "id": _TEXT,
            "state": _ref("JobState"),
            "queue": _TEXT,
            "deduplicated": {
                "type": "boolean",
                "description": "options.dedupe found a job: this is that job, none was added",
            },
        }
    ),
    "Bulk": BULK.schema(),
    "BulkResult": _closed(
        {
            "action": _TEXT,
            "done": _INT,
            "results": {
                "type": "object",
                "additionalProperties": _obj(
                    {"ok": {"type": "boolean"}, "code": _TEXT, "message": _TEXT}, ["ok"]
                ),
            },
        }
    ),
    "StateBody": STATE_BODY.schema(),
    **workflow_routes.SCHEMAS,
    "Count": _closed({"count": _INT}),
    "Ok": _closed({"ok": {"type": "boolean"}}),
    "Login": LOGIN.schema(),
    "Config": _obj(
        {
            "version": _TEXT,
            "auth": _TEXT,
            "read_only": {"type": "boolean"},
            "prefix": {**_TEXT, "description": "only for a client that may read data"},
            "redis": {**_TEXT, "description": "redacted; only for a client that may read data"},
            "poll_seconds": {
                **_array(_INT),
                "description": "refresh intervals; the first is the default",
            },
            "ranges": {**_array(_RANGE), "description": "chart ranges; the first is the default"},
        },
        ["version", "auth", "read_only", "poll_seconds", "ranges"],
    ),
}

_ERRORS = {
    "400": "bad input",
    "401": "authentication required",
    "403": "forbidden (read-only, CSRF, host)",
    "404": "unknown queue or job",
    "409": "the job is not in a state that allows this",
    "413": "payload too large",
    "415": "body is not JSON",
    "429": "too many failed logins from this client: wait Retry-After seconds",
    "501": "not on Redis Cluster",
    "503": "Redis unavailable, or too many live streams open",
}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _responses(ok: str, schema: dict[str, Any], codes: str) -> dict[str, Any]:
    out = {ok: _json(schema)}
    for code in codes.split():
        out[code] = _json(_ref("Error"), _ERRORS[code])
    return out


_Q = {
    "name": "queue",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": f"^{QUEUE_NAME_PATTERN}$"},
}
_ID = JOB_ID.parameter("path")
_RANGE_PARAM = RANGE_QUERY.parameter()
_READ = "401 403 429 503"
_WRITE = "400 401 403 415 429 503"


def _event_stream(codes: str) -> dict[str, Any]:
    """A text/event-stream answer: each message's data is a ``LiveEvents`` object, its id the
    last stream entry read (send it back as Last-Event-ID to resume)."""
    out = _responses("200", _ref("LiveEvents"), codes)
    out["200"] = {
        "description": 'server-sent events; event "queues" when a queue appeared',
        "content": {"text/event-stream": {"schema": _ref("LiveEvents")}},
    }
    return out


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
    list_params = [_Q, *(field.parameter() for field in JOB_LIST_QUERY)]
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
                "What the dashboard needs to know (auth kind, read-only, version, refresh "
                "intervals, chart ranges)",
                {"200": _json(_ref("Config"))},
                tag="meta",
            )
        },
        "/api/login": {
            "post": _op(
                "Exchange a token or username/password for a session cookie",
                _responses("200", _ref("Ok"), "400 401 403 415 429"),
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
        "/api/queues/{queue}/search": {
            "get": _op(
                "Search every job of one state by id, name and data: up to size matches, "
                "reading at most 10,000 jobs per call; call again with next_cursor",
                _responses("200", _ref("SearchPage"), f"{_READ} 400 404"),
                [_Q, *(field.parameter() for field in SEARCH_QUERY)],
                tag="jobs",
            )
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
                [_Q, _RANGE_PARAM],
                tag="metrics",
            )
        },
        "/api/metrics": {
            "get": _op(
                "The same, summed over every queue",
                _responses("200", _ref("Metrics"), f"{_READ} 400"),
                [_RANGE_PARAM],
                tag="metrics",
            )
        },
        "/api/events": {
            "get": _op(
                "Live: every queue's transitions as server-sent events (one Redis node only)",
                _event_stream(f"{_READ} 501"),
                tag="live",
            )
        },
        "/api/queues/{queue}/events": {
            "get": _op(
                "Live: one queue's transitions (or one job's, with job=) as server-sent events",
                _event_stream(f"{_READ} 404"),
                [
                    _Q,
                    {"name": "job", "in": "query", "required": False, "schema": {"type": "string"}},
                ],
                tag="live",
            )
        },
        "/api/workers": {
            "get": _op(
                "Live workers",
                _responses(
                    "200",
                    _obj({"workers": {"type": "array", "items": _ref("WorkerNow")}}, ["workers"]),
                    _READ,
                ),
                tag="workers",
            )
        },
    }
    paths.update(_schedule_paths(_op, _responses, _Q, _READ, _WRITE))  # job schedulers
    from .flow_routes import add_flow_spec  # (here: that module uses this one's helpers)

    schemas = dict(_SCHEMAS)
    add_flow_spec(paths, schemas)  # flow control
    paths.update(workflow_routes.paths(_op, _responses, _Q))
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
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
                "session": {"type": "apiKey", "in": "cookie", "name": "conveyor_session"},
            },
        },
        "security": [{"bearer": []}, {"basic": []}, {"session": []}],
    }
