"""Metrics: the per-minute counters and duration histograms the scripts record, summed into
chart series, percentiles, recent throughput and the Prometheus snapshot.

Scripts record at each transition (``includes/queue.lua``) per-minute counters (``completed``,
``failed``, ``retried``) and per-minute histograms of wait and run time in log-scale buckets of
a factor sqrt(2). Percentiles are estimated from those buckets (geometric interpolation inside
the bucket), so they are accurate to a few percent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigurationError
from ..storage.commands import server_time_ms
from .discovery import QueueDiscovery

__all__ = [
    "COUNTERS",
    "DEFAULT_RANGE",
    "DURATIONS",
    "RANGES",
    "MetricsReads",
    "bucket_bounds",
    "percentile",
]

#: Chart ranges: name -> (minutes covered, minutes per point).
RANGES: dict[str, tuple[int, int]] = {
    # First: the dashboard's default, short enough that a fresh queue's data fills the chart.
    "15m": (15, 1),
    "1h": (60, 1),
    "6h": (360, 5),
    "24h": (1440, 15),
    "7d": (7 * 1440, 60),
}
#: The range of a request that names none (the dashboard's default and the queue summary's).
DEFAULT_RANGE = "1h"
#: Counter names the scripts record per minute.
COUNTERS = ("completed", "failed", "retried")
DURATIONS = ("wait", "run")
_QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))


def bucket_bounds(bucket: int) -> tuple[float, float]:
    """The [low, high) range in ms of a duration bucket (see includes/queue.lua)."""
    if bucket <= 0:
        return 0.0, 1.0
    return 2.0 ** ((bucket - 1) / 2), 2.0 ** (bucket / 2)


def percentile(histogram: Mapping[int, int], q: float) -> float | None:
    """Estimate the ``q`` quantile (0..1) in ms from bucket counts; None when empty."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for bucket in sorted(histogram):
        count = histogram[bucket]
        if count <= 0:
            continue
        if seen + count >= rank:
            low, high = bucket_bounds(bucket)
            frac = min(max((rank - seen) / count, 0.0), 1.0)
            if low <= 0:
                return round(high * frac, 3)
            return round(low * float((high / low) ** frac), 3)
        seen += count
    return round(bucket_bounds(max(histogram))[1], 3)


def _percentiles(histogram: Mapping[int, int]) -> dict[str, Any]:
    return {
        "count": sum(histogram.values()),
        **{label: percentile(histogram, quantile) for label, quantile in _QUANTILES},
    }


@dataclasses.dataclass(slots=True)
class _Series:
    """Counters and duration histograms accumulated over minutes."""

    counters: dict[str, int] = dataclasses.field(default_factory=dict)
    hist: dict[str, dict[int, int]] = dataclasses.field(
        default_factory=lambda: {kind: {} for kind in DURATIONS}
    )

    def add(self, name: str, value: int) -> None:
        kind, _, bucket = name.partition(":")
        if bucket and kind in self.hist:
            try:
                b = int(bucket)
            except ValueError:
                return
            self.hist[kind][b] = self.hist[kind].get(b, 0) + value
        else:
            self.counters[name] = self.counters.get(name, 0) + value

    def merge(self, other: _Series) -> None:
        for name, value in other.counters.items():
            self.counters[name] = self.counters.get(name, 0) + value
        for kind, hist in other.hist.items():
            mine = self.hist[kind]
            for b, count in hist.items():
                mine[b] = mine.get(b, 0) + count


def _parse_hour(fields: Mapping[str, str], into: dict[int, _Series]) -> None:
    for field, raw in fields.items():
        minute_text, _, name = field.partition(":")
        try:
            minute, value = int(minute_text), int(raw)
        except ValueError:
            continue
        into.setdefault(minute, _Series()).add(name, value)


