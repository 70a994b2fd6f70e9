"""benchmarks/run.py runs end to end on Conveyor's rows and the LPUSH baselines, which need no
peers' virtualenv (a tiny run: the figures are not checked, only that the table and the JSON
carry them)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"


@pytest.mark.timeout(200)
def test_a_subset_of_libraries_and_scenarios_makes_one_table(tmp_path: Path) -> None:
    libs = "conveyor,conveyor_sync,redis_lpush,redis_lpush_sync"
    args = ["--only", libs, "--scenarios", "enqueue,enqueue_concurrent,drain_noop"]
    args += ["--jobs", "300", "--repeat", "2"]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=190,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    md = (tmp_path / "latest.md").read_text()
    assert md in proc.stdout
    assert "Scenarios: enqueue, enqueue_concurrent, drain_noop" in md, md

    def cells(first: str) -> list[str]:
        row = next(line for line in md.splitlines() if line.startswith(f"| {first} |"))
        return [cell.strip() for cell in row.strip("|").split("|")][2:]

    # (a) enqueue, (a2) concurrent producers, (b) bulk, (c) no-op drain, (d) I/O drain, (e) p50,
    # (e) p99; the opt-in columns (f) mix, (g) and (h) flow control show only when they ran
    enqueue, concurrent, bulk, drain, sleep, p50, p99 = cells("conveyor")
    for figure in (enqueue, concurrent, drain):
        median, spread = figure.split(" ", 1)  # "1,234 (1,100-1,300)": two repeats
        assert float(median.replace(",", "")) > 0 and spread.startswith("("), figure
    assert bulk == sleep == p50 == p99 == "-"
    assert cells("redis_lpush")[0][0].isdigit() and cells("redis_lpush_sync")[1][0].isdigit()
    # No peer ran, so nothing to divide by where Conveyor ran; "-" where nothing ran.
    ratios = next(line for line in md.splitlines() if "÷ best peer" in line)
    ratio_cells = [cell.strip() for cell in ratios.strip("|").split("|")][2:]
    assert ratio_cells == ["n/a", "n/a", "-", "n/a", "-", "-", "-"], ratios

    data = json.loads((tmp_path / "latest.json").read_text())
    assert data["meta"]["scenarios"] == ["enqueue", "enqueue_concurrent", "drain_noop"]
    assert data["meta"]["complete"] is True and "Partial" not in md
    # The ratio row as data: one entry per scenario Conveyor ran, none with a peer to divide by.
    assert data["ratios"].keys() == {"enqueue", "enqueue_concurrent", "drain_noop"}
    assert data["ratios"]["enqueue"]["ratio"] is None, data["ratios"]
    runs = data["runs"]["conveyor"]["enqueue"]
    assert len(runs) == 2 and all(run["status"] == "ok" for run in runs), runs


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(SCRIPT.parents[1]), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.timeout(150)
def test_base_runs_the_same_adapters_on_an_earlier_commit_in_the_same_run(tmp_path: Path) -> None:
    heads = {git("rev-parse", "HEAD")}  # others may commit while it runs: HEAD then or after
    args = ["--only", "conveyor,conveyor_sync", "--base", "HEAD", "--repeat", "2"]
    args += ["--scenarios", "enqueue,drain_noop,latency", "--jobs", "300", "--duration", "1"]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=140,
    )
    heads.add(git("rev-parse", "HEAD"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    md = (tmp_path / "latest.md").read_text()
    data = json.loads((tmp_path / "latest.json").read_text())
    base = data["meta"]["base"]
    assert base["rev"] == "HEAD" and base["commit"] in heads, base
    assert f"commit {base['commit']}" in md

    rows = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ")}
    assert {"conveyor", "conveyor@HEAD", "conveyor_sync", "conveyor_sync@HEAD"} <= rows.keys()
    assert f"commit {base['commit'][:10]}" in rows["conveyor@HEAD"]
    assert "working tree on" in rows["conveyor"]
    ratio = [c.strip() for c in rows["**conveyor ÷ conveyor@HEAD**"].strip("|").split("|")][2:]
    enqueue, concurrent, bulk, drain, sleep, p50, p99 = ratio
    for figure in (enqueue, drain, p50, p99):  # "1.023x (0.981-1.065)": a ratio per repeat
        assert re.fullmatch(r"\d+\.\d{3}x \(\d+\.\d{3}-\d+\.\d{3}\)", figure), ratio
    assert concurrent == bulk == sleep == "-"
    sync_ratio = data["versus_base"]["conveyor_sync ÷ conveyor_sync@HEAD"]
    assert sync_ratio.keys() == {"enqueue"} and len(sync_ratio["enqueue"]["ratios"]) == 2

    # Each process of a base row says it imported conveyor from the worktree's src/, and the
    # worktree is gone after the run.
    worktree = Path(base["worktree"])
    assert worktree.parent == SCRIPT.parent / ".worktrees", worktree
    for lib in ("conveyor@HEAD", "conveyor_sync@HEAD", "conveyor", "conveyor_sync"):
        for scenario, runs in data["runs"][lib].items():
            assert len(runs) == 2 and all(run["status"] == "ok" for run in runs), runs
            for run in runs:
                origins = [run["origin"], *run.get("worker_origins", [])]
                if scenario != "enqueue":
                    assert len(origins) >= 2, run  # the producer and at least one worker
                from_base = [Path(o).is_relative_to(worktree / "src") for o in origins]
                assert from_base == [lib.endswith("@HEAD")] * len(origins), (lib, run)
                # this tree's rows run this tree's src/, whatever else is installed
                if not lib.endswith("@HEAD"):
                    this_src = SCRIPT.parent.parent / "src"
                    assert all(Path(o).is_relative_to(this_src) for o in origins), (lib, run)
    assert not worktree.exists()
    assert str(worktree) not in git("worktree", "list")
