"""benchmarks/enqueue_cost.py runs end to end (a tiny run: its figures are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "enqueue_cost.py"


@pytest.mark.timeout(120)
def test_enqueue_cost_prints_every_step() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--blocks", "2", "--calls", "20"],
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")][1:]
    steps = [row.split("|")[1].strip() for row in rows]
    assert steps[:5] == [
        "1 SET (round trip)",
        "2 EVALSHA return 1",
        "3 add_job's calls, fixed args",
        "4 add_job",
        "5 Queue.add",
    ]
    # Redis's own time is reported for the three script steps.
    assert all(row.split("|")[4].strip() for row in rows[1:4])
