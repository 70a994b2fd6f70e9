"""Loads the Lua scripts in ``lua/``: inlines ``-- @include NAME`` lines from ``lua/includes/``,
writes the client's settings in as constants where a script says ``-- @settings`` and the
protocol's codes and numbers (``protocol.lua_constants``) where it says ``-- @protocol``."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Callable
from importlib import resources

from .protocol import lua_constants

__all__ = ["Script", "ScriptSettings", "build_source", "script"]

#: The settings a script sees, as (Lua name, value) pairs: see ``lua/includes/queue.lua``.
ScriptSettings = tuple[tuple[str, int], ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: str
    sha: str


def _read(path: str) -> str:
    return resources.files("conveyor.storage").joinpath("lua", path).read_text("utf-8")


def _inline(source: str, seen: set[str], read: Callable[[str], str] = _read) -> str:
    """Replace each ``-- @include NAME`` by that include (itself inlined); an include that
    two others both pull in is inlined once, where it is first needed."""
    lines = []
    for line in source.splitlines():
        if line.startswith("-- @include "):
            name = line.removeprefix("-- @include ").strip()
            if name not in seen:
                seen.add(name)
                lines.append(_inline(read(f"includes/{name}.lua"), seen, read))
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


#: Settings the scripts only ever pass to Redis commands, written as Lua strings: Redis formats
#: a Lua number argument of ``redis.call`` (``%.17g``) on every call, about a microsecond each.
_ARGUMENTS = frozenset({"EVENTS_MAX"})


def _constants(settings: ScriptSettings) -> str:
    names = ", ".join(name for name, _ in settings)
    values = ", ".join(
        f'"{value}"' if name in _ARGUMENTS else str(value) for name, value in settings
    )
    return f"local {names} = {values}"


def build_source(name: str, settings: ScriptSettings, read: Callable[[str], str] = _read) -> str:
    """The source Redis runs for script ``name``; ``read`` gives a file under ``lua/`` (another
    one than the package's serves benchmarks that compare two versions of the scripts)."""
    source = _inline(read(f"{name}.lua"), set(), read)
    source = source.replace("-- @protocol\n", lua_constants(), 1)
    return source.replace("-- @settings\n", _constants(settings) + "\n", 1)


@functools.cache
def script(name: str, settings: ScriptSettings) -> Script:
    """The script named after a transition, e.g. ``script("fetch", settings)``: one per set
    of settings, so the settings cost a call nothing (they are not sent with it)."""
    source = build_source(name, settings)
    return Script(name, source, hashlib.sha1(source.encode()).hexdigest())
