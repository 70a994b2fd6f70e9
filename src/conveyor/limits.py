"""Bounds on what producers and API clients may ask for, each defined once: the core's checks
(``options``), the HTTP API's checks and its OpenAPI document all read them from here."""

from __future__ import annotations

__all__ = [
    "MAX_ATTEMPTS",
    "MAX_BULK_IDS",
    "MAX_PAGE",
    "MAX_PAGE_SIZE",
    "MAX_PRIORITY",
    "MAX_SECONDS",
    "MAX_TEXT",
]

#: Longest delay, timeout, ttl, backoff delay or clean age, and the furthest ``run_at`` ahead:
#: ten years, in seconds (past that a millisecond score stops being a useful schedule).
MAX_SECONDS = 10 * 365 * 24 * 3600
#: Longest job name, job id or search text, in characters.
MAX_TEXT = 256
#: Priorities run from ``-MAX_PRIORITY`` to ``MAX_PRIORITY`` (higher runs first).
MAX_PRIORITY = 1000
#: Most runs one job may have, the first one included.
MAX_ATTEMPTS = 10_000
#: Most job ids one bulk request may name.
MAX_BULK_IDS = 1000
#: Largest page of a job listing, and the highest page number asked for.
MAX_PAGE_SIZE = 200
MAX_PAGE = 100_000
