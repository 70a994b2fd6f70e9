"""A worker process for the flow-control tests, configured by environment variables.

Its ``t`` jobs write ``start <id> <group> <epoch s> <worker>`` and ``end ...`` lines to the
ledger file ``CT_LEDGER_FILE`` (outside Redis; one short append each, so lines of several
processes do not mix), and sleep ``data["sleep"]`` seconds in between (first start only when
``data["once"]``). Variables: ``CT_URL``, ``CT_PREFIX``, ``CT_QUEUE`` (default ``jobs``),
``CT_WORKER``, ``CT_CONCURRENCY`` (default 50), ``CT_LIVENESS`` (default 2 s).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

from conveyor import Job, Queue, Worker

NAME = os.environ.get("CT_WORKER", "worker")
LEDGER = os.environ["CT_LEDGER_FILE"]
queue = Queue(
    os.environ.get("CT_QUEUE", "jobs"),
    url=os.environ["CT_URL"],
    prefix=os.environ["CT_PREFIX"],
    liveness_seconds=float(os.environ.get("CT_LIVENESS", "2")),
)
_fd = os.open(LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def note(kind: str, job: Job) -> None:
    os.write(_fd, f"{kind} {job.id} {job.group or '-'} {time.time():.6f} {NAME}\n".encode())


@queue.handler("t")
async def t(job: Job) -> None:
    note("start", job)
    data = job.data if isinstance(job.data, dict) else {}
    sleep = float(data.get("sleep", 0))
    if sleep and not (data.get("once") and job.stalls):
        await asyncio.sleep(sleep)
    note("end", job)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format=f"{NAME} %(levelname)s %(message)s")
    worker = Worker(queue, concurrency=int(os.environ.get("CT_CONCURRENCY", "50")))
    asyncio.run(worker.run())
