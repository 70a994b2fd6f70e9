"""The worker side: ``conveyor worker tasks:queue`` (from this folder). No Flask needed here."""

from __future__ import annotations

from conveyor import Job, Queue

queue = Queue("email")


@queue.handler("welcome")
def welcome(job: Job) -> dict[str, str]:  # sync handlers run in the worker's thread pool
    return {"sent_to": job.data["to"]}
