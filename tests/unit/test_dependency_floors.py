"""The floors scripts/test-lowest installs: one ``==`` pin per runtime and web dependency.

The lowest-versions step itself (a virtualenv on those pins running tests/unit and
tests/integration) is scripts/test-lowest, run by scripts/test; this checks the pins it is
given say what pyproject.toml says."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _constraints_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "lowest_constraints", ROOT / "scripts" / "lowest_constraints.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lowest = _constraints_script()


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match is not None, requirement
    return match.group(0).lower()


def test_every_runtime_and_web_dependency_is_pinned_to_its_floor() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["web"]
    pins = [lowest.floor_pin(r) for r in lowest.declared_requirements(ROOT / "pyproject.toml")]
    assert sorted(_name(p) for p in pins) == sorted(_name(r) for r in declared)
    for requirement, pin in zip(declared, pins, strict=True):
        floor = re.search(r">=\s*([^,;\s]+)", requirement)
        assert floor is not None, f"{requirement!r} has no floor"
        assert pin.split(";")[0].endswith(f"=={floor.group(1)}"), (requirement, pin)


def test_a_pin_keeps_the_environment_marker() -> None:
    assert (
        lowest.floor_pin("uvloop>=0.19; sys_platform != 'win32'")
        == "uvloop==0.19; sys_platform != 'win32'"
    )
    assert lowest.floor_pin("redis[hiredis] >=5.0.1,<9") == "redis==5.0.1"


def test_a_dependency_without_a_floor_is_refused() -> None:
    with pytest.raises(ValueError, match="no '>=' floor"):
        lowest.floor_pin("orjson")
    with pytest.raises(ValueError, match="no '>=' floor"):
        lowest.floor_pin("orjson<4")
