"""FastAPI + Conveyor: ``uvicorn main:app`` next to ``conveyor worker tasks:queue``.

The lifespan opens (and checks) the Redis connection at startup and closes it at shutdown;
``conveyor.dependency()`` hands the queue to endpoints; the dashboard is mounted at /queues.
"""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel

from conveyor import Queue
from conveyor.integrations.fastapi import Conveyor

conveyor = Conveyor("email")  # REDIS_URL / CONVEYOR_PREFIX from the environment
app = FastAPI(lifespan=conveyor.lifespan)
with contextlib.suppress(ImportError):  # the dashboard comes with conveyor-queue[web]
    app.mount("/queues", conveyor.dashboard())

EmailQueue = Annotated[Queue, Depends(conveyor.dependency("email"))]


class Signup(BaseModel):
    email: str


@app.post("/signup", status_code=201)
async def signup(body: Signup, queue: EmailQueue) -> dict[str, str]:
    job = await queue.add("welcome", {"to": body.email}, attempts=3)
    return {"job": job.id}


@app.get("/jobs/{job_id}")
async def job_status(job_id: str, queue: EmailQueue) -> dict[str, object]:
    job = await queue.get_job(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return {"id": job.id, "state": job.state.value, "result": job.result}