class MetricsReads(QueueDiscovery):
    """Reads of the recorded metrics of one queue or of all."""

    async def metrics(
        self, names: Sequence[str] | None, range_name: str = DEFAULT_RANGE
    ) -> dict[str, Any]:
        """Time series and percentiles for a chart range, summed over ``names`` (None: all)."""
        if range_name not in RANGES:
            raise ConfigurationError(f"range must be one of {', '.join(RANGES)}")
        span, step = RANGES[range_name]
        if names is None:
            names = await self.queue_names()
        now = await self.redis.run(server_time_ms())
        last_minute = now // 60000
        first_minute = last_minute - span + 1
        # Align points to the step so a chart does not shift its buckets at every poll.
        first_point = first_minute - first_minute % step
        hours = list(range(first_point // 60, last_minute // 60 + 1))
        ops = [self._commands(n).metrics_hours(hours) for n in names]
        minutes: dict[int, _Series] = {}
        for per_queue in await self.redis.run_many(ops) if ops else []:
            for fields in per_queue:
                _parse_hour(fields, minutes)
        points = list(range(first_point, last_minute + 1, step))
        series: dict[str, list[Any]] = {name: [] for name in COUNTERS}
        for kind in DURATIONS:
            for label, _ in _QUANTILES:
                series[f"{kind}_{label}"] = []
        total = _Series()
        for point in points:
            bucket = _Series()
            for minute in range(max(point, first_minute), min(point + step, last_minute + 1)):
                if minute in minutes:
                    bucket.merge(minutes[minute])
            total.merge(bucket)
            for name in COUNTERS:
                series[name].append(bucket.counters.get(name, 0))
            for kind in DURATIONS:
                for label, quantile in _QUANTILES:
                    series[f"{kind}_{label}"].append(percentile(bucket.hist[kind], quantile))
        summary: dict[str, Any] = {name: total.counters.get(name, 0) for name in COUNTERS}
        for kind in DURATIONS:
            summary[kind] = _percentiles(total.hist[kind])
        summary["per_minute"] = round(summary["completed"] / span, 3)
        return {
            "range": range_name,
            "step_seconds": step * 60,
            "now": now,
            "timestamps": [p * 60 for p in points],
            "series": series,
            "summary": summary,
        }

    async def throughput(
        self, names: Sequence[str] | None = None, minutes: int = 5
    ) -> dict[str, dict[str, int]]:
        """Per queue (default: all): jobs completed, failed and retried in the last ``minutes``
        minutes, the current one included, from the per-minute counters."""
        if not 1 <= minutes <= 24 * 60:
            raise ConfigurationError("minutes must be between 1 and 1440")
        names = await self.queue_names() if names is None else list(names)
        if not names:
            return {}
        last_minute = await self.redis.run(server_time_ms()) // 60000
        wanted = range(last_minute - minutes + 1, last_minute + 1)
        hours = sorted({minute // 60 for minute in wanted})
        replies = await self.redis.run_many([self._commands(n).metrics_hours(hours) for n in names])
        out: dict[str, dict[str, int]] = {}
        for name, per_hour in zip(names, replies, strict=True):
            by_minute: dict[int, _Series] = {}
            for fields in per_hour:
                _parse_hour(fields, by_minute)
            total = _Series()
            for minute in wanted:
                if minute in by_minute:
                    total.merge(by_minute[minute])
            out[name] = {counter: total.counters.get(counter, 0) for counter in COUNTERS}
        return out

    async def prometheus_snapshot(self) -> list[dict[str, Any]]:
        """Per queue: counts, paused, workers, oldest age, lifetime totals and histograms."""
        names = await self.queue_names()
        ops: list[Any] = []
        for name in names:
            commands = self._commands(name)
            ops += [
                commands.counts(),
                commands.workers(),
                commands.oldest_waiting_ms(),
                commands.metrics_totals(),
            ]
        values = await self.redis.run_many(ops) if ops else []
        out = []
        for i, name in enumerate(names):
            counts, workers, oldest, totals = values[i * 4 : i * 4 + 4]
            series = _Series()
            sums: dict[str, int] = {}
            for field, raw in totals.items():
                try:
                    value = int(raw)
                except ValueError:
                    continue
                if field.endswith("_ms") and field[:-3] in DURATIONS:
                    sums[field[:-3]] = value
                else:
                    series.add(field, value)
            out.append(
                {
                    "name": name,
                    "counts": counts,
                    "workers": sum(1 for w in workers if w[2]),
                    "oldest_waiting_ms": oldest,
                    "counters": series.counters,
                    "histograms": series.hist,
                    "sums_ms": sums,
                }
            )
        return out
