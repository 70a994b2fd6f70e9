"""What the JSON API accepts: its request bodies and query parameters as ``Field`` tables.

The OpenAPI document (``openapi.py``) renders these tables as JSON Schema and the handlers
(``app.py``) parse requests with them, so the documented and the enforced rules are one. The
job options come from the core's own table (``options.JOB_OPTIONS``) and the states from
``JobState``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..admin import BULK_ACTIONS, DEFAULT_RANGE, RANGES
from ..admin.listing import DEFAULT_PAGE_SIZE, SORT_ORDERS
from ..backoff import EXPONENTIAL_DELAY, EXPONENTIAL_MAX_DELAY, Backoff
from ..dedupe import MODE_SECONDS, Dedupe
from ..job import CLEANABLE_STATES, JobState
from ..limits import MAX_BULK_IDS, MAX_PAGE, MAX_PAGE_SIZE, MAX_SECONDS, MAX_TEXT
from ..options import JOB_OPTIONS, JobOption
from .fields import Field
from .security import WebError

__all__ = [
    "BULK",
    "CLEANABLE_NAMES",
    "JOB_ID",
    "JOB_LIST_QUERY",
    "LOGIN",
    "NEW_JOB",
    "POLL_SECONDS",
    "RANGE_QUERY",
    "SEARCH_QUERY",
    "STATE_BODY",
    "STATE_NAMES",
    "job_options",
]

#: Refresh intervals the dashboard offers, in seconds; the first is its default.
POLL_SECONDS = (2, 3, 5, 10)

#: Every state, in ``JobState``'s order (the JSON Schema enums keep it).
STATE_NAMES = tuple(state.value for state in JobState)
CLEANABLE_NAMES = tuple(state.value for state in JobState if state in CLEANABLE_STATES)

_TEXT = Field("text", "string", min_length=1, max_length=MAX_TEXT)
#: The ``{id}`` path parameter.
JOB_ID = Field("id", "string", required=True, min_length=1, max_length=MAX_TEXT)

#: Built-in backoff kinds and how the API builds each from the fields given (the defaults of
#: the fields left out are ``Backoff``'s own).
_BACKOFF_KINDS = ("fixed", "exponential")
_BACKOFF = Field(
    "backoff",
    "object",
    fields=(
        Field("kind", "string", required=True, enum=_BACKOFF_KINDS),
        Field(
            "delay",
            "number",
            minimum=0,
            maximum=MAX_SECONDS,
            description=f"seconds (exponential: default {EXPONENTIAL_DELAY:g})",
        ),
        Field("max_delay", "number", nullable=True, minimum=0, maximum=MAX_SECONDS),
        Field("jitter", "number", minimum=0, maximum=1),
    ),
    description="Delay before each retry. exponential: delay * 2^(attempt-1), capped at "
    f"max_delay (default {EXPONENTIAL_MAX_DELAY:g} s; null: no cap); fixed: delay every time. "
    "jitter j draws each delay from [(1-j)*d, d].",
)


_DEDUPE = Field(
    "dedupe",
    "object",
    nullable=True,
    fields=(
        Field("mode", "string", required=True, enum=tuple(MODE_SECONDS)),
        Field("key", "string", required=True, min_length=1, max_length=MAX_TEXT),
        Field("ttl", "number", minimum=0.001, maximum=MAX_SECONDS,
              description="throttle: seconds from the first add in which repeats return its job"),
        Field("delay", "number", minimum=0.001, maximum=MAX_SECONDS,
              description="debounce: seconds after the last add that the job runs"),
    ),
    description="Deduplicate by key: until_finished (one live job per key), throttle (with "
    "ttl) or debounce (with delay; the last add's data wins). An add that deduplicates returns "
    "the existing job, with deduplicated true.",
)  # fmt: skip


def _option_field(option: JobOption) -> Field:
    """The JSON field of one job option, from the core's table of options."""
    # Options without a numeric default are absent by default, so null stands for absent.
    nullable = option.kind != "integer"
    if option.kind == "backoff":
        return dataclasses.replace(_BACKOFF, nullable=nullable)
    if option.kind == "time":
        return Field(
            option.name,
            "instant",
            nullable=nullable,
            description=f"{option.description}: epoch seconds, or an ISO 8601 "
            "time with a timezone (2030-01-01T09:00:00Z).",
        )
    if option.kind == "text":
        return Field(
            option.name,
            "string",
            nullable=nullable,
            min_length=None if option.low is None else int(option.low),
            max_length=None if option.high is None else int(option.high),
            description=option.description,
        )
    return Field(
        option.name,
        "integer" if option.kind == "integer" else "number",
        nullable=nullable,
        minimum=option.low,
        maximum=option.high,
        exclusive_minimum=option.low_excluded,
        description=option.description,
    )


