"""Print the test modules scripts/test-lowest runs on the lowest dependency versions.

That step checks what ``pyproject.toml`` promises users: Conveyor works on each declared floor.
A module of tests/unit or tests/integration is run there when it crosses a pinned dependency
whose floor differs from the version the main run had (the interpreter running this script,
scripts/test's ``.venv``). A module crosses a dependency when it imports, anywhere in the file
(the code of the processes it starts, in its strings, included) or in the tests/support modules
it imports:

- ``conveyor`` (any module of it): every runtime dependency, which ``import conveyor`` loads or
  the CLI and worker it drives use; ``conveyor.web``: the ``[web]`` ones as well;
- the dependency itself (``import starlette``).

The rest (the tests of the benchmark tools and of the test-support code, checks that read the
source tree) cross nothing the floors change: the main run already ran them on the same code.
Conftest files do not count: a fixture crosses what its module imports only for the tests that
ask for it, which import ``conveyor`` themselves. When some floor differs but no selected module
crosses it, this is an error: every floor must be tested.

Usage: ``python scripts/lowest_tests.py FLOORS [--no-reference]``, FLOORS as written by
scripts/lowest_constraints.py; ``--no-reference`` counts every floor as differing (no main
environment to compare with). Prints one path a line, relative to the tree.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_DIRS = ("tests/unit", "tests/integration")
#: The extra whose dependencies only ``conveyor.web`` needs (scripts/lowest_constraints.py pins
#: the runtime dependencies and this extra).
WEB_EXTRA = "web"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_floors(path: Path) -> dict[str, str]:
    """``name==X`` lines (markers and comments dropped) as canonical name -> X."""
    floors = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        requirement = line.split("#")[0].split(";")[0].strip()
        if requirement:
            name, _, version = requirement.partition("==")
            floors[canonical(name)] = version.strip()
    return floors


def web_dependencies(pyproject: Path) -> set[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    extra = project.get("optional-dependencies", {}).get(WEB_EXTRA, [])
    return {canonical(re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0]) for r in extra}


def import_names(distributions: Iterable[str]) -> dict[str, str]:
    """Top-level import name -> the distribution (of ``distributions``) that provides it."""
    wanted = set(distributions)
    names = {d.replace("-", "_"): d for d in wanted}
    for module, dists in metadata.packages_distributions().items():
        for dist in dists:
            if canonical(dist) in wanted:
                names[module] = canonical(dist)
    return names


#: An import in a string: the code of a process a test starts (``python -c``, a script file).
_CODE_IMPORT = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_][\w.]*)", re.MULTILINE)


def _imports(path: Path) -> set[str]:
    """Every module name an import statement in ``path`` names (relative ones left out), also
    in the code of the processes it starts (string constants)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.update(_CODE_IMPORT.findall(node.value.replace(";", "\n")))
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def module_imports(path: Path, root: Path = ROOT) -> set[str]:
    """What ``path`` imports, with what the tests/support modules it imports import."""
    seen: set[Path] = set()
    todo, found = [path], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for name in _imports(current):
            found.add(name)
            if name.startswith("tests.support."):
                support = root / (name.replace(".", "/") + ".py")
                if support.is_file():
                    todo.append(support)
    return found


def crossed(
    imports: set[str], runtime: set[str], web: set[str], names: Mapping[str, str]
) -> set[str]:
    """The pinned distributions a module with these imports crosses."""
    out = {names[n.split(".")[0]] for n in imports if n.split(".")[0] in names}
    if any(n == "conveyor" or n.startswith("conveyor.") for n in imports):
        out |= runtime
    if any(n == "conveyor.web" or n.startswith("conveyor.web.") for n in imports):
        out |= web
    return out


def select(
    floors: Mapping[str, str],
    reference: Mapping[str, str | None],
    web: set[str],
    root: Path = ROOT,
) -> tuple[list[str], set[str]]:
    """(test modules to run, differing floors no module crosses). ``reference``: the main
    run's version of each pinned distribution (None: not installed there, so it differs)."""
    differing = {d for d, floor in floors.items() if _release(reference.get(d)) != _release(floor)}
    runtime = set(floors) - web
    names = import_names(floors)
    chosen, covered = [], set()
    for directory in TEST_DIRS:
        for path in sorted((root / directory).glob("test_*.py")):
            hits = crossed(module_imports(path, root), runtime, web & set(floors), names)
            if hits & differing:
                chosen.append(path.relative_to(root).as_posix())
                covered |= hits
    return chosen, differing - covered


def _release(version: str | None) -> tuple[str, ...] | None:
    # "0.19" and "0.19.0" name one release (as scripts/test-lowest compares them).
    if version is None:
        return None
    parts = version.split(".")
    while len(parts) > 1 and parts[-1] == "0":
        parts.pop()
    return tuple(parts)


def installed(distributions: Iterable[str]) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for dist in distributions:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def main(argv: list[str]) -> int:
    args = [a for a in argv[1:] if a != "--no-reference"]
    if len(args) != 1:
        print(__doc__.split("Usage: ")[1].split("\n\n")[0], file=sys.stderr)
        return 2
    floors = read_floors(Path(args[0]))
    if "--no-reference" in argv:
        reference: dict[str, str | None] = dict.fromkeys(floors)
    else:
        reference = installed(floors)
    chosen, uncovered = select(floors, reference, web_dependencies(ROOT / "pyproject.toml"))
    if uncovered:
        print(f"error: no test module crosses {', '.join(sorted(uncovered))}", file=sys.stderr)
        return 1
    print("\n".join(chosen))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
