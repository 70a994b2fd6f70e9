"""The API's request tables: the JSON Schema the OpenAPI document shows and the parser the
handlers use are built from one description, so they accept and refuse the same bodies."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest

from conveyor.job import CLEANABLE_STATES, JobState
from conveyor.limits import MAX_BULK_IDS, MAX_SECONDS, MAX_TEXT
from conveyor.options import JOB_OPTIONS
from conveyor.web.contract import (
    BULK,
    JOB_LIST_QUERY,
    LOGIN,
    NEW_JOB,
    STATE_BODY,
    job_options,
)
from conveyor.web.fields import Field, parse_query
from conveyor.web.openapi import build_spec
from conveyor.web.security import WebError

CASES: list[tuple[Field, dict[str, Any]]] = [
    (NEW_JOB, {"name": "send"}),
    (NEW_JOB, {"name": "send", "data": {"to": "a"}, "options": None}),
    (NEW_JOB, {"name": ""}),
    (NEW_JOB, {"name": "x" * (MAX_TEXT + 1)}),
    (NEW_JOB, {"data": 1}),
    (NEW_JOB, {"name": "send", "colour": "red"}),
    (NEW_JOB, {"name": "send", "options": {"attempts": 3, "priority": -5, "delay": 1.5}}),
    (NEW_JOB, {"name": "send", "options": {"attempts": 0}}),
    (NEW_JOB, {"name": "send", "options": {"attempts": 2.5}}),
    (NEW_JOB, {"name": "send", "options": {"priority": 1001}}),
    (NEW_JOB, {"name": "send", "options": {"delay": MAX_SECONDS}}),
    (NEW_JOB, {"name": "send", "options": {"delay": MAX_SECONDS + 1}}),
    (NEW_JOB, {"name": "send", "options": {"delay": None, "ttl": None, "job_id": None}}),
    (NEW_JOB, {"name": "send", "options": {"timeout": 0}}),
    (NEW_JOB, {"name": "send", "options": {"timeout": 0.5}}),
    (NEW_JOB, {"name": "send", "options": {"job_id": ""}}),
    (NEW_JOB, {"name": "send", "options": {"attempts": None}}),
    (NEW_JOB, {"name": "send", "options": {"delay": True}}),
    (NEW_JOB, {"name": "send", "options": {"nope": 1}}),
    (NEW_JOB, {"name": "send", "options": {"run_at": 4102444800}}),
    (NEW_JOB, {"name": "send", "options": {"run_at": [1]}}),
    (NEW_JOB, {"name": "send", "options": {"backoff": None}}),
    (NEW_JOB, {"name": "send", "options": {"backoff": {"kind": "fixed", "delay": 5}}}),
    (NEW_JOB, {"name": "send", "options": {"backoff": {"kind": "linear"}}}),
    (NEW_JOB, {"name": "send", "options": {"backoff": {"delay": 5}}}),
    (NEW_JOB, {"name": "send", "options": {"backoff": {"kind": "fixed", "jitter": 1.5}}}),
    (NEW_JOB, {"name": "send", "options": {"backoff": {"kind": "exponential", "max_delay": None}}}),
    (NEW_JOB, {"name": "send", "options": {"backoff": "exponential"}}),
    (NEW_JOB, {"name": "send", "options": {"dedupe": None}}),
    (NEW_JOB, {"name": "send", "options": {"dedupe": {"mode": "until_finished", "key": "k"}}}),
    (NEW_JOB, {"name": "send", "options": {"dedupe": {"mode": "throttle", "key": "k", "ttl": 5}}}),
    (NEW_JOB, {"name": "send", "options": {"dedupe": {"mode": "throttle", "key": "k", "ttl": 0}}}),
    (NEW_JOB, {"name": "send", "options": {"dedupe": {"mode": "once", "key": "k"}}}),
    (NEW_JOB, {"name": "send", "options": {"dedupe": {"mode": "debounce"}}}),
    (NEW_JOB, {"name": "send", "options": {"dedupe": {"mode": "debounce", "key": ""}}}),
    (NEW_JOB, {"name": "send", "options": {"dedupe": {"key": "k", "delay": 1}}}),
    (NEW_JOB, {"name": "send", "options": {"dedupe": "k"}}),
    (BULK, {"action": "retry", "ids": ["1", "2"]}),
    (BULK, {"action": "retry", "ids": ["1"] * (MAX_BULK_IDS + 1)}),
    (BULK, {"action": "explode", "ids": []}),
    (BULK, {"action": "remove", "ids": [""]}),
    (BULK, {"action": "remove", "ids": [5]}),
    (BULK, {"ids": []}),
    (STATE_BODY, {}),
    (STATE_BODY, {"state": "failed", "older_than": 60}),
    (STATE_BODY, {"state": "active"}),
    (STATE_BODY, {"older_than": -1}),
    (STATE_BODY, {"older_than": "1h"}),
    (LOGIN, {"token": "t"}),
    (LOGIN, {"username": "u", "password": None}),
    (LOGIN, {"token": 5}),
    (LOGIN, {"user": "u"}),
]


def _parses(field: Field, body: dict[str, Any]) -> bool:
    try:
        field.parse(body)
    except WebError as exc:
        assert (exc.status, exc.code) == (400, "bad_request")
        return False
    return True


@pytest.mark.parametrize(("field", "body"), CASES)
def test_the_parser_accepts_what_the_documented_schema_accepts(
    field: Field, body: dict[str, Any]
) -> None:
    documented = jsonschema_rs.validator_for(field.schema()).is_valid(body)
    assert _parses(field, body) == documented, body


def test_the_documented_request_bodies_are_the_tables() -> None:
    schemas = build_spec()["components"]["schemas"]
    for name, field in (
        ("NewJob", NEW_JOB),
        ("Bulk", BULK),
        ("StateBody", STATE_BODY),
        ("Login", LOGIN),
    ):
        assert schemas[name] == field.schema(), name
    options = schemas["NewJob"]["properties"]["options"]["anyOf"][0]["properties"]
    assert list(options) == [*JOB_OPTIONS, "dedupe"]
    assert schemas["StateBody"]["properties"]["state"]["enum"] == [
        s.value for s in JobState if s in CLEANABLE_STATES
    ]
    assert schemas["JobState"]["enum"] == [s.value for s in JobState]


def test_errors_name_the_field_and_the_rule() -> None:
    with pytest.raises(WebError, match=r"options\.backoff\.jitter must be a number from 0 to 1"):
        NEW_JOB.parse({"name": "x", "options": {"backoff": {"kind": "fixed", "jitter": 2}}})
    with pytest.raises(WebError, match=r"options\.timeout must be a number over 0 and at most"):
        NEW_JOB.parse({"name": "x", "options": {"timeout": 0}})
    with pytest.raises(WebError, match=r"unknown fields \['colour'\]"):
        NEW_JOB.parse({"name": "x", "colour": "red"})
    with pytest.raises(WebError, match=r"ids\[1\] must be a string of 1-256 characters"):
        BULK.parse({"action": "retry", "ids": ["a", ""]})
    with pytest.raises(WebError, match=r"action must be 'retry', 'remove', 'promote' or 'cancel'"):
        BULK.parse({"action": "explode", "ids": []})


def test_job_options_become_queue_add_arguments() -> None:
    parsed = NEW_JOB.parse(
        {
            "name": "x",
            "options": {
                "delay": None,
                "run_at": "2030-01-01T00:00:00Z",
                "backoff": {"kind": "exponential", "delay": 2},
            },
        }
    )
    options = job_options(parsed["options"])
    assert options["run_at"] == 1893456000.0
    assert "delay" not in options
    backoff = options["backoff"]
    assert (backoff.kind, backoff.delay, backoff.max_delay) == ("exponential", 2.0, 3600.0)
    with pytest.raises(WebError, match="delay is required for kind 'fixed'"):
        job_options({"backoff": {"kind": "fixed"}})


def test_query_parameters_take_their_defaults_and_bounds() -> None:
    assert parse_query(JOB_LIST_QUERY, {}) == {
        "state": "waiting",
        "name": None,
        "q": None,
        "page": 1,
        "size": 20,
        "sort": "newest",
    }
    assert parse_query(JOB_LIST_QUERY, {"page": "3", "state": "failed"})["page"] == 3
    for query in ({"page": "0"}, {"page": "x"}, {"size": "201"}, {"state": "bogus"}):
        with pytest.raises(WebError):
            parse_query(JOB_LIST_QUERY, query)
