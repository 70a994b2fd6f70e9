"""The Ops of workflows on one queue: script calls (``add_flow``, ``add_batch``,
``settle_batch``, ``release_parent``, ``callback_added``, ``owed_done``) and reads."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from ..storage.commands import Op, QueueCommands

__all__ = ["WorkflowCommands", "sha1"]

#: An owed entry as the scripts take it back: [field, sha1 of its value].
Done = list[str]


def sha1(value: str) -> str:
    return hashlib.sha1(value.encode()).hexdigest()


def _json(value: Any) -> bytes:
    return orjson.dumps(value)


class WorkflowCommands:
    """Builds the workflow Ops of one queue (pure, like ``QueueCommands``)."""

    def __init__(self, commands: QueueCommands) -> None:
        self.base = commands
        self.queue = commands.queue
        self.keys = commands.keys

    def _op(self, name: str, *args: Any, parse: Any) -> Op[Any]:
        return self.base._op(name, *args, parse=parse)

    # -- state changes -------------------------------------------------------------------------

    def add_flow(self, jobs: Sequence[dict[str, Any]], first: bool, owed: str) -> Op[Any]:
        """Jobs added, or the id that exists when ``first`` and a job of the call exists."""

        def parse(r: list[Any]) -> Any:
            return int(r[1]) if int(r[0]) == 1 else str(r[1])

        return self._op(
            "add_flow", _json(list(jobs)), "first" if first else "more", owed, parse=parse
        )

    def add_batch(
        self, batch_id: str, grow: bool, callbacks: dict[str, Any], jobs: Sequence[Any]
    ) -> Op[list[Any]]:
        """[code, ids...]."""
        return self._op(
            "add_batch",
            batch_id,
            "grow" if grow else "new",
            _json(callbacks),
            _json(list(jobs)),
            parse=list,
        )

    def settle_batch(self, items: Sequence[list[str]]) -> Op[list[str]]:
        return self._op("settle_batch", _json(list(items)), parse=list)

    def release_parent(self, items: Sequence[list[str]], done: Sequence[Done]) -> Op[int]:
        return self._op("release_parent", _json(list(items)), _json(list(done)), parse=int)

    def callback_added(self, batch_id: str, kind: str, ref: str) -> Op[int]:
        return self._op("callback_added", batch_id, kind, ref, parse=int)

    def drop_children(self, ids: Sequence[str]) -> Op[int]:
        return self._op("drop_children", _json(list(ids)), parse=int)

    def owed_done(self, done: Sequence[Done]) -> Op[int]:
        return self._op("owed_done", _json(list(done)), parse=int)

    # -- reads ---------------------------------------------------------------------------------

    def owed(self, fields: Sequence[str]) -> Op[dict[str, str]]:
        def parse(r: list[Any]) -> dict[str, str]:
            return {f: v for f, v in zip(fields, r[0], strict=True) if v is not None}

        return Op((("HMGET", self.keys.owed, *fields),), parse)

    def scan_owed(self, count: int) -> Op[dict[str, str]]:
        """Some of the owed entries (a first page: entries done are deleted, so the next page
        comes to the front)."""
        return Op(
            (("HSCAN", self.keys.owed, 0, "COUNT", count),),
            lambda r: _pairs(r[0][1]),
        )

    def existing(self, ids: Sequence[str]) -> Op[list[str]]:
        """Those of ``ids`` that name a job of this queue."""

        def parse(r: list[Any]) -> list[str]:
            return [job_id for job_id, found in zip(ids, r, strict=True) if int(found)]

        return Op(tuple(("EXISTS", self.keys.job(i)) for i in ids), parse)

    def batch_fields(self, batch_id: str, fields: Sequence[str]) -> Op[list[str | None]]:
        return Op((("HMGET", self.keys.batch(batch_id), *fields),), lambda r: list(r[0]))

    def job_fields(self, job_id: str, fields: Sequence[str]) -> Op[list[str | None]]:
        return Op((("HMGET", self.keys.job(job_id), *fields),), lambda r: list(r[0]))

    def children_fields(self, job_id: str) -> Op[dict[str, str]]:
        """The parent's fields about its children: "r:<ref>" results, "x:<ref>" failures."""
        return Op((("HGETALL", self.keys.job(job_id)),), lambda r: _pairs(r[0]))


def _pairs(reply: Any) -> dict[str, str]:
    if isinstance(reply, dict):
        return {str(k): str(v) for k, v in reply.items()}
    items = list(reply or [])
    return dict(zip(items[0::2], items[1::2], strict=True))
