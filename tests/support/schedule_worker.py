"""A worker process for the job-scheduler fault tests, configured by environment variables.

``tick`` jobs append ``ran <job id> <worker>`` to the file ``CT_LEDGER_FILE`` (outside Redis;
one short O_APPEND write a line, so lines from several processes never interleave), so a test
counts the runs of every tick however the workers die.

Environment: ``CT_URL``, ``CT_PREFIX``, ``CT_WORKER`` (name in the ledger), ``CT_QUEUE``
(default ``ticks``), ``CT_LEASE``, ``CT_LIVENESS``.
"""

from __future__ import annotations

import asyncio
import logging
import os

from conveyor import Job, Queue, Worker

NAME = os.environ.get("CT_WORKER", "worker")
LEDGER = os.environ["CT_LEDGER_FILE"]

queue = Queue(
    os.environ.get("CT_QUEUE", "ticks"),
    url=os.environ["CT_URL"],
    prefix=os.environ["CT_PREFIX"],
    lease_seconds=float(os.environ.get("CT_LEASE", "30")),
    liveness_seconds=float(os.environ.get("CT_LIVENESS", "4")),
)


@queue.handler("tick")
def tick(job: Job) -> None:
    fd = os.open(LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"ran {job.id} {NAME}\n".encode())
    finally:
        os.close(fd)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format=f"{NAME} %(levelname)s %(message)s")
    worker = Worker(queue, concurrency=4, allow_evicting_redis=True)
    asyncio.run(worker.run())
