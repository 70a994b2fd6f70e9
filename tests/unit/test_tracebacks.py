"""conveyor.tracebacks gives the text traceback.format_exception gives, also from its cache."""

from __future__ import annotations

import traceback
from collections.abc import Callable

import pytest

from conveyor import tracebacks


class Boom(Exception):
    pass


def _deep(n: int) -> None:
    if n == 0:
        raise Boom(f"at the bottom {n}")
    _deep(n - 1)


def plain() -> None:
    _deep(3)


def recursive() -> None:
    _deep(40)  # traceback folds the repeated frames ("[Previous line repeated ...]")


def caused() -> None:
    try:
        plain()
    except Boom as exc:
        raise ValueError("wrapped") from exc


def during_handling() -> None:
    try:
        {}["missing"]
    except KeyError:
        1 / 0  # noqa: B018


def suppressed() -> None:
    try:
        plain()
    except Boom:
        raise RuntimeError("context hidden") from None


def with_notes() -> None:
    exc = Boom("noted")
    exc.add_note("a note on the failure")
    raise exc


def cycle() -> None:
    first, second = Boom("first"), Boom("second")
    first.__context__ = second
    second.__context__ = first
    raise first


def group() -> None:
    raise ExceptionGroup("several", [Boom("one"), ValueError("two")])


def empty_message() -> None:
    raise Boom


CASES = [plain, recursive, caused, during_handling, suppressed, with_notes, cycle, group]


def _raised(fn: Callable[[], None]) -> BaseException:
    try:
        fn()
    except BaseException as exc:
        return exc
    raise AssertionError(f"{fn.__name__} did not raise")


@pytest.mark.parametrize("fn", [*CASES, empty_message], ids=lambda fn: fn.__name__)
def test_same_text_as_the_standard_library_first_and_from_the_cache(
    fn: Callable[[], None],
) -> None:
    for _ in range(3):  # the first formats the stack, the others reuse it
        exc = _raised(fn)
        assert tracebacks.format_exception(exc) == "".join(traceback.format_exception(exc))


def test_the_cached_stack_carries_each_failures_own_message() -> None:
    texts = []
    for i in range(2):
        try:
            _deep(0)
        except Boom as exc:
            exc.args = (f"failure {i}",)
            texts.append(tracebacks.format_exception(exc))
    assert texts[0].endswith("Boom: failure 0\n")
    assert texts[1].endswith("Boom: failure 1\n")


def test_an_exception_never_raised_has_no_stack() -> None:
    exc = Boom("made, not raised")
    assert tracebacks.format_exception(exc) == "".join(traceback.format_exception(exc))


def test_the_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracebacks, "MAX_STACKS", 2)
    monkeypatch.setattr(tracebacks, "_stacks", {})
    for fn in CASES:
        exc = _raised(fn)
        assert tracebacks.format_exception(exc) == "".join(traceback.format_exception(exc))
    assert len(tracebacks._stacks) <= 2
