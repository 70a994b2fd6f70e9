"""A small description of JSON values from which both the JSON Schema of the OpenAPI document
and the checking parser of the request handlers are built, so the two cannot disagree.

A ``Field`` names a value (a body field, a nested field or a query parameter), its type and its
bounds. ``schema()`` renders it as JSON Schema; ``parse()`` checks a decoded JSON value against
it and ``parse_query()`` a query-string value, raising a 400 ``bad_request`` that names the
field and what it must be.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import math
from collections.abc import Mapping
from typing import Any, Literal

from .security import WebError

__all__ = ["Field", "parse_query"]

#: ``instant`` is a point in time: epoch seconds or an ISO 8601 string with a timezone; it
#: parses to epoch seconds. ``any`` is any JSON value.
Kind = Literal["string", "integer", "number", "boolean", "object", "array", "any", "instant"]
_ISO_EXAMPLE = "2030-01-01T09:00:00Z"
_LONGEST_TIME_TEXT = 64


def _bad(message: str) -> WebError:
    return WebError(400, "bad_request", message)


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _choices(values: tuple[str, ...]) -> str:
    quoted = [repr(v) for v in values]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


@dataclasses.dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: Kind
    required: bool = False
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    #: The minimum itself is refused (e.g. a timeout must be positive, not zero).
    exclusive_minimum: bool = False
    #: Length bounds of a string, or item count bounds of an array.
    min_length: int | None = None
    max_length: int | None = None
    enum: tuple[str, ...] = ()
    #: The items of an array.
    items: Field | None = None
    #: The fields of an object; any other field is refused.
    fields: tuple[Field, ...] = ()
    #: The value of a query parameter that is not given.
    default: Any = None
    description: str = ""

    # -- JSON Schema -----------------------------------------------------------------------

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"description": self.description} if self.description else {}
        if self.nullable and self.kind == "object":
            # anyOf rather than a type list: TypeScript generators then keep the object's type.
            inner = dataclasses.replace(self, nullable=False, description="")
            return out | {"anyOf": [inner.schema(), {"type": "null"}]}
        if self.kind == "any":
            return out
        if self.kind == "instant":
            out["oneOf"] = [{"type": "number"}, {"type": "string", "format": "date-time"}]
            return out
        out["type"] = [self.kind, "null"] if self.nullable else self.kind
        if self.enum:
            out["enum"] = list(self.enum)
        if self.minimum is not None:
            out["exclusiveMinimum" if self.exclusive_minimum else "minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        prefix = "Items" if self.kind == "array" else "Length"
        if self.min_length is not None:
            out[f"min{prefix}"] = self.min_length
        if self.max_length is not None:
            out[f"max{prefix}"] = self.max_length
        if self.items is not None:
            out["items"] = self.items.schema()
        if self.kind == "object":
            out["properties"] = {f.name: f.schema() for f in self.fields}
            required = [f.name for f in self.fields if f.required]
            if required:
                out["required"] = required
            out["additionalProperties"] = False
        if self.default is not None:
            out["default"] = self.default
        return out

    def parameter(self, where: str = "query") -> dict[str, Any]:
        """The OpenAPI parameter object of a query (or path) parameter."""
        return {
            "name": self.name,
            "in": where,
            "required": self.required or where == "path",
            "schema": self.schema(),
        }

    # -- parsing -----------------------------------------------------------------------------

    def parse(self, value: Any, where: str = "") -> Any:
        """``value`` checked against this field (``where`` names it in errors, e.g.
        ``options.backoff.delay``); objects come back with only the fields given."""
        where = where or self.name
        if value is None:
            if self.nullable or self.kind == "any":
                return None
            raise _bad(f"{where} must not be null")
        match self.kind:
            case "any":
                return value
            case "object":
                return self._parse_object(value, where)
            case "array":
                return self._parse_array(value, where)
            case "instant":
                return _parse_instant(value, where)
            case "string":
                return self._parse_string(value, where)
            case "boolean":
                if not isinstance(value, bool):
                    raise _bad(f"{where} must be true or false")
                return value
            case _:
                return self._parse_number(value, where)

    def _parse_object(self, value: Any, where: str) -> dict[str, Any]:
        # A request body has no name: its fields are named alone ("name", "options.ttl").
        if not isinstance(value, dict):
            raise _bad(f"{where or 'the body'} must be an object")
        known = {f.name: f for f in self.fields}
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise _bad(f"unknown {f'{where} ' if where else ''}fields {unknown}")
        prefix = f"{where}." if where else ""
        out: dict[str, Any] = {}
        for name, field in known.items():
            if name in value:
                out[name] = field.parse(value[name], prefix + name)
            elif field.required:
                raise _bad(f"{prefix}{name} is required")
        return out

    def _parse_array(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise _bad(f"{where} must be a list")
        if self.max_length is not None and len(value) > self.max_length:
            raise _bad(f"{where} holds {len(value)} items (at most {self.max_length})")
        if self.min_length is not None and len(value) < self.min_length:
            raise _bad(f"{where} holds {len(value)} items (at least {self.min_length})")
        if self.items is None:
            return list(value)
        return [self.items.parse(item, f"{where}[{i}]") for i, item in enumerate(value)]

    def _parse_string(self, value: Any, where: str) -> str:
        if self.enum:
            if value not in self.enum:
                raise _bad(f"{where} must be {_choices(self.enum)}")
            return str(value)
        low, high = self.min_length or 0, self.max_length
        if (
            not isinstance(value, str)
            or len(value) < low
            or (high is not None and len(value) > high)
        ):
            size = f" of {low}-{high} characters" if high is not None else ""
            raise _bad(f"{where} must be a string{size}")
        return value

    def _parse_number(self, value: Any, where: str) -> float | int:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number and self.kind == "integer" and isinstance(value, float):
            # JSON Schema counts 2.0 as an integer.
            number = value.is_integer()
            value = int(value) if number else value
        if not number or not math.isfinite(value) or not self._in_bounds(value):
            raise _bad(f"{where} must be {self._number_rule()}")
        return value  # type: ignore[no-any-return]

    def _in_bounds(self, value: float) -> bool:
        if self.minimum is not None and (
            value < self.minimum or (self.exclusive_minimum and value == self.minimum)
        ):
            return False
        return self.maximum is None or value <= self.maximum

    def _number_rule(self) -> str:
        rule = "an integer" if self.kind == "integer" else "a number"
        low = None if self.minimum is None else _number_text(self.minimum)
        high = None if self.maximum is None else _number_text(self.maximum)
        if low is not None and self.exclusive_minimum:
            rule += f" over {low}" + (f" and at most {high}" if high is not None else "")
        elif low is not None and high is not None:
            rule += f" from {low} to {high}"
        elif low is not None:
            rule += f" of at least {low}"
        elif high is not None:
            rule += f" of at most {high}"
        return rule + (" or null" if self.nullable else "")

    def parse_query(self, raw: str | None) -> Any:
        """A query-string value checked against this field; the default when absent or empty."""
        if raw is None or raw == "":
            if self.required:
                raise _bad(f"{self.name} is required")
            return self.default
        if self.kind in ("integer", "number"):
            try:
                value: Any = int(raw) if self.kind == "integer" else float(raw)
            except ValueError:
                raise _bad(f"{self.name} must be {self._number_rule()}") from None
            return self.parse(value)
        return self.parse(raw)


def parse_query(fields: tuple[Field, ...], query: Mapping[str, str]) -> dict[str, Any]:
    """Every query parameter of ``fields`` by name (the defaults for those not given)."""
    return {field.name: field.parse_query(query.get(field.name)) for field in fields}


def _parse_instant(raw: Any, where: str) -> float:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)  # epoch seconds; the core checks the range
    if isinstance(raw, str) and len(raw) <= _LONGEST_TIME_TEXT:
        try:
            when = dt.datetime.fromisoformat(raw.strip().upper())
        except ValueError:
            pass
        else:
            if when.tzinfo is None:
                raise _bad(
                    f"{where} {raw!r} has no timezone; add one, e.g. {_ISO_EXAMPLE} or "
                    "2030-01-01T09:00:00+02:00"
                )
            with contextlib.suppress(OverflowError, ValueError):
                return when.timestamp()
    raise _bad(
        f"{where} must be epoch seconds or an ISO 8601 time with a timezone "
        f"(e.g. {_ISO_EXAMPLE}), not {str(raw)[:_LONGEST_TIME_TEXT]!r}"
    )
