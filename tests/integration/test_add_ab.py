"""benchmarks/add_ab.py runs end to end (tiny runs: its figures are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "add_ab.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=200
    )


@pytest.mark.timeout(240)
@pytest.mark.parametrize("flavour", [[], ["--sync"]])
def test_both_versions_get_figures_and_a_verdict(flavour: list[str]) -> None:
    proc = run("--base", "HEAD", "--rounds", "2", "--calls", "20", *flavour)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("µs per " + ("SyncQueue.add" if flavour else "awaited Queue.add"))
    assert lines[1].startswith("  A HEAD (") and lines[2].startswith("  B working tree: ")
    assert "client CPU" in lines[1] and "client CPU" in lines[2]
    assert lines[3].startswith("  B/A wall within each round: median ")
    assert lines[4].startswith("  B/A client CPU within each round: median ")


@pytest.mark.timeout(60)
def test_an_unknown_revision_is_refused_before_any_work() -> None:
    proc = run("--base", "no-such-revision")
    assert proc.returncode == 2
    assert "cannot resolve 'no-such-revision'" in proc.stderr
