"""Bull 4 for Node (npm ``bull``), BullMQ's predecessor: ``node/libs/bull.js``.

Keeps every finished job (hash + id in the completed or failed set: ``removeOnComplete`` /
``removeOnFail`` default to false). A fetched job sits in the active list under a lock; the
stalled-job check moves it back to wait, so it acknowledges.
"""

from __future__ import annotations

from harness.foreign import Foreign

DIST = "bull (npm)"
FOREIGN = Foreign("bull", "node")
SETTINGS = (
    "Node: queue.process('*', 200) per process; Queue.addBulk chunks of 1000; 100 adds in "
    "flight for (a2); (f) priority 0-3 (0 = none), attempts=2, no backoff, delay in ms"
)
RETENTION = (
    "keeps every job (hash + id in completed / failed); acknowledges: a lock and the "
    "stalled-job check"
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
