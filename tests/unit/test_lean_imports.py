"""The base install (`pip install conveyor-queue`) has no web dependency, so no module outside
``conveyor/web`` may import one, or ``conveyor.web``, when it is imported: only inside the
function that needs it (``conveyor dashboard``, the demo), which then says to install
``conveyor-queue[web]``. scripts/test-wheel checks the same on a real install."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "conveyor"
WEB_ONLY = {"starlette", "uvicorn", "prometheus_client"}


def _import_time_imports(path: Path) -> list[str]:
    """Absolute module names imported at module level (also under ``if``/``try``), not in
    functions and not under ``if TYPE_CHECKING``."""
    package = ["conveyor", *path.relative_to(SRC).with_suffix("").parts[:-1]]
    found: list[str] = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                found.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                module = ".".join([*base, *([node.module] if node.module else [])])
                found.append(module)
                found.extend(f"{module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return found


def test_only_conveyor_web_imports_web_dependencies_at_import_time() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC)
        if relative.parts[0] == "web":
            continue
        for name in _import_time_imports(path):
            parts = name.split(".")
            if parts[0] in WEB_ONLY or parts[:2] == ["conveyor", "web"]:
                offenders.append(f"{relative}: {name}")
    assert offenders == []


def test_the_scan_resolves_relative_imports_and_skips_function_bodies() -> None:
    fastapi = _import_time_imports(SRC / "integrations" / "fastapi.py")
    assert "conveyor.errors" in fastapi  # `from ..errors import ...`
    assert "conveyor.cli_serve" in _import_time_imports(SRC / "cli.py")  # `from .cli_serve ...`
    # demo.py imports conveyor.web inside dashboard_app() only.
    assert "from .web import create_app" in (SRC / "demo.py").read_text(encoding="utf-8")
    assert "conveyor.web" not in _import_time_imports(SRC / "demo.py")


# ecosystem: the optional extras (otel, outbox, django) cost nothing when not installed.
EXTRA_ONLY = {"opentelemetry": {"otel.py"}, "psycopg": set(), "django_tasks": set()}


def test_extras_are_imported_only_by_their_own_modules() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC)
        for name in _import_time_imports(path):
            parts = name.split(".")
            owners = EXTRA_ONLY.get(parts[0])
            if owners is not None and str(relative) not in owners:
                offenders.append(f"{relative}: {name}")
            if parts[:2] == ["conveyor", "otel"] and str(relative) != "otel.py":
                offenders.append(f"{relative}: {name}")  # loaded only once the SDK is
    assert offenders == []
