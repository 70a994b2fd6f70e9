"""benchmarks/run.py runs end to end on Conveyor's rows and the LPUSH baselines, which need no
peers' virtualenv (a tiny run: the figures are not checked, only that the table and the JSON
carry them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"


@pytest.mark.timeout(200)
def test_a_subset_of_libraries_and_scenarios_makes_one_table(tmp_path: Path) -> None:
    libs = "conveyor,conveyor_sync,redis_lpush,redis_lpush_sync"
    args = ["--only", libs, "--scenarios", "enqueue,drain_noop", "--jobs", "300", "--repeat", "2"]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=190,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    md = (tmp_path / "latest.md").read_text()
    assert md in proc.stdout
    assert "Scenarios: enqueue, drain_noop" in md, md

    def cells(first: str) -> list[str]:
        row = next(line for line in md.splitlines() if line.startswith(f"| {first} |"))
        return [cell.strip() for cell in row.strip("|").split("|")][2:]

    # (a) enqueue, (b) bulk, (c) no-op drain, (d) I/O drain, (e) p50, (e) p99
    enqueue, bulk, drain, sleep, p50, p99 = cells("conveyor")
    for figure in (enqueue, drain):
        median, spread = figure.split(" ", 1)  # "1,234 (1,100-1,300)": two repeats
        assert float(median.replace(",", "")) > 0 and spread.startswith("("), figure
    assert bulk == sleep == p50 == p99 == "-"
    assert cells("redis_lpush")[0][0].isdigit()
    # No peer ran, so nothing to divide by where Conveyor ran; "-" where nothing ran.
    ratios = next(line for line in md.splitlines() if "÷ best peer" in line)
    ratio_cells = [cell.strip() for cell in ratios.strip("|").split("|")][2:]
    assert ratio_cells == ["n/a", "-", "n/a", "-", "-", "-"], ratios

    data = json.loads((tmp_path / "latest.json").read_text())
    assert data["meta"]["scenarios"] == ["enqueue", "drain_noop"]
    assert data["meta"]["complete"] is True and "Partial" not in md
    # The ratio row as data: one entry per scenario Conveyor ran, none with a peer to divide by.
    assert data["ratios"].keys() == {"enqueue", "drain_noop"}
    assert data["ratios"]["enqueue"]["ratio"] is None, data["ratios"]
    runs = data["runs"]["conveyor"]["enqueue"]
    assert len(runs) == 2 and all(run["status"] == "ok" for run in runs), runs
