"""The chaos soak (benchmarks/soak.py) in its short CI form, and a check that its checker works."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


def run_soak(tmp_path: Path, *args: str, timeout: float) -> tuple[int, dict[str, object], str]:
    figures = tmp_path / "soak.json"
    proc = subprocess.run(
        [sys.executable, str(SOAK), *args, "--json", str(figures)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = proc.stdout + proc.stderr
    assert figures.exists(), output
    return proc.returncode, json.loads(figures.read_text()), output


@pytest.mark.timeout(240)
def test_ci_soak_loses_nothing_under_worker_and_redis_kills(tmp_path: Path) -> None:
    code, figures, output = run_soak(tmp_path, "--ci", timeout=220)
    print(output)
    assert code == 0, output
    assert figures["acknowledged"] == figures["jobs"] == 10_000
    assert figures["lost"] == 0 and figures["pending"] == 0 and figures["unexpected"] == 0
    kills = figures["kills"]
    assert isinstance(kills, dict) and kills["redis"] == 1 and kills["SIGKILL"] >= 1
    recovery = figures["recovery"]
    assert isinstance(recovery, dict)
    per_kill = recovery["per_kill"]
    assert len(per_kill) == kills["SIGKILL"] + kills["SIGSTOP"], recovery
    for kill in per_kill:  # a kill's jobs started again after it, or it had none in hand
        assert (kill["recovery_s"] is None) == (kill["jobs_started_again"] == 0), kill
        assert kill["recovery_s"] is None or kill["recovery_s"] > 0, kill


@pytest.mark.timeout(120)
def test_soak_checker_reports_jobs_deleted_behind_its_back_as_lost(tmp_path: Path) -> None:
    code, figures, output = run_soak(
        tmp_path, "--ci", "--jobs", "600", "--sabotage", "3", timeout=100
    )
    assert code == 1, output
    # The 3 jobs made to fail after running must not hide the 3 deleted ones.
    assert figures["sabotaged"] == 3 and figures["lost"] == 3, output
    assert figures["failed"] == 3 and figures["pending"] == 0, output
    lost_ids = figures["lost_ids"]
    assert isinstance(lost_ids, list) and len(lost_ids) == 3, output
