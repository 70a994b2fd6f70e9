"""The worker side: ``conveyor worker tasks:queue`` (from this folder)."""

from __future__ import annotations

from conveyor import Job, Queue

queue = Queue("email")


@queue.handler("welcome")
async def welcome(job: Job) -> dict[str, str]:
    await job.log(f"sending the welcome email to {job.data['to']}")
    return {"sent_to": job.data["to"]}
