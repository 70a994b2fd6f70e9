"""The read/admin model behind the CLI, the JSON API and the dashboard (never used by workers).

``Admin`` discovers queues from Redis, reads counts, jobs, workers and metrics, and steers jobs
through ``Queue``'s methods and procedures. Every state change still happens in a Lua script;
this package only reads with plain commands (``Op``s from ``storage.commands``) and calls the
Queue API. One concern per module: ``discovery`` (queues, workers, health), ``listing`` (jobs),
``search`` (every retained job, a bounded slice per call), ``actions`` (changes), ``metrics``
(the recorded counters and histograms).
"""

from __future__ import annotations

from typing import Any

from ..errors import QueueNotFound
from ..storage.flow import FlowCommands
from .actions import BULK_ACTIONS, BULK_CHUNK, JobActions
from .discovery import worker_info
from .listing import SCAN_LIMIT, JobPage, summarize_job
from .metrics import DEFAULT_RANGE, RANGES, MetricsReads, bucket_bounds, percentile
from .search import JobSearch

__all__ = [
    "BULK_ACTIONS",
    "BULK_CHUNK",
    "DEFAULT_RANGE",
    "RANGES",
    "SCAN_LIMIT",
    "Admin",
    "JobPage",
    "QueueNotFound",
    "bucket_bounds",
    "percentile",
    "summarize_job",
]


class Admin(JobSearch, JobActions, MetricsReads):
    """Read and steer every queue under one key prefix.

    ``Admin(url="redis://...", prefix="conveyor")``; ``await admin.close()`` when done.
    """

    async def queue_info(self, name: str) -> dict[str, Any]:
        """Counts, paused flag, workers and a metrics summary of the last hour."""
        queue = await self.require(name)
        counts, workers, oldest, flow = await self.redis.run_many(
            [
                queue.commands.counts(),
                queue.commands.workers(),
                queue.commands.oldest_waiting_ms(),
                FlowCommands(queue.commands).flow_state(),  # flow control: limits holding back
            ]
        )
        paused = bool(counts.pop("paused", 0))
        metrics = await self.metrics([name], DEFAULT_RANGE)
        return {
            "name": name,
            "counts": counts,
            "paused": paused,
            "workers": [worker_info(w) for w in workers if w[2]],
            "oldest_waiting_ms": oldest,
            "metrics": metrics["summary"],
            "flow": flow.to_dict(),
        }
