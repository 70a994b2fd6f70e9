"""docs/design.md §1: ``storage/redis.py`` is the one door to Redis, and key names live in
keys.py.

Every other module builds its reads as ``Op``s (``storage/commands.py``) and runs them through
``AsyncRedis``/``SyncRedis``; none sends a raw command or opens its own redis-py client. The
worker package stands apart from the admin model and the web app."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conveyor.storage.keys import QueueKeys

SRC = Path(__file__).resolve().parents[2] / "src" / "conveyor"
#: Modules allowed to break the rule (none).
KNOWN_EXCEPTIONS: set[str] = set()


def _modules() -> list[Path]:
    return [
        path
        for path in sorted(SRC.rglob("*.py"))
        if "storage" not in path.relative_to(SRC).parts
        and str(path.relative_to(SRC)) not in KNOWN_EXCEPTIONS
    ]


def _raw_commands(tree: ast.AST) -> list[str]:
    """``x.command("NAME", ...)`` calls: a raw Redis command sent past the Op builders."""
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "command"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append(f"line {node.lineno}: {node.args[0].value}")
    return found


def _redis_imports(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"line {node.lineno}" for a in node.names if a.name.split(".")[0] == "redis"]
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").split(".")[0] == "redis"
        ):
            found.append(f"line {node.lineno}")
    return found


def test_no_module_outside_storage_sends_raw_commands_or_imports_redis_py() -> None:
    offenders = {}
    for path in _modules():
        tree = ast.parse(path.read_text(), str(path))
        problems = _raw_commands(tree) + _redis_imports(tree)
        if problems:
            offenders[str(path.relative_to(SRC))] = problems
    assert offenders == {}


def test_queue_key_names_are_not_spelled_outside_keys_py() -> None:
    # Key suffixes that QueueKeys owns; other modules must ask QueueKeys for them.
    pattern = re.compile(r"""["'](data_lost|metrics:total|metrics:|worker:|job:|logs:)["']""")
    offenders = {}
    storage = [SRC / "storage" / name for name in ("commands.py", "reads.py", "ops.py", "redis.py")]
    for path in [*_modules(), *storage]:
        hits = pattern.findall(path.read_text())
        if hits:
            offenders[str(path.relative_to(SRC))] = hits
    assert offenders == {}


def test_queue_keys_name_every_key_under_the_hash_tag() -> None:
    keys = QueueKeys("p", "q")
    assert keys.data_lost == "p:{q}:data_lost"
    assert keys.metrics_total == "p:{q}:metrics:total"
    assert keys.metrics(7) == "p:{q}:metrics:7"


def test_settings_are_built_by_one_make_settings() -> None:
    defined = [
        str(path.relative_to(SRC))
        for path in sorted(SRC.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef) and node.name == "make_settings"
    ]
    assert defined == ["procedures.py"]


def _imported(tree: ast.AST, module: str) -> set[str]:
    """The ``conveyor.*`` modules a module of the package ``module`` imports (relative imports
    resolved)."""
    package = module.split(".")
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level] if node.level else []
            name = ".".join([*base, *(node.module or "").split(".")]).strip(".")
            found.add(name)
            found.update(f"{name}.{a.name}" for a in node.names)
    return {name for name in found if name.startswith("conveyor")}


def test_the_worker_never_imports_the_admin_model_or_the_web_app() -> None:
    offenders = {}
    for path in sorted((SRC / "worker").rglob("*.py")):
        module = "conveyor.worker." + path.stem
        imported = _imported(ast.parse(path.read_text()), module)
        walled = sorted(
            name
            for name in imported
            if name.split(".")[:2] in (["conveyor", "admin"], ["conveyor", "web"])
        )
        if walled:
            offenders[path.name] = walled
    assert offenders == {}


def test_the_import_check_sees_relative_imports() -> None:
    tree = ast.parse("from ..admin import Admin\nfrom .slots import Slots\nimport conveyor.web")
    imported = _imported(tree, "conveyor.worker.leases")
    assert {"conveyor.admin", "conveyor.worker.slots", "conveyor.web"} <= imported
