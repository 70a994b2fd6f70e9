"""Kue 0.11 for Node (npm ``kue``): ``node/libs/kue.js``.

Keeps every finished job (its hash, its id in the complete or failed sorted sets:
``removeOnComplete`` defaults to false). A fetched job is moved to the active set with no lease:
if its worker dies it stays active until someone requeues it by hand, so it does not
acknowledge in the sense used here. No bulk API; no realistic mix (no retry without a delay
promoter pass, and priorities are names).
"""

from __future__ import annotations

from harness.foreign import Foreign

DIST = "kue (npm)"
FOREIGN = Foreign("kue", "node")
SETTINGS = (
    "Node: queue.process(name, 200) per process; no bulk API (jobs saved one by one); "
    "100 saves in flight for (a2)"
)
RETENTION = (
    "keeps every job (hash + ids in per-state sorted sets); does not acknowledge: an active "
    "job of a dead worker stays active"
)
SCENARIOS = ("enqueue", "enqueue_concurrent", "drain_noop", "drain_sleep", "latency")
