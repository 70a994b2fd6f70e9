"""The add of jobs under a dedup key (``conveyor.dedupe``): the same reply as a plain add, but
each deduplicated job is its own add_deduped.lua call. A call's plain jobs still go together
through add_job.lua, in order with the others, all in one round trip; the plain add path itself
is untouched (``QueueCommands.add`` comes here only when some job has ``dedupe``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import NotReplicated
from ..job import Job, JobContext
from .ops import Op
from .protocol import Code

if TYPE_CHECKING:
    from .commands import AddSpec, Command, QueueCommands

__all__ = ["dedupe_add"]

_ADDED, _DEDUPLICATED = int(Code.OK), int(Code.DEDUPLICATED)


def _runs(specs: Sequence[AddSpec]) -> list[list[AddSpec]]:
    """The specs in order, as runs: each deduplicated job alone, plain ones together."""
    runs: list[list[AddSpec]] = []
    for spec in specs:
        if spec.dedupe or not runs or runs[-1][0].dedupe:
            runs.append([spec])
        else:
            runs[-1].append(spec)
    return runs


def dedupe_add(
    commands: QueueCommands,
    specs: Sequence[AddSpec],
    context: JobContext | None,
    register: bool,
) -> Op[list[Job]]:
    calls: list[Command] = []
    for run in _runs(specs):
        first = run[0]
        if first.dedupe:
            mode, key, window_ms, key_ttl_ms = first.dedupe
            base = first.args()
            if len(base) == 3:  # the short form leaves the defaults out
                base = (*base, "{}", 1, 0, 0, 0)
            calls.append(commands._script("add_deduped", *base, mode, key, window_ms, key_ttl_ms))
        elif len(run) == 1:
            calls.append(commands._script("add_job", *first.args()))
        else:
            batch = orjson.dumps([s.args() for s in run])
            groups = ("groups",) if any(s.group for s in run) else ()  # max sizes checked
            calls.append(commands._script("add_job", batch, *groups))
    head: tuple[Command, ...] = (commands._registration(),) if register else ()
    replicas = commands.settings.wait_replicas
    timeout_ms = int(commands.settings.wait_replicas_timeout_seconds * 1000)
    tail: tuple[Command, ...] = (("WAIT", replicas, timeout_ms),) if replicas else ()

    def parse(replies: list[Any]) -> list[Job] | Op[list[Job]]:
        if replicas and int(replies[-1]) < replicas:
            raise NotReplicated(
                f"an add was stored on the master but only {replies[-1]} of {replicas} "
                f"replicas confirmed it within {timeout_ms} ms; a failover now could lose it"
            )
        flat = [x for reply in replies[len(head) : len(head) + len(calls)] for x in reply]
        jobs, existing, found_at = [], [], []  # found_at: indexes of the jobs that existed
        for i, spec in enumerate(specs):
            job_id, code = str(flat[2 * i]), int(flat[2 * i + 1])
            if code != _ADDED:
                existing.append(job_id)
                found_at.append((i, code == _DEDUPLICATED))
            jobs.append(commands._added_job(job_id, spec, context))
        if not existing:
            return jobs

        def merge(replies: list[Any]) -> list[Job]:
            found = {job.id: job for job in commands._jobs(replies, existing, context)}
            out = list(jobs)
            for i, deduplicated in found_at:
                stored = found.get(jobs[i].id)
                if stored is not None:  # (gone meanwhile: the job as this add saw it)
                    stored = dataclasses.replace(stored, deduplicated=deduplicated)
                    out[i] = stored
                else:
                    jobs[i].deduplicated = deduplicated
            return out

        return Op(commands.get_jobs(existing, context).commands, merge)

    return Op((*head, *calls, *tail), parse)
