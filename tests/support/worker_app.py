"""A worker process for fault tests, configured by environment variables.

``record`` jobs note each start and each finish in Redis lists of the test's own (outside the
queue's keys), so a test can count exactly how often each job ran and on which worker. A job's
``sleep`` applies to its first start only, so a redelivered job finishes quickly.

Deterministic crash points (``os._exit(137)``, i.e. what ``kill -9`` leaves behind), on a job's
first start only, chosen per job with ``data["crash"]`` or for every job with ``CT_CRASH``:

* ``after_fetch``: the handler is entered (the job is leased and recorded as started) and the
  process dies before doing anything else;
* ``before_ack``: the handler has done its work (recorded as ran) and returned its result in
  spirit, but the process dies before the worker acknowledges it.

``block_loop`` and ``sleep_sync`` jobs hold their worker in ways that must not make it look
dead: the first blocks the event loop (``time.sleep`` in an async handler), the second sleeps
in a worker thread; each appends ``started <id> <worker>`` and ``ran <id> <worker>`` lines to
the file ``CT_LEDGER_FILE`` (outside Redis), so a test counts every run.

Other environment variables: ``CT_URL``, ``CT_PREFIX``, ``CT_WORKER`` (name in the ledger),
``CT_QUEUE`` (default ``jobs``), ``CT_MORE_QUEUES`` (comma-separated names of more queues this
worker serves with the same handlers and settings), ``CT_LEASE``, ``CT_LIVENESS``,
``CT_MAX_STALLS``, ``CT_GRACE``, ``CT_CONCURRENCY``, ``CT_RECORD_URL`` (where the ledger lists
live; default ``CT_URL``, which must then be a plain ``redis://`` URL).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

import redis.asyncio as aioredis

from conveyor import Job, Queue, Worker

URL = os.environ["CT_URL"]
PREFIX = os.environ["CT_PREFIX"]
NAME = os.environ.get("CT_WORKER", "worker")
CRASH = os.environ.get("CT_CRASH", "")
CRASH_EXIT_CODE = 137

queue = Queue(
    os.environ.get("CT_QUEUE", "jobs"),
    url=URL,
    prefix=PREFIX,
    lease_seconds=float(os.environ.get("CT_LEASE", "30")),
    liveness_seconds=float(os.environ.get("CT_LIVENESS", "4")),
    max_stalls=int(os.environ.get("CT_MAX_STALLS", "2")),
    shutdown_grace_seconds=float(os.environ.get("CT_GRACE", "30")),
    socket_timeout_seconds=float(os.environ.get("CT_SOCKET_TIMEOUT", "10")),
)
recorder = aioredis.Redis.from_url(os.environ.get("CT_RECORD_URL", URL), decode_responses=True)


def _crash_point(job: Job) -> str:
    return str((job.data or {}).get("crash", CRASH)) if isinstance(job.data, dict) else CRASH


@queue.handler("record")
async def record(job: Job) -> dict[str, str]:
    starts = await recorder.incr(f"{PREFIX}:starts:{job.id}")
    await recorder.rpush(f"{PREFIX}:started", f"{job.id}:{NAME}")
    crash = _crash_point(job) if starts == 1 else ""
    if crash == "after_fetch":
        os._exit(CRASH_EXIT_CODE)
    sleep = (job.data or {}).get("sleep", 0)
    if sleep and starts == 1:
        await asyncio.sleep(sleep)
    await recorder.rpush(f"{PREFIX}:ran", f"{job.id}:{NAME}")
    if crash == "before_ack":
        os._exit(CRASH_EXIT_CODE)
    return {"worker": NAME}


def _note(kind: str, job: Job) -> None:
    with open(os.environ["CT_LEDGER_FILE"], "a") as ledger:
        ledger.write(f"{kind} {job.id} {NAME}\n")


@queue.handler("block_loop")
async def block_loop(job: Job) -> None:
    """Blocks the whole event loop for ``data["seconds"]`` (a CPU-bound async handler)."""
    _note("started", job)
    time.sleep(job.data["seconds"])  # noqa: ASYNC251 - blocking the loop is the point
    _note("ran", job)


@queue.handler("sleep_sync")
def sleep_sync(job: Job) -> None:
    """A sync handler running ``data["seconds"]`` in a worker thread."""
    _note("started", job)
    time.sleep(job.data["seconds"])
    _note("ran", job)


@queue.handler("exit")
def exit_process(job: Job) -> None:
    """A poison job: takes its whole worker process down, on every delivery."""
    os._exit(3)


@queue.handler("spin")
def spin(job: Job) -> None:
    """A sync handler that never yields and never returns (CPU-bound, in a worker thread)."""
    while True:
        time.sleep(0)  # an endless loop; sleep(0) only keeps the interpreter responsive


def main() -> None:
    logging.basicConfig(level=logging.INFO, format=f"{NAME} %(levelname)s %(message)s")
    more = [name for name in os.environ.get("CT_MORE_QUEUES", "").split(",") if name]
    queues = [queue] + [Queue(name, settings=queue.settings) for name in more]
    worker = Worker(queues, concurrency=int(os.environ.get("CT_CONCURRENCY", "10")))
    asyncio.run(worker.run())