#: ``POST /api/queues/{queue}/jobs``.
NEW_JOB = Field(
    "",
    "object",
    fields=(
        Field("name", "string", required=True, min_length=1, max_length=MAX_TEXT),
        Field("data", "any"),
        Field(
            "options",
            "object",
            nullable=True,
            fields=(*map(_option_field, JOB_OPTIONS.values()), _DEDUPE),
        ),
    ),
)
#: ``POST /api/queues/{queue}/jobs/bulk``.
BULK = Field(
    "",
    "object",
    fields=(
        Field("action", "string", required=True, enum=tuple(BULK_ACTIONS)),
        Field("ids", "array", required=True, max_length=MAX_BULK_IDS, items=_TEXT),
    ),
)
#: ``POST .../retry-all`` (failed or delayed) and ``POST .../clean``; seconds for clean.
STATE_BODY = Field(
    "",
    "object",
    fields=(
        Field("state", "string", enum=CLEANABLE_NAMES),
        Field("older_than", "number", minimum=0, maximum=MAX_SECONDS),
    ),
)
#: ``POST /api/login``: a token, or a username and password.
LOGIN = Field(
    "",
    "object",
    fields=(
        Field("token", "string", nullable=True),
        Field("username", "string", nullable=True),
        Field("password", "string", nullable=True),
    ),
)

#: ``GET /api/queues/{queue}/jobs``.
JOB_LIST_QUERY = (
    Field("state", "string", enum=STATE_NAMES, default=JobState.WAITING.value),
    Field("name", "string", max_length=MAX_TEXT),
    Field("q", "string", max_length=MAX_TEXT),
    Field("page", "integer", minimum=1, maximum=MAX_PAGE, default=1),
    Field("size", "integer", minimum=1, maximum=MAX_PAGE_SIZE, default=DEFAULT_PAGE_SIZE),
    Field("sort", "string", enum=SORT_ORDERS, default=SORT_ORDERS[0]),
)
#: ``GET /api/queues/{queue}/search``: the filters of a listing, and where to go on from.
SEARCH_QUERY = (
    *(f for f in JOB_LIST_QUERY if f.name != "page"),
    Field(
        "cursor",
        "string",
        max_length=MAX_TEXT,
        description="next_cursor of the previous answer; none to start",
    ),
)
#: ``GET /api/metrics`` and ``GET /api/queues/{queue}/metrics``.
RANGE_QUERY = Field("range", "string", enum=tuple(RANGES), default=DEFAULT_RANGE)


def job_options(given: dict[str, Any]) -> dict[str, Any]:
    """Parsed ``options`` of a new job as ``Queue.add`` takes them (``backoff`` as a
    ``Backoff``); the core checks what spans options (delay with run_at) and its errors become
    400s too."""
    options = {name: value for name, value in given.items() if value is not None}
    if "backoff" in options:
        options["backoff"] = _backoff(options["backoff"])
    if "dedupe" in options:
        options["dedupe"] = _dedupe(options["dedupe"])
    return options


def _dedupe(given: dict[str, Any]) -> Dedupe:
    mode = given["mode"]
    seconds = MODE_SECONDS[mode]
    for other in {name for name in MODE_SECONDS.values() if name} - {seconds}:
        if other in given:
            raise WebError(
                400, "bad_request", f"options.dedupe.{other} does not apply to mode {mode!r}"
            )
    if seconds is None:
        return Dedupe.until_finished(given["key"])
    if seconds not in given:
        raise WebError(
            400, "bad_request", f"options.dedupe.{seconds} is required for mode {mode!r}"
        )
    make = Dedupe.throttle if mode == "throttle" else Dedupe.debounce
    return make(given["key"], given[seconds])


def _backoff(given: dict[str, Any]) -> Backoff:
    kind = given["kind"]
    if kind == "fixed":
        if "delay" not in given:
            raise WebError(400, "bad_request", "options.backoff.delay is required for kind 'fixed'")
        return Backoff(kind, float(given["delay"]), given.get("max_delay"), given.get("jitter", 0))
    # Fields left out keep Backoff.exponential's defaults (max_delay: capped at an hour).
    return Backoff.exponential(**{k: v for k, v in given.items() if k != "kind"})
