"""The add of jobs under a dedup key (``conveyor.dedupe``): the same reply as a plain add, but
each deduplicated job is its own add_deduped.lua call (which places a job as add_job.lua does,
in its group when it has one: the two share includes/add.lua and includes/placement.lua). A
call's plain jobs still go together through add_job.lua, in order with the others, all in one
round trip; the plain add path itself is untouched (``QueueCommands.add`` comes here only when
some job has ``dedupe``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import NotReplicated
from ..flow_control import GroupFull
from ..job import Job, JobContext
from .flow import group_full
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
    runs = _runs(specs)
    for run in runs:
        first = run[0]
        if first.dedupe:
            mode, key, window_ms, key_ttl_ms = first.dedupe
            job = (first.job_id, first.name, first.data, first.opts, first.attempts,
                   first.priority, first.delay_ms, first.ttl_ms)  # fmt: skip
            args = (*job, mode, key, window_ms, key_ttl_ms, first.group)
            calls.append(commands._script("add_deduped", *args))
        else:
            calls.append(commands.add_job_call(run))
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
        ours = replies[len(head) : len(head) + len(calls)]
        jobs: list[Job | None] = []
        existing, found_at = [], []  # found_at: indexes of the jobs that existed
        refused: GroupFull | None = None
        refusals: list[GroupFull | None] = []  # job by job: the refusal of its own step
        for run, reply in zip(runs, ours, strict=True):
            if reply and reply[0] == Code.GROUP_FULL:  # flow control: this call added nothing
                step = group_full(str(reply[1]), int(reply[2]))
                refused = refused or step
                jobs += [None] * len(run)
                refusals += [step] * len(run)
                continue
            refusals += [None] * len(run)
            for k, spec in enumerate(run):
                job_id, code = str(reply[2 * k]), int(reply[2 * k + 1])
                if code != _ADDED:
                    existing.append(job_id)
                    found_at.append((len(jobs), code == _DEDUPLICATED))
                jobs.append(commands._added_job(job_id, spec, context))
        if refused is not None:
            for i, deduplicated in found_at:
                jobs[i].deduplicated = deduplicated  # type: ignore[union-attr]
            error = _partly_refused(refused, jobs, refusals)
            raise error from (refused if error is not refused else None)
        added = [job for job in jobs if job is not None]
        if not existing:
            return added

        def merge(replies: list[Any]) -> list[Job]:
            found = {job.id: job for job in commands._jobs(replies, existing, context)}
            out = list(added)
            for i, deduplicated in found_at:
                stored = found.get(added[i].id)
                if stored is not None:  # (gone meanwhile: the job as this add saw it)
                    stored = dataclasses.replace(stored, deduplicated=deduplicated)
                    out[i] = stored
                else:
                    added[i].deduplicated = deduplicated
            return out

        return Op(commands.get_jobs(existing, context).commands, merge)

    return Op((*head, *calls, *tail), parse)


def _partly_refused(
    refused: GroupFull, jobs: list[Job | None], refusals: list[GroupFull | None]
) -> GroupFull:
    """A call of several script calls is not one step: when one of them found its group full,
    the others' jobs were added. Their jobs ride on the error (``added``, None where refused),
    so no caller adds them again believing nothing was added, and so does each refused job's
    own refusal (``refusals``), which names its group."""
    done = sum(job is not None for job in jobs)
    if not done:
        return refused
    error = GroupFull(
        f"group {refused.group[:60]!r} is full: it may hold at most {refused.max_size} waiting "
        f"jobs (its max_size); {len(jobs) - done} of the {len(jobs)} jobs of this add were "
        "not added, the others were (see the error's `added`)",
        refused.group,
        refused.max_size,
    )
    error.added = jobs
    error.refusals = refusals
    return error
