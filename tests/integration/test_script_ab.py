"""benchmarks/script_ab.py runs end to end (tiny runs: its figures are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "script_ab.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=100
    )


@pytest.mark.timeout(120)
@pytest.mark.parametrize("what", ["add", "bulk", "drain", "mix"])
def test_both_versions_get_a_figure_and_a_verdict(what: str) -> None:
    proc = run(what, "--base", "HEAD", "--blocks", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[1].startswith("  A HEAD: ") and lines[2].startswith("  B working tree: ")
    assert "B/A within each pair of blocks: median " in lines[3]


@pytest.mark.timeout(60)
def test_an_unknown_revision_is_refused_before_any_work() -> None:
    proc = run("add", "--base", "no-such-revision")
    assert proc.returncode == 2
    assert "cannot read the scripts at 'no-such-revision'" in proc.stderr
