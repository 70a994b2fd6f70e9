"""Prometheus exposition of what the Lua scripts record (read from Redis at scrape time).

Names follow the conventions of the field (BullMQ, Sidekiq exporters, celery-exporter):

* ``conveyor_jobs_total{queue,outcome}`` counter: completed, failed (for good), retried
* ``conveyor_job_wait_seconds{queue}`` histogram: runnable -> started (deliberate delays excluded)
* ``conveyor_job_run_seconds{queue}`` histogram: started -> finished, every attempt
* ``conveyor_queue_jobs{queue,state}`` gauge, ``conveyor_queue_paused{queue}``
* ``conveyor_queue_oldest_job_age_seconds{queue}``: age of the job that has waited longest
* ``conveyor_workers{queue}``: live workers serving the queue
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..admin import bucket_bounds

__all__ = ["render_metrics"]

#: Bucket upper bounds exposed (ms): every second recorded bucket, 1 ms .. ~4.6 h.
_EDGES = [2 ** (b / 2) for b in range(0, 50, 2)]


def _cumulative(histogram: Mapping[int, int]) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    items = sorted(histogram.items())
    for edge in _EDGES:
        count = sum(c for b, c in items if bucket_bounds(b)[1] <= edge + 1e-9)
        out.append((f"{edge / 1000:g}", float(count)))
    out.append(("+Inf", float(sum(histogram.values()))))
    return out


class _Snapshot:
    def __init__(self, queues: list[dict[str, Any]]) -> None:
        self.queues = queues

    def collect(self) -> Iterator[Metric]:
        jobs = CounterMetricFamily(
            "conveyor_jobs", "Jobs finished, by outcome", labels=["queue", "outcome"]
        )
        depth = GaugeMetricFamily(
            "conveyor_queue_jobs", "Jobs per state", labels=["queue", "state"]
        )
        paused = GaugeMetricFamily("conveyor_queue_paused", "1 when paused", labels=["queue"])
        oldest = GaugeMetricFamily(
            "conveyor_queue_oldest_job_age_seconds",
            "How long the oldest waiting job has been runnable",
            labels=["queue"],
        )
        workers = GaugeMetricFamily("conveyor_workers", "Live workers", labels=["queue"])
        hists = {
            kind: HistogramMetricFamily(
                f"conveyor_job_{kind}_seconds",
                "Time from runnable to started" if kind == "wait" else "Run time of attempts",
                labels=["queue"],
            )
            for kind in ("wait", "run")
        }
        for q in self.queues:
            name = q["name"]
            counts = dict(q["counts"])
            for outcome in ("completed", "failed", "retried"):
                jobs.add_metric([name, outcome], float(q["counters"].get(outcome, 0)))
            paused.add_metric([name], float(counts.pop("paused", 0)))
            for state, value in counts.items():
                depth.add_metric([name, state], float(value))
            oldest.add_metric([name], (q["oldest_waiting_ms"] or 0) / 1000)
            workers.add_metric([name], float(q["workers"]))
            for kind, family in hists.items():
                family.add_metric(
                    [name],
                    _cumulative(q["histograms"][kind]),
                    sum_value=q["sums_ms"].get(kind, 0) / 1000,
                )
        yield jobs
        yield depth
        yield paused
        yield oldest
        yield workers
        yield from hists.values()


def render_metrics(queues: list[dict[str, Any]]) -> tuple[bytes, str]:
    """The text exposition for a snapshot from ``Admin.prometheus_snapshot``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(queues))
    return generate_latest(registry), CONTENT_TYPE_LATEST
