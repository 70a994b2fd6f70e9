"""How the direct connections write commands (``storage.resp``): every argument type a command
may hold comes out as the bulk string Redis must see, whether hiredis packs it or not."""

from __future__ import annotations

import enum
from typing import Any

import pytest

from conveyor.storage import resp


class Rank(enum.IntEnum):
    LOW = -4


class Colour(enum.StrEnum):
    RED = "red"


def _expected(args: tuple[Any, ...]) -> bytes:
    """RESP written out by hand, the reference for the packers."""
    out = b"*%d\r\n" % len(args)
    for value in args:
        if isinstance(value, str):
            data = value.encode()
        elif isinstance(value, float):
            data = repr(value).encode()
        elif isinstance(value, int):
            data = str(int(value)).encode()
        else:
            data = value
        out += b"$%d\r\n%s\r\n" % (len(data), data)
    return out


ARGUMENTS = [
    ("SET", "key", "value"),
    ("EVALSHA", "a" * 40, 2, b"k1", b"k2", "", "noop", '{"i":1}'),
    (0, -5, 2**70, 0.1, 1e20, 1e-7, -0.0, float("inf"), 123456789.123456789),
    ("é ü 日本", b"\x00\r\n", ""),
    (Rank.LOW, Colour.RED, "x"),  # hiredis refuses an IntEnum: packed in Python, the same
]


@pytest.mark.parametrize("args", ARGUMENTS)
def test_pack_writes_each_argument_as_redis_reads_it(args: tuple[Any, ...]) -> None:
    assert resp.pack(args) == _expected(args)
    assert resp.pack(list(args)) == _expected(args)


@pytest.mark.parametrize("args", ARGUMENTS)
def test_a_script_call_is_its_head_and_its_arguments(args: tuple[Any, ...]) -> None:
    keys = (b"q:{a}:wait", b"q:{a}:events")
    head = resp.evalsha_head("f" * 40, keys)
    assert resp.pack_evalsha(head, len(keys), args) == _expected(
        ("EVALSHA", "f" * 40, len(keys), *keys, *args)
    )


@pytest.mark.parametrize("bad", [True, None, [1], {"a": 1}])
def test_what_redis_cannot_be_sent_is_refused_by_name(bad: object) -> None:
    with pytest.raises(TypeError, match=f"cannot send {type(bad).__name__}"):
        resp.pack(("SET", "key", bad))
