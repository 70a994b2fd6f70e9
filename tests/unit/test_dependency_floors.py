"""The floors scripts/test-lowest installs: one ``==`` pin per runtime and web dependency.

The lowest-versions step itself (a virtualenv on those pins running tests/unit and
tests/integration) is scripts/test-lowest, run by scripts/test; this checks the pins it is
given say what pyproject.toml says, and which test modules it runs (scripts/lowest_tests.py)."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lowest = _script("lowest_constraints")
selection = _script("lowest_tests")


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


def _floors(tmp_path: Path) -> dict[str, str]:
    pins = tmp_path / "floors.txt"
    pins.write_text("\n".join(lowest.floor_pin(r) for r in lowest.declared_requirements(
        ROOT / "pyproject.toml")) + "\n")  # fmt: skip
    floors: dict[str, str] = selection.read_floors(pins)
    return floors


def test_the_lowest_run_takes_the_modules_that_cross_a_differing_floor(tmp_path: Path) -> None:
    floors = _floors(tmp_path)
    web = selection.web_dependencies(ROOT / "pyproject.toml")
    assert {"starlette", "uvicorn", "prometheus-client"} <= web and "redis" not in web
    everything_differs = dict.fromkeys(floors)
    chosen, uncovered = selection.select(floors, everything_differs, web)
    assert uncovered == set()
    assert "tests/integration/test_web_api.py" in chosen  # conveyor.web: starlette & co
    assert "tests/integration/test_demo.py" in chosen  # conveyor in a process it starts
    assert "tests/unit/test_backoff.py" in chosen
    # The benchmark tools' tests and the source-tree checks cross no floor of Conveyor's.
    assert "tests/integration/test_run_benchmark.py" not in chosen
    assert "tests/unit/test_lean_imports.py" not in chosen

    # Only starlette's floor differs: only what reaches conveyor.web (or starlette) runs.
    only_starlette = {name: floor for name, floor in floors.items() if name != "starlette"}
    chosen, uncovered = selection.select(floors, {**only_starlette, "starlette": None}, web)
    assert uncovered == set() and "tests/integration/test_web_api.py" in chosen
    assert "tests/unit/test_backoff.py" not in chosen
    # "0.29" is "0.29.0": no floor differs, nothing to run again.
    same = {name: f"{floor}.0" for name, floor in floors.items()}
    assert selection.select(floors, same, web) == ([], set())


def test_a_floor_no_test_module_crosses_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    (tmp_path / "tests" / "integration").mkdir()
    (tmp_path / "tests" / "support").mkdir()
    (tmp_path / "tests" / "support" / "app.py").write_text("import orjson\n")
    (tmp_path / "tests" / "unit" / "test_core.py").write_text("from conveyor import Queue\n")
    (tmp_path / "tests" / "unit" / "test_tool.py").write_text("import json\n")
    (tmp_path / "tests" / "integration" / "test_via_support.py").write_text(
        "from tests.support.app import main\n"
    )
    floors = {"redis": "5.0.1", "orjson": "3.9", "starlette": "0.37.2"}
    chosen, uncovered = selection.select(floors, dict.fromkeys(floors), {"starlette"}, tmp_path)
    assert chosen == ["tests/unit/test_core.py", "tests/integration/test_via_support.py"]
    assert uncovered == {"starlette"}  # nothing reaches conveyor.web or starlette
