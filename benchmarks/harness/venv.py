"""Create/refresh the separate peers virtualenv (benchmarks/.venv-peers)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent
VENV = BENCH_DIR / ".venv-peers"
REQUIREMENTS = BENCH_DIR / "requirements-peers.txt"
STAMP = VENV / ".requirements.sha256"


def peers_python() -> Path:
    return VENV / "bin" / "python"


def ensure_peers_venv() -> str | None:
    """Make sure the venv exists with the pinned requirements. Returns an error or None."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if peers_python().exists() and STAMP.exists() and STAMP.read_text().strip() == digest:
        return None
    try:
        if not peers_python().exists():
            print(f"creating {VENV} ...", file=sys.stderr)
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        print("installing pinned peer libraries ...", file=sys.stderr)
        subprocess.run(
            [str(peers_python()), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)],
            check=True,
            timeout=900,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        return f"peers venv setup failed: {exc}"
    STAMP.write_text(digest + "\n")
    return None
