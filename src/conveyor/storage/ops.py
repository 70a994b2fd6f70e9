"""Ops: Redis commands built and parsed without I/O, and the Ops of the server as a whole.

Every operation is an ``Op``: the commands to send in one round trip (a pipeline when there
are several) and a function that turns their replies into a value, or into a follow-up ``Op``
when the first replies decide what to read next. ``storage.redis`` executes Ops, blocking or
async, so ``Queue`` and ``SyncQueue`` share every line of logic except the ``await``. The Ops
of one queue are built by ``commands.QueueCommands``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from .keys import registry_key, revoked_session_key
from .resp import evalsha_head
from .scripts import Script, script

__all__ = [
    "Command",
    "Op",
    "ScriptCommand",
    "client_names",
    "config_get",
    "info",
    "ping",
    "queue_names",
    "read_event_streams",
    "registry_prefixes",
    "revoke_session",
    "server_time_ms",
    "session_revoked",
    "unblock_client",
    "wait_for_marker",
]

T = TypeVar("T")


# ScriptCommand and Op are built on every call: plain (not frozen) dataclasses, because a frozen
# one's __init__ costs about twice as much.
@dataclasses.dataclass(slots=True)
class ScriptCommand:
    script: Script
    keys: tuple[bytes, ...]
    args: tuple[Any, ...]
    #: The RESP encoding of "EVALSHA <sha> <numkeys> <keys...>": the same for every call of one
    #: script on one queue, so it is encoded once (see ``resp.pack_evalsha``).
    head: bytes

    def evalsha(self) -> tuple[Any, ...]:
        return ("EVALSHA", self.script.sha, len(self.keys), *self.keys, *self.args)

    def eval(self) -> tuple[Any, ...]:
        return ("EVAL", self.script.source, len(self.keys), *self.keys, *self.args)


Command = tuple[Any, ...] | ScriptCommand


@dataclasses.dataclass(slots=True)
class Op(Generic[T]):
    commands: tuple[Command, ...]
    parse: Callable[[list[Any]], T | Op[T]]


def first_reply(reply: list[Any]) -> Any:
    return reply[0]


def flat_pairs(reply: Any) -> list[tuple[Any, Any]]:
    """(member, score) pairs of a WITHSCORES reply, flat (RESP2) or nested (RESP3)."""
    items = list(reply or [])
    if items and isinstance(items[0], list | tuple):
        return [(a, b) for a, b in items]
    return list(zip(items[0::2], items[1::2], strict=True))


def queue_names(prefix: str) -> Op[list[str]]:
    """Every registered queue name under ``prefix``, sorted."""
    return Op((("SMEMBERS", registry_key(prefix)),), lambda r: sorted(str(x) for x in r[0]))


#: ``registry_prefixes`` asks SCAN for this many keys a round, for at most this many rounds, so
#: a look for other prefixes on a big database stays a bounded number of short commands.
PREFIX_SCAN_COUNT, PREFIX_SCAN_ROUNDS = 1000, 20


def registry_prefixes(
    count: int = PREFIX_SCAN_COUNT, rounds: int = PREFIX_SCAN_ROUNDS
) -> Op[list[str]]:
    """The prefixes that hold a queue registry (``registry_key``), found by SCAN: at most
    ``rounds`` SCAN calls of ``count`` keys each (the answer may miss some on a database with
    more keys than that), sorted."""
    suffix = registry_key("")
    found: set[str] = set()

    def scan(cursor: str, left: int) -> Op[list[str]]:
        command = ("SCAN", cursor, "MATCH", registry_key("*"), "COUNT", count, "TYPE", "set")

        def parse(r: list[Any]) -> list[str] | Op[list[str]]:
            next_cursor, keys = r[0]
            for key in keys:
                name = key.decode() if isinstance(key, bytes) else str(key)
                if name.endswith(suffix) and len(name) > len(suffix):
                    found.add(name[: -len(suffix)])
            next_cursor = next_cursor.decode() if isinstance(next_cursor, bytes) else next_cursor
            if str(next_cursor) == "0" or left <= 1:
                return sorted(found)
            return scan(str(next_cursor), left - 1)

        return Op((command,), parse)

    return scan("0", rounds)


def server_time_ms() -> Op[int]:
    """Redis server time in ms (the clock scripts use)."""
    return Op((("TIME",),), lambda r: int(r[0][0]) * 1000 + int(r[0][1]) // 1000)


def ping() -> Op[bool]:
    """PING: True when the server answers."""
    return Op((("PING",),), lambda r: bool(r[0]))


def config_get(parameter: str) -> Op[dict[str, Any]]:
    """CONFIG GET of one parameter: ``{parameter: value}`` (on a Cluster, one such mapping per
    node, keyed by node). Servers that disable CONFIG refuse it (``CommandRefused``)."""

    def parse(r: list[Any]) -> dict[str, Any]:
        reply = r[0]
        if isinstance(reply, dict):
            return dict(reply)
        items = list(reply or [])  # a flat [name, value, ...] reply
        return {str(k): v for k, v in zip(items[0::2], items[1::2], strict=True)}

    return Op((("CONFIG", "GET", parameter),), parse)


def info(section: str) -> Op[dict[str, Any]]:
    """INFO of one section, parsed (on a Cluster, one mapping per node, keyed by node)."""
    return Op((("INFO", section),), lambda r: dict(r[0] or {}))


def wait_for_marker(markers: Sequence[str], timeout: float) -> Op[bool]:
    """Block on the queues' marker keys (BZPOPMIN) for at most ``timeout`` seconds: True when a
    marker was popped (an add, a due delayed job, a resume), False when the time ran out."""
    return Op((("BZPOPMIN", *markers, timeout),), lambda r: r[0] is not None)


def read_event_streams(
    after: Mapping[str, str], count: int, block_ms: int
) -> Op[list[tuple[str, list[Any]]]]:
    """One blocking XREAD of several event streams (key -> the last id read): the
    (key, entries) of those that have new ones. The keys must share a node (not on Cluster)."""
    command = ("XREAD", "COUNT", count, "BLOCK", block_ms, "STREAMS", *after, *after.values())

    def parse(r: list[Any]) -> list[tuple[str, list[Any]]]:
        reply = r[0] or []
        if isinstance(reply, dict):  # RESP3 answers a map
            return [(str(k), list(v)) for k, v in reply.items()]
        return [(str(k), list(v)) for k, v in reply]

    return Op((command,), parse)


def unblock_client(client_id: int) -> Op[bool]:
    """CLIENT UNBLOCK: end another connection's blocking read as if it timed out; True when
    that connection was blocked."""
    return Op((("CLIENT", "UNBLOCK", client_id),), lambda r: r[0] == 1)


def client_names() -> Op[set[str]]:
    """The names (CLIENT SETNAME) of the server's client connections, from CLIENT LIST."""

    def parse(r: list[Any]) -> set[str]:
        reply = r[0]
        if isinstance(reply, bytes):
            reply = reply.decode(errors="replace")
        if isinstance(reply, str):  # one client a line, "id=1 addr=... name=... ..."
            return {
                field[5:]
                for line in reply.splitlines()
                for field in line.split(" ")
                if field.startswith("name=")
            }
        return {str(client.get("name", "")) for client in reply or []}  # redis-py's parsed form

    return Op((("CLIENT", "LIST", "TYPE", "normal"),), parse)


def revoke_session(prefix: str, session_id: str, ttl_ms: int) -> Op[None]:
    """Log a dashboard session out for every process (revoke_session.lua), for ``ttl_ms``:
    as long as its cookie could still be presented."""
    source = script("revoke_session", ())
    keys = (revoked_session_key(prefix, session_id).encode(),)
    command = ScriptCommand(source, keys, (max(ttl_ms, 1),), evalsha_head(source.sha, keys))
    return Op((command,), lambda r: None)


def session_revoked(prefix: str, session_id: str) -> Op[bool]:
    """Whether a dashboard session was logged out (by any process)."""
    key = revoked_session_key(prefix, session_id)
    return Op((("EXISTS", key),), lambda r: bool(r[0]))
