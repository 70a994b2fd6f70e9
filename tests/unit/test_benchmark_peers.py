"""The benchmark's peers in other languages (benchmarks/harness/runtimes.py, foreign.py) and
scenario (f): how a skipped peer and the optional column show in the report, the setup's
verdict when a runtime is missing, and one mix rule in every language."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.support.prerequisites import missing

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from harness import mix, report, runtimes

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def ok(value: float) -> dict[str, Any]:
    return {"status": "ok", "value": value}


def test_a_skipped_peer_is_no_failure_in_the_ratio_row() -> None:
    skipped = {"status": "skipped", "detail": "node/npm not found on PATH"}
    table = {
        "conveyor": {"drain_noop": report.summarize([ok(900.0)], "value")},
        "bullmq_node": {"drain_noop": report.summarize([skipped], "value")},
        "bull": {"drain_noop": report.summarize([ok(300.0)], "value")},
    }
    assert report.cell(table["bullmq_node"]["drain_noop"], latency=False) == "skipped"
    found = report.ratios(table, report.SUBJECT)["drain_noop"]
    assert found["ratio"] == 3.0 and found["best_peer"] == "bull"
    assert found["peers_without_figure"] == []


def test_the_mix_column_shows_only_when_a_row_has_it() -> None:
    plain = {"conveyor": {"drain_noop": report.summarize([ok(900.0)], "value")}}
    assert report.columns(plain) == report.COLUMNS
    with_mix = {
        "conveyor": {"drain_mix": report.summarize([ok(600.0)], "value")},
        "bullmq_node": {"drain_mix": report.summarize([ok(200.0)], "value")},
    }
    keys = [key for key, _, _ in report.columns(with_mix)]
    assert keys == [key for key, _, _ in report.COLUMNS] + ["drain_mix"]
    cells = report.ratio_cells(with_mix, report.SUBJECT)
    assert len(cells) == len(keys) and cells[-1] == "3.00x (vs bullmq_node)"
    info = {"conveyor": {"version": "1"}, "bullmq_node": {"version": "6"}}
    meta = {
        "machine": report.machine_info("7"),
        "jobs": 1,
        "sleep_jobs": 1,
        "repeat": 1,
        "workers": 2,
        "rate": 1.0,
        "duration": 1.0,
    }
    md = report.markdown(meta, with_mix, info)
    assert "(f) realistic mix jobs/s |" in md
    row = next(line for line in md.splitlines() if line.startswith("| bullmq_node |"))
    assert row.rstrip().endswith("| 200 |"), row


def test_a_missing_runtime_is_the_reason_the_peer_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no node, npm, ruby nor apt-get on it
    skips = runtimes.prepare(["conveyor", "bullmq_node", "kue", "sidekiq"])
    assert skips.keys() == {"bullmq_node", "kue", "sidekiq"}
    assert "node/npm not found" in skips["bullmq_node"] and skips["kue"] == skips["bullmq_node"]
    assert "sidekiq" in skips["sidekiq"]
    assert runtimes.prepare(["conveyor", "arq"]) == {}


def test_mix_rule_has_each_share_of_jobs() -> None:
    specs = [mix.spec(i) for i in range(1000)]
    assert sum(s.fail for s in specs) == 100
    delayed = [s.delay_s for s in specs if s.delay_s]
    assert len(delayed) == 100 and all(0 < d < 1 for d in delayed)
    assert len(set(delayed)) > 90  # spread over the second, not one value
    assert {s.priority for s in specs} == {0, 1, 2, 3}
    assert mix.payload(10)["fail"] is True and "fail" not in mix.payload(11)


def test_node_applies_the_same_mix_rule() -> None:
    if shutil.which("node") is None:
        missing("node not installed (scripts/setup installs it)")
    # jobs.js loads the Node libraries: npm ci from the lockfile first, as run.py does.
    skipped = runtimes.prepare(["bullmq_node"])
    assert not skipped, skipped
    script = (
        "const { mixSpec } = require('./jobs');"
        "console.log(JSON.stringify(Array.from({ length: 500 }, (_, i) => mixSpec(i))));"
    )
    proc = subprocess.run(
        ["node", "-e", script], cwd=BENCH / "node", capture_output=True, text=True, check=True
    )
    node = json.loads(proc.stdout)
    python = [mix.spec(i) for i in range(500)]
    assert [(s["fail"], s["delayMs"] / 1000, s["priority"]) for s in node] == [
        (s.fail, s.delay_s, s.priority) for s in python
    ]
