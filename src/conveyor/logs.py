"""Log output for the command line: readable text, or one JSON object per line.

Per-job records carry structured fields passed with ``extra=`` by the worker: ``queue``,
``job_id``, ``job_name``, ``attempt`` and ``duration_ms``. The text format appends them as
``key=value``; the JSON format puts them in the object, so log shippers can index them::

    {"ts": "2026-01-02T10:11:12.345Z", "level": "info", "logger": "conveyor.worker",
     "message": "job 17 (send) failed: ...", "queue": "email", "job_id": "17",
     "job_name": "send", "attempt": 1, "duration_ms": 2003}
"""

from __future__ import annotations

import datetime as _dt
import logging
import sys
from typing import Any, TextIO

import orjson

__all__ = ["JOB_FIELDS", "JsonFormatter", "TextFormatter", "configure"]

#: Structured per-job fields, in output order.
JOB_FIELDS = ("queue", "job_id", "job_name", "attempt", "duration_ms", "worker_pid")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in JOB_FIELDS if hasattr(record, name)}


class TextFormatter(logging.Formatter):
    """``2026-01-02 10:11:12,345 INFO conveyor.worker: message key=value ...``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = _fields(record)
        if not fields:
            return text
        extra = " ".join(f"{key}={value}" for key, value in fields.items())
        head, sep, tail = text.partition("\n")
        return f"{head} [{extra}]{sep}{tail}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC, ISO 8601), level, logger, message, job fields,
    and ``exc`` (the formatted traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        ts = _dt.datetime.fromtimestamp(record.created, tz=_dt.UTC)
        out: dict[str, Any] = {
            "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(_fields(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def configure(level: str = "INFO", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Send Conveyor's (and the application's) logs to ``stream`` (stderr) in ``fmt``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
