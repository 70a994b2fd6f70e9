"""The Redis safety check reads every node's eviction policy and persistence; a server that
refuses CONFIG is reported as unknown, not as unsafe."""

from __future__ import annotations

from typing import Any

from conveyor.errors import CommandRefused
from conveyor.storage.ops import Op
from conveyor.storage.safety import RedisSafety, check_safety


class Server:
    """Answers CONFIG GET and INFO from ``answers`` (an exception is raised instead)."""

    def __init__(self, **answers: Any) -> None:
        self.answers = answers

    def run(self, op: Op[Any]) -> Any:
        command = op.commands[0]
        assert isinstance(command, tuple)
        answer = self.answers[str(command[-1]).replace("-", "_")]
        if isinstance(answer, Exception):
            raise answer
        return op.parse([answer])


def check(**answers: Any) -> RedisSafety:
    return check_safety(Server(**answers))  # type: ignore[arg-type]


def test_a_safe_durable_server() -> None:
    found = check(
        maxmemory_policy={"maxmemory-policy": "noeviction"},
        persistence={"aof_enabled": 1},
        save={"save": ""},
    )
    assert found == RedisSafety("noeviction", True) and not found.may_evict


def test_one_evicting_node_of_a_cluster_makes_it_unsafe() -> None:
    nodes = {"a": {"maxmemory-policy": "noeviction"}, "b": {"maxmemory-policy": "allkeys-lru"}}
    found = check(
        maxmemory_policy=nodes,
        persistence={"a": {"aof_enabled": 0}, "b": {"aof_enabled": 0}},
        save={"a": {"save": ""}, "b": {"save": ""}},
    )
    assert found == RedisSafety("allkeys-lru", False) and found.may_evict


def test_a_server_that_refuses_config_is_unknown_not_unsafe() -> None:
    refused = CommandRefused("ERR unknown command 'CONFIG'")
    found = check(maxmemory_policy=refused, persistence={"aof_enabled": 0}, save=refused)
    assert found == RedisSafety(None, None) and not found.may_evict
