"""Package build hook: the wheel and the sdist ship the dashboard, so build it from frontend/ when
it is not built yet (npm ci + npm run build). Editable installs skip this: scripts/setup builds
it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class DashboardBuildHook(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "dashboard"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        frontend = root / "frontend"
        built = root / "src" / "conveyor" / "web" / "static" / "dist" / "index.html"
        if version == "editable" or built.exists() or not (frontend / "package.json").exists():
            return
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError(
                "building the package needs the dashboard: install Node.js and npm, or build "
                "it first with scripts/setup"
            )
        install = "ci" if (frontend / "package-lock.json").exists() else "install"
        subprocess.run([npm, install, "--no-audit", "--no-fund"], cwd=frontend, check=True)
        subprocess.run([npm, "run", "build"], cwd=frontend, check=True)
