"""JSON in and out of Redis. Never pickle: job data must be readable by any consumer."""

from __future__ import annotations

from typing import Any

import orjson

from .errors import PayloadNotSerializable, PayloadTooLarge

__all__ = ["decode", "encode"]


def encode(value: Any, limit: int, what: str = "job data") -> str:
    """Encode ``value`` as compact JSON text, refusing what is not JSON or over ``limit`` bytes."""
    try:
        raw = orjson.dumps(value)
    except TypeError as exc:
        raise PayloadNotSerializable(f"{what} is not JSON-serialisable: {exc}") from exc
    if len(raw) > limit:
        raise PayloadTooLarge(len(raw), limit, what)
    return raw.decode()


def decode(text: str | bytes) -> Any:
    """Decode JSON text; raises ``ValueError`` (orjson.JSONDecodeError) on garbage."""
    return orjson.loads(text)
