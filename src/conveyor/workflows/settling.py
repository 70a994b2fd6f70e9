"""Delivering what a queue owes elsewhere: the outcomes of flow children and batch jobs, the
adds of a flow whose producer stopped half-way, and batch callbacks.

Each debt is an entry of the queue's owed hash, written in the same script as the fact it
follows from (complete.lua and move_to_failed write "o:<job id>" with the job's outcome;
add_flow "a:<root id>"; settle_batch "c:<batch id>"), so no crash can lose it. Paying it is a
chain of idempotent script calls ending with the entry's removal: a worker pays what its own
acknowledgements owed right after them, and every worker pays whatever is left on its
queues from time to time (``Settler.sweep``), so a process killed between two calls leaves a
debt that the next one pays, never a stuck parent or batch, and never a callback twice
(its job id is derived from the batch id and the kind, and adding an existing id adds nothing).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson

from .. import serializer
from ..options import build_spec
from ..procedures import Procedure
from ..settings import Settings
from ..storage.commands import QueueCommands
from .adding import run_flow_calls
from .commands import WorkflowCommands, sha1

__all__ = ["KINDS", "callback_job_id", "settle"]

#: Batch callbacks, in the order they are added when several are owed at once.
KINDS = ("death", "success", "complete")
#: A flow's adds are made by a sweep only once this old (the producer makes them first).
ADDS_GRACE_SECONDS = 10.0


def callback_job_id(batch_id: str, kind: str) -> str:
    return f"batch:{batch_id}:{kind}"


def settle(
    settings: Settings, queue: str, fields: Sequence[str] | None, sweep_count: int = 500
) -> Procedure[int]:
    """Pay the debts ``fields`` of ``queue`` (a page of all there are, when None); returns
    how many entries were paid."""
    commands = WorkflowCommands(QueueCommands(settings, queue))
    if fields is None:
        owed = yield commands.scan_owed(sweep_count)
    elif fields:
        owed = yield commands.owed(fields)
    else:
        return 0
    batches: list[list[str]] = []
    parents: dict[str, list[list[str]]] = {}
    same_queue_done: list[list[str]] = []
    cross_done: list[list[str]] = []
    owing: list[str] = []
    skipped = 0
    for field, value in owed.items():
        kind, _, ident = field.partition(":")
        done = [field, sha1(value)]
        if kind == "c":
            owing.append(ident)
        elif kind == "k":  # a cancelled or removed parent: its children that have not run go
            by_queue: dict[str, list[str]] = {}
            for child in orjson.loads(value):
                child_queue, _, child_id = child.partition("|")
                by_queue.setdefault(child_queue, []).append(child_id)
            for child_queue, ids in by_queue.items():
                target = _commands(settings, child_queue)
                yield target.drop_children(ids)
                # their own children, if any, are owed on that queue now: remove them too
                yield from settle(settings, child_queue, [f"k:{i}" for i in ids])
            cross_done.append(done)
        elif kind == "a":
            adds = orjson.loads(value)
            if fields is None and time.time() - float(adds["t"]) < ADDS_GRACE_SECONDS:
                skipped += 1  # its producer is still at it, most likely
                continue
            yield from run_flow_calls(settings, adds["calls"], first=False)
            cross_done.append(done)
        elif kind == "o":
            outcome, result, wf = orjson.loads(value)
            if "b" in wf:
                batches.append([field, done[1], wf["b"], ident, outcome])
            elif "p" in wf:
                parent_queue, parent_id = wf["p"]
                item = [
                    parent_id,
                    f"{queue}|{ident}",
                    outcome,
                    orjson.dumps(result).decode(),
                    wf.get("f", "fail"),
                ]
                parents.setdefault(parent_queue, []).append(item)
                (same_queue_done if parent_queue == queue else cross_done).append(done)
            else:
                cross_done.append(done)
    if batches:
        owing.extend((yield commands.settle_batch(batches)))
    for parent_queue, items in parents.items():
        target = commands if parent_queue == queue else _commands(settings, parent_queue)
        here = same_queue_done if parent_queue == queue else []
        yield target.release_parent(items, here)
        # a parent failed by its child owes its own outcome in turn: pay that now too
        yield from settle(settings, parent_queue, [f"o:{item[0]}" for item in items])
    if cross_done:
        yield commands.owed_done(cross_done)
    for batch_id in dict.fromkeys(owing):
        yield from add_callbacks(settings, commands, batch_id)
    return len(owed) - skipped


def _commands(settings: Settings, queue: str) -> WorkflowCommands:
    return WorkflowCommands(QueueCommands(settings, queue))


def add_callbacks(settings: Settings, commands: WorkflowCommands, batch_id: str) -> Procedure[None]:
    """Add the batch's owed callbacks, then mark each added (a crash between the two adds
    nothing twice: the callback's job id is fixed)."""
    names = [f"cb:{k}" for k in KINDS] + [f"fire:{k}" for k in KINDS]
    fields = yield commands.batch_fields(batch_id, names)
    specs, fires = fields[: len(KINDS)], fields[len(KINDS) :]
    if not any(fires):  # paid already (or the batch expired): only the entry is left
        yield commands.owed_done([[f"c:{batch_id}", sha1("1")]])
        return
    for kind, spec, fire in zip(KINDS, specs, fires, strict=True):
        if not fire:
            continue
        if spec:
            queue, name, data, options = orjson.loads(spec)
            payload: Any = {"data": serializer.decode(data), "batch": orjson.loads(fire)}
            job_id = callback_job_id(batch_id, kind)
            add_spec = build_spec(settings, name, payload, **options, job_id=job_id)
            target = QueueCommands(settings, queue)
            yield target.register()
            yield target.add([add_spec], None)
            ref = f"{queue}|{job_id}"
        else:
            ref = ""
        yield commands.callback_added(batch_id, kind, ref)
