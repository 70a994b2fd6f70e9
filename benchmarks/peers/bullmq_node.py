"""BullMQ for Node (npm ``bullmq`` 6), the library Conveyor started from: ``node/libs/bullmq.js``.

Its producer and workers are Node processes (``harness/foreign.py``). After a job it keeps the
job's hash and its id in the completed (or failed) sorted set: ``removeOnComplete`` and
``removeOnFail`` default to keeping every job. A fetched job is in the active list under a lock
the worker renews; a stalled job goes back to wait, so it acknowledges.
"""

from __future__ import annotations

from harness.foreign import Foreign

DIST = "bullmq (npm)"
FOREIGN = Foreign("bullmq", "node")
SETTINGS = (
    "Node: Worker per process, concurrency=200; Queue.addBulk chunks of 1000; 100 adds in "
    "flight for (a2); (f) priority 0-3 (0 = none), attempts=2, no backoff, delay in ms"
)
RETENTION = (
    "keeps every job (hash + id in completed / failed); acknowledges: active list, a lock the "
    "worker renews, stalled jobs go back to wait"
)
SCENARIOS = (
    "enqueue",
    "enqueue_concurrent",
    "bulk",
    "drain_noop",
    "drain_sleep",
    "latency",
    "drain_mix",
)
