"""Schemathesis against /api/openapi.json: no input it generates may cause a 500, and every
response must match the documented status codes, content type and schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conveyor import SyncQueue
from conveyor.web import create_app
from conveyor.web.openapi import build_spec
from conveyor.web.spec_file import render

TOKEN = "schema-test-token"
#: How long one call to a server-sent events path is read: such a stream never ends by itself,
#: and what it sends first (the retry line, then the events) comes within this bound, so
#: waiting out schemathesis's default 10 s per call would prove nothing more.
STREAM_READ_SECONDS = 0.5


@pytest.fixture(scope="module")
def api_app(redis_server: Any) -> Iterator[Any]:
    prefix = "ctschema"
    queue = SyncQueue("q", url=redis_server.url, prefix=prefix)
    queue.add("x", {"n": 1}, job_id="1")
    queue.add("x", {"n": 2}, delay=3600)
    queue.close()
    app = create_app(url=redis_server.url, prefix=prefix, token=TOKEN)
    yield app


def _auth() -> dict[str, str]:
    return {"authorization": f"Bearer {TOKEN}"}


def _event_stream_operations() -> set[str]:
    """The operations the document says answer with server-sent events ("GET /api/events")."""
    return {
        f"{method.upper()} {path}"
        for path, methods in build_spec()["paths"].items()
        for method, op in methods.items()
        if "text/event-stream" in op["responses"].get("200", {}).get("content", {})
    }


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.mark.timeout(600)
def test_api_conforms_to_its_openapi(api_app: Any) -> None:
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", api_app, headers=_auth())
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    streams = _event_stream_operations()
    assert streams, "the document names no event stream"
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=15,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            streamed = case.operation.label in streams
            bound = {"timeout": STREAM_READ_SECONDS} if streamed else {}
            case.call_and_validate(headers=_auth(), checks=CHECKS, **bound)

        try:
            check()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_the_dashboards_copy_of_the_document_is_current() -> None:
    # The front-end build generates its TypeScript types from this file (no server needed).
    committed = Path(__file__).resolve().parents[2] / "frontend" / "src" / "openapi.json"
    assert committed.read_text(encoding="utf-8") == render(), (
        "frontend/src/openapi.json is stale: run "
        "`python -m conveyor.web.spec_file > frontend/src/openapi.json`, then rebuild the dashboard"
    )
