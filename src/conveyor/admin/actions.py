"""Steering jobs: add, retry, promote, remove, cancel, one job or many, and the sweeping
retry-all and clean (in chunks, with an optional progress callback)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import ConfigurationError, InvalidTransition, JobNotFound
from ..job import Job
from ..procedures import Progress, check_code, clean, requeue_all
from ..storage.commands import Op, QueueCommands
from ..storage.protocol import Code
from .discovery import QueueDiscovery

__all__ = ["BULK_ACTIONS", "BULK_CHUNK", "JobActions"]

BULK_ACTIONS = ("retry", "remove", "promote", "cancel")
#: Ids per script call in ``Admin.bulk``.
BULK_CHUNK = 500
#: The multi-id Op of each bulk action, and the state it expects a job to be in.
_MULTI_ID_OPS: dict[str, tuple[Callable[[QueueCommands, Sequence[str]], Op[list[int]]], str]] = {
    "retry": (QueueCommands.retry, "failed"),
    "remove": (QueueCommands.remove, "idle"),
    "promote": (QueueCommands.promote, "delayed"),
}


class JobActions(QueueDiscovery):
    """Every change goes through a Lua script, by way of the Queue API and its procedures."""

    async def add(self, name: str, job_name: str, data: Any, options: Mapping[str, Any]) -> Job:
        jobs = await self.queue(name).add_bulk([{"name": job_name, "data": data, **options}])
        return jobs[0]

    async def cancel(self, name: str, job_id: str) -> str:
        """Cancel a job (see ``Queue.cancel``); returns the state it had."""
        return (await self.queue(name).cancel(job_id)).value

    async def act(self, name: str, action: str, job_id: str) -> None:
        queue = self.queue(name)
        if action == "retry":
            await queue.retry(job_id)
        elif action == "promote":
            await queue.promote(job_id)
        elif action == "remove":
            await queue.remove(job_id)
        elif action == "cancel":
            await self.cancel(name, job_id)
        else:
            raise ConfigurationError(f"unknown action {action!r}; use one of {BULK_ACTIONS}")

    async def bulk(self, name: str, action: str, ids: Sequence[str]) -> dict[str, Any]:
        """Apply ``action`` to each id; per-id outcome (``ok`` or the error code/message).

        retry, remove and promote go out ``BULK_CHUNK`` ids per script call (one round trip
        per chunk); cancel goes per id (``Queue.cancel``). A repeated id is acted on once."""
        if action not in BULK_ACTIONS:
            raise ConfigurationError(f"unknown action {action!r}; use one of {BULK_ACTIONS}")
        unique = list(dict.fromkeys(ids))
        results: dict[str, Any] = {}
        if action == "cancel":
            for job_id in unique:
                try:
                    await self.cancel(name, job_id)
                except (JobNotFound, InvalidTransition) as exc:
                    results[job_id] = _failure(exc)
                else:
                    results[job_id] = {"ok": True}
        else:
            commands = self._commands(name)
            build, expected = _MULTI_ID_OPS[action]
            for start in range(0, len(unique), BULK_CHUNK):
                chunk = unique[start : start + BULK_CHUNK]
                codes = await self.redis.run(build(commands, chunk))
                for job_id, code in zip(chunk, codes, strict=True):
                    results[job_id] = _bulk_result(code, job_id, action, expected)
        done = sum(1 for result in results.values() if result["ok"])
        return {"action": action, "done": done, "results": results}

    async def retry_all(
        self, name: str, state: str = "failed", progress: Progress | None = None
    ) -> int:
        """Retry every failed job (or run every delayed one now); returns how many.
        ``progress`` is told the running total after each chunk."""
        queue = await self.require(name)
        if state == "failed":
            return await queue.run(requeue_all(queue.commands.retry_all, progress))
        if state == "delayed":
            return await queue.run(requeue_all(queue.commands.promote_all, progress))
        raise InvalidTransition(f"retry-all works on failed (or delayed) jobs, not {state!r}")

    async def clean(
        self,
        name: str,
        state: str,
        older_than: float = 0.0,
        limit: int | None = None,
        progress: Progress | None = None,
    ) -> int:
        """Delete jobs in ``state`` older than ``older_than`` seconds, at most ``limit`` of them
        (see ``Queue.clean``); ``progress`` is told the running total after each chunk."""
        queue = await self.require(name)
        return await queue.run(clean(queue.commands, state, older_than, limit, progress))


def _failure(exc: JobNotFound | InvalidTransition) -> dict[str, Any]:
    # Two codes only, whatever the subclass: a caller sorts the ids of a bulk action into
    # missing ones and ones in the wrong state for it (running included).
    code = JobNotFound.code if isinstance(exc, JobNotFound) else InvalidTransition.code
    return {"ok": False, "code": code, "message": str(exc)}


def _bulk_result(code: int, job_id: str, action: str, expected: str) -> dict[str, Any]:
    """A multi-id script's per-id code (ok, not found, active, wrong state) as a result."""
    if code == Code.OK:
        return {"ok": True}
    if code not in (Code.NOT_FOUND, Code.IS_ACTIVE, Code.WRONG_STATE):
        return {"ok": False, "code": "error", "message": f"unexpected reply {code} for {job_id}"}
    try:
        check_code(code, job_id, action, expected)
    except (JobNotFound, InvalidTransition) as exc:
        return _failure(exc)
    raise AssertionError(f"check_code accepted code {code}")
