"""Loads the Lua scripts in ``lua/``, inlining ``-- @include NAME`` lines from ``lua/includes/``."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from importlib import resources

__all__ = ["Script", "script"]


@dataclasses.dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: str
    sha: str


def _read(path: str) -> str:
    return resources.files("conveyor.storage").joinpath("lua", path).read_text("utf-8")


def _inline(source: str, seen: set[str]) -> str:
    """Replace each ``-- @include NAME`` by that include (itself inlined); an include that
    two others both pull in is inlined once, where it is first needed."""
    lines = []
    for line in source.splitlines():
        if line.startswith("-- @include "):
            name = line.removeprefix("-- @include ").strip()
            if name not in seen:
                seen.add(name)
                lines.append(_inline(_read(f"includes/{name}.lua"), seen))
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


@functools.cache
def script(name: str) -> Script:
    """The script named after a transition, e.g. ``script("fetch")``."""
    source = _inline(_read(f"{name}.lua"), set())
    return Script(name, source, hashlib.sha1(source.encode()).hexdigest())
