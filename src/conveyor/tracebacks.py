"""A failed attempt's traceback text, as ``traceback.format_exception`` gives it, at a fraction
of its cost when the same code fails again and again.

Most of ``format_exception``'s time goes into the stack: reading each frame's source line and,
since Python 3.11, working out the ``^^^^`` markers under it (which parses the line). A job
that fails fails at the same place on every attempt (and a flood of failures is one bug), so
the stack of each place is formatted once and kept (keyed by each frame's code object and
instruction offset, which fix its file, line and markers; the source lines as first read),
and only the exception's own lines (its type, message and notes) are formatted per failure.
The text is the same as ``format_exception``'s; exception groups, which nest their own
tracebacks, take that function's path.
"""

from __future__ import annotations

import traceback
from types import CodeType, TracebackType

__all__ = ["format_exception"]

#: At most this many stacks are kept; the cache starts afresh past it (a worker fails at a
#: handful of places; a bound keeps a pathological one, e.g. generated code, from growing it).
MAX_STACKS = 512

# traceback's own words between the exceptions of a chain
_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"

_StackKey = tuple[tuple[CodeType, int, int], ...]
_stacks: dict[_StackKey, str] = {}


def format_exception(exc: BaseException) -> str:
    """The text ``"".join(traceback.format_exception(exc))`` returns."""
    # Walked from the outermost exception in, each one's block and then the joint to the next;
    # printed from the innermost cause out.
    texts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, BaseExceptionGroup):
            return "".join(traceback.format_exception(exc))
        seen.add(id(current))
        lines = traceback.format_exception_only(current)
        texts.append(_stack(current.__traceback__) + "".join(lines))
        joint, current = _next_in_chain(current)
        if current is not None and id(current) in seen:
            current = None  # a cycle: traceback stops there too
        if current is not None:
            texts.append(joint)
    return "".join(reversed(texts))


def _next_in_chain(exc: BaseException) -> tuple[str, BaseException | None]:
    if exc.__cause__ is not None:
        return _CAUSE, exc.__cause__
    if exc.__context__ is not None and not exc.__suppress_context__:
        return _CONTEXT, exc.__context__
    return "", None


def _stack(tb: TracebackType | None) -> str:
    if tb is None:
        return ""
    key: list[tuple[CodeType, int, int]] = []
    walk: TracebackType | None = tb
    while walk is not None:
        key.append((walk.tb_frame.f_code, walk.tb_lasti, walk.tb_lineno))
        walk = walk.tb_next
    frozen = tuple(key)
    text = _stacks.get(frozen)
    if text is None:
        # The stack as format_exception reads it (with the column positions its markers
        # need), without the exception's chain: a bare stand-in carries none.
        frames = traceback.TracebackException(BaseException, BaseException(), tb).stack
        text = "Traceback (most recent call last):\n" + "".join(frames.format())
        if len(_stacks) >= MAX_STACKS:
            _stacks.clear()
        _stacks[frozen] = text
    return text
