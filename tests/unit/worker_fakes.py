"""In-memory stand-ins for the interfaces the worker's parts talk through (``worker.interfaces``):
script calls are answered by a function per script, and the answer goes through the Op's own
parser, so the reply shapes of the real scripts are used."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from conveyor.settings import Settings
from conveyor.storage.commands import QueueCommands
from conveyor.storage.ops import Op, ScriptCommand

#: A script's raw reply for its arguments.
Script = Callable[..., Any]


def queue(name: str = "q", **settings: Any) -> QueueCommands:
    return QueueCommands(Settings(url="redis://127.0.0.1:1/0", **settings), name)


class FakeRedis:
    """Answers script calls with ``scripts[name](*args)`` and plain commands with
    ``commands[NAME](*args)``; records every call as (name, args)."""

    def __init__(self, **scripts: Script) -> None:
        self.scripts = scripts
        self.commands: dict[str, Script] = {}
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.round_trips = 0
        #: Raised by the next run_many, when set.
        self.fail_next: BaseException | None = None
        self.direct: Any = None
        self.is_cluster = False
        #: The base key of the queue whose script is being answered (KEYS[1]).
        self.queue = ""
        #: Seconds a BZPOPMIN blocks before its answer (None: its whole timeout).
        self.block_for: float | None = None

    def _reply(self, command: Any) -> Any:
        if isinstance(command, ScriptCommand):
            name, args = command.script.name, command.args
            self.queue = command.keys[0].decode()
            self.calls.append((name, args))
            return self.scripts[name](*args)
        name, args = command[0], tuple(command[1:])
        self.calls.append((name, args))
        return self.commands[name](*args)

    def _parse(self, op: Op[Any]) -> Any:
        value = op.parse([self._reply(c) for c in op.commands])
        return self._parse(value) if isinstance(value, Op) else value

    async def run(self, op: Op[Any]) -> Any:
        return (await self.run_many([op]))[0]

    async def run_many(self, ops: Sequence[Op[Any]]) -> list[Any]:
        first = ops[0].commands[0] if ops and ops[0].commands else None
        if isinstance(first, tuple) and first[0] == "BZPOPMIN":
            await asyncio.sleep(first[-1] if self.block_for is None else self.block_for)
        else:
            await asyncio.sleep(0)
        self.round_trips += 1
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        return [self._parse(op) for op in ops]

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]
