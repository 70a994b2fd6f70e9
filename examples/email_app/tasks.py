"""The email worker of the demo: what a job handler looks like.

Run it on its own with ``conveyor worker tasks:queue`` (from this folder). The handler
pretends to talk to an SMTP server for about two seconds, reports progress and log lines, and
fails now and then (``EMAIL_FAILURE_RATE``, default 0.25) so you can watch retries with
exponential backoff in the dashboard.
"""

from __future__ import annotations

import asyncio
import os
import random

from conveyor import Backoff, Job, Queue

#: Reads REDIS_URL / CONVEYOR_PREFIX from the environment, like every Conveyor queue.
queue = Queue("email")

#: The options every email job gets: 5 attempts, retried after 1 s, 2 s, 4 s, 8 s.
EMAIL_OPTIONS = {"attempts": 5, "backoff": Backoff.exponential(1.0)}


class SmtpTemporaryError(Exception):
    """What a flaky mail server does to you."""


@queue.handler("email")
async def send_email(job: Job) -> dict[str, object]:
    to = job.data["to"]
    seconds = float(os.environ.get("EMAIL_SECONDS", "2.0"))
    failure_rate = float(os.environ.get("EMAIL_FAILURE_RATE", "0.25"))
    steps = ["connecting to smtp.example.com", "saying EHLO", "sending the message", "done"]

    await job.log(f"attempt {job.attempt} of {job.attempts}: sending {job.data['title']!r} to {to}")
    for number, step in enumerate(steps, start=1):
        await asyncio.sleep(seconds / len(steps))
        if number == 2 and random.random() < failure_rate:
            await job.log("the server said 421: try again later")
            raise SmtpTemporaryError("421 service not available, try again later")
        await job.log(step)
        await job.update_progress(number * 100 // len(steps))
    return {"delivered_to": to, "message_id": f"<{job.id}@conveyor.demo>"}
