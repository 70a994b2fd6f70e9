"""benchmarks/scaling.py runs end to end (a tiny run: its figures are not checked, only that
every column, the CPU split included, gets one)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "scaling.py"


@pytest.mark.timeout(150)
def test_scaling_reports_drain_memory_cpu_and_latency() -> None:
    # (The window must span some ticks of the workers' CPU clock, which /proc counts in 10 ms
    # steps: 1,500 jobs drained in 29 ms once read as 0.0 µs per job.)
    tiny = ["--backlogs", "8000", "--short-window", "6000", "--repeat", "1"]
    tiny += ["--retained", "2000", "--latency-seconds", "1"]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *tiny],
        capture_output=True,
        text=True,
        timeout=140,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| 8,000 |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    # backlog, fill, short drain, long drain (n/a: too few jobs), bytes, Redis busy %,
    # Redis µs per job, workers' µs per job
    assert cells[3] == "n/a"
    for cell in cells[1:3] + cells[4:]:
        assert float(cell.replace(",", "")) > 0, row
    assert "| enqueue call → handler runs" in proc.stdout
    lag = next(line for line in proc.stdout.splitlines() if "producer behind schedule" in line)
    p50, p99, worst, batches = [cell.strip() for cell in lag.strip("|").split("|")][1:]
    assert float(p50) <= float(p99) <= float(worst) and int(batches.replace(",", "")) > 0, lag


def test_a_backlog_smaller_than_the_timed_range_is_refused_up_front() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--backlogs", "2000"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "backlog 2,000 is too small: the drain is timed over jobs 1,001-9,000" in proc.stderr
