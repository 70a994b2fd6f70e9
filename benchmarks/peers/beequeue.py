"""bee-queue 2 for Node (npm ``bee-queue``): ``node/libs/beequeue.js``.

Keeps every finished job (its data in the jobs hash, its id in the succeeded or failed set:
``removeOnSuccess`` / ``removeOnFailure`` default to false, ``storeJobs`` to true). A fetched
job moves to the active list; a stalled one is found by ``checkStalledJobs``, which
``process()`` runs once at start-up (and again only when the application schedules it).
No realistic mix: priorities do not exist, delayed jobs need ``activateDelayedJobs``.
"""

from __future__ import annotations

from harness.foreign import Foreign

DIST = "bee-queue (npm)"
FOREIGN = Foreign("beequeue", "node")
SETTINGS = (
    "Node: queue.process(200) per process; Queue.saveAll chunks of 1000; 100 adds in flight "
    "for (a2); the producer's Queue with isWorker: false, as bee-queue documents for producers"
)
RETENTION = (
    "keeps every job (data in the jobs hash, id in succeeded / failed); acknowledges partly: "
    "stalled jobs are found by checkStalledJobs, run once when a worker starts"
)
SCENARIOS = ("enqueue", "enqueue_concurrent", "bulk", "drain_noop", "drain_sleep", "latency")
