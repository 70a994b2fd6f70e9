"""Flow control's Ops (rate limits, groups): the script calls that change it and the reads
behind ``Queue.groups()``. Keys: ``keys.QueueKeys`` (flow control part); the scripts are
set_rate_limit, set_group_defaults, set_group, pause_group and rate_limited."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..flow_control import FlowState, GroupFull, GroupInfo, RateLimit
from .ops import Op, flat_pairs
from .protocol import Code

if TYPE_CHECKING:
    from .commands import QueueCommands

__all__ = ["FlowCommands", "group_full"]

_GROUP_FIELDS = ("active", "paused", "hold", "conc", "rate_n", "rate_ms", "weight", "max")
_OVERRIDES = {"conc": "concurrency", "rate_n": "rate_limit", "weight": "weight", "max": "max_size"}


def group_full(group: str, max_size: int) -> GroupFull:
    return GroupFull(
        f"group {group[:60]!r} is full: it may hold at most {max_size} waiting jobs "
        "(its max_size); nothing was added",
        group,
        max_size,
    )


def _int(value: Any) -> int:
    return int(value) if value not in (None, "") else 0


def _group(name: str, waiting: int, fields: dict[str, Any], defaults: dict[str, Any]) -> GroupInfo:
    def setting(field: str) -> Any:
        value = fields.get(field)
        return value if value is not None else defaults.get("d_" + field)

    concurrency = _int(setting("conc"))
    max_size = _int(setting("max"))
    if "rate_n" in fields:
        rate = RateLimit.from_stored(fields.get("rate_n"), fields.get("rate_ms"))
    else:
        rate = RateLimit.from_stored(defaults.get("d_rate_n"), defaults.get("d_rate_ms"))
    hold = _int(fields.get("hold"))
    return GroupInfo(
        name=name,
        waiting=waiting,
        active=_int(fields.get("active")),
        paused=fields.get("paused") == "1",
        concurrency=concurrency or None,
        rate_limit=rate,
        weight=_int(setting("weight")) or 1,
        max_size=max_size or None,
        held_until=hold or None,
        overrides=tuple(label for field, label in _OVERRIDES.items() if field in fields),
    )


class FlowCommands:
    """Builds the flow-control Ops of one queue (pure, like ``QueueCommands``)."""

    def __init__(self, commands: QueueCommands) -> None:
        self._commands = commands
        self.keys = commands.keys

    def _op(self, name: str, *args: Any, parse: Any) -> Op[Any]:
        return self._commands._op(name, *args, parse=parse)

    # -- changes -------------------------------------------------------------------------------

    def set_rate_limit(self, limit: RateLimit | None) -> Op[None]:
        n, per = (limit.limit, limit.per_ms) if limit else (0, 0)
        return self._op("set_rate_limit", n, per, parse=lambda _: None)

    def set_group_defaults(
        self, concurrency: int, rate_limit: RateLimit | None, weight: int, max_size: int
    ) -> Op[int]:
        n, per = (rate_limit.limit, rate_limit.per_ms) if rate_limit else (0, 0)
        return self._op("set_group_defaults", concurrency, n, per, weight, max_size, parse=int)

    def set_group(self, group: str, changes: Sequence[tuple[str, str]]) -> Op[None]:
        """``changes``: (field, value) pairs as set_group.lua reads them."""
        args = [part for change in changes for part in change]
        return self._op("set_group", group, *args, parse=lambda _: None)

    def pause_group(self, group: str, paused: bool) -> Op[bool]:
        """True if the flag changed."""
        return self._op("pause_group", group, "1" if paused else "0", parse=lambda r: r == Code.OK)

    def rate_limited(self, job_id: str, token: str, delay_ms: int) -> Op[Code]:
        """``Code.OK`` or ``Code.LEASE_LOST``."""
        return self._op("rate_limited", job_id, token, delay_ms, parse=Code)

    # -- reads ---------------------------------------------------------------------------------

    def groups(self, start: int, stop: int) -> Op[tuple[int, list[GroupInfo]]]:
        """(how many groups, the groups ranked ``start``..``stop`` by waiting jobs, most first)."""
        keys = self.keys

        def listed(r: list[Any]) -> Op[tuple[int, list[GroupInfo]]]:
            total, defaults = int(r[0]), dict(r[2] or {})
            ranked = [(str(name), int(float(score))) for name, score in flat_pairs(r[1])]
            commands = tuple(("HMGET", keys.group(name), *_GROUP_FIELDS) for name, _ in ranked)

            def parse(replies: list[Any]) -> tuple[int, list[GroupInfo]]:
                out = []
                for (name, waiting), values in zip(ranked, replies, strict=True):
                    fields = {
                        f: v for f, v in zip(_GROUP_FIELDS, values, strict=True) if v is not None
                    }
                    out.append(_group(name, max(waiting, 0), fields, defaults))
                return total, out

            return Op(commands, parse)

        return Op(
            (
                ("ZCARD", keys.groups_index),
                ("ZREVRANGE", keys.groups_index, start, stop, "WITHSCORES"),
                ("HGETALL", keys.flow),
            ),
            listed,
        )

    def group_job_ids(self, name: str, start: int, stop: int) -> Op[list[str]]:
        """The ids of a group's waiting jobs ranked ``start``..``stop``, in the order they run."""
        return Op(
            (("ZRANGE", self.keys.group_wait(name), start, stop),),
            lambda r: [str(i) for i in r[0]],
        )

    def group(self, name: str) -> Op[GroupInfo | None]:
        keys = self.keys

        def parse(r: list[Any]) -> GroupInfo | None:
            if r[0] is None:
                return None
            values = dict(zip(_GROUP_FIELDS, r[1], strict=True))
            fields = {k: v for k, v in values.items() if v is not None}
            return _group(name, int(float(r[0])), fields, dict(r[2] or {}))

        return Op(
            (
                ("ZSCORE", keys.groups_index, name),
                ("HMGET", keys.group(name), *_GROUP_FIELDS),
                ("HGETALL", keys.flow),
            ),
            parse,
        )

    def flow_state(self) -> Op[FlowState]:
        keys = self.keys

        def first(r: list[Any]) -> Op[FlowState]:
            flow = dict(r[0] or {})
            now = int(r[1][0]) * 1000 + int(r[1][1]) // 1000
            rate = RateLimit.from_stored(flow.get("rate_n"), flow.get("rate_ms"))
            since = f"({now - rate.per_ms}" if rate else "+inf"

            def parse(r: list[Any]) -> FlowState:
                limited_until = None
                in_window = flat_pairs(r[1])
                if rate and int(r[0]) >= rate.limit and in_window:
                    limited_until = int(float(in_window[0][1])) + rate.per_ms
                hold = _int(flow.get("hold"))
                return FlowState(
                    rate_limit=rate,
                    held_until=hold if hold > now else None,
                    limited_until=limited_until,
                    group_defaults=_group("", 0, {}, flow),
                    grouped_waiting=max(_int(flow.get("waiting")), 0),
                    groups=int(r[2]),
                )

            # The window's starts since PER ago: how many, and the oldest of them.
            return Op(
                (
                    ("ZCOUNT", keys.rate, since, "+inf"),
                    ("ZRANGEBYSCORE", keys.rate, since, "+inf", "WITHSCORES", "LIMIT", 0, 1),
                    ("ZCARD", keys.groups_index),
                ),
                parse,
            )

        return Op((("HGETALL", keys.flow), ("TIME",)), first)
