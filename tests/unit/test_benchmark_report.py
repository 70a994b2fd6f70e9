"""The benchmark report (benchmarks/harness/report.py): how failed repeats and failed peers
show in the cells and the ratio row."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from harness import report


def ok(value: float) -> dict[str, Any]:
    return {"status": "ok", "value": value}


def test_a_failed_repeat_leaves_the_good_ones_standing_and_says_so() -> None:
    runs = [ok(100.0), {"status": "timeout", "detail": "timeout (>300s, killed)"}, ok(300.0)]
    summary = report.summarize(runs, "value")
    assert summary["status"] == "ok"
    assert summary["median"] == 200.0 and summary["values"] == [100.0, 300.0]
    assert summary["ok_runs"] == "2/3"
    assert summary["notes"] == ["#2 failed: timeout (>300s, killed)"]
    assert report.cell(summary, latency=False) == "200 (100-300), 2/3 runs ok"


def test_a_figure_with_no_good_repeat_is_the_first_failure() -> None:
    runs = [{"status": "error", "detail": "boom"}, {"status": "timeout", "detail": "slow"}]
    assert report.summarize(runs, "value") == {"status": "error", "detail": "boom"}


def test_a_scenario_not_run_yet_is_left_out() -> None:
    assert report.summaries({"enqueue": [ok(5.0)], "bulk": []}).keys() == {"enqueue"}


def test_the_ratio_row_names_the_peers_that_have_no_figure() -> None:
    failed = {"status": "error", "detail": "boom"}
    table = {
        "conveyor": {"drain_noop": report.summarize([ok(800.0)], "value")},
        "huey": {"drain_noop": report.summarize([failed], "value")},
        "dramatiq": {"drain_noop": report.summarize([ok(200.0)], "value")},
        "rq": {"drain_noop": report.summarize([{"status": "n/a", "detail": "no"}], "value")},
        "redis_lpush": {"enqueue": report.summarize([ok(9_000.0)], "value")},
    }
    found = report.ratios(table, report.SUBJECT)
    assert found == {
        "drain_noop": {
            "ratio": 4.0,
            "best_peer": "dramatiq",
            "best_peer_median": 200.0,
            "peers_without_figure": ["huey"],
        }
    }
    cells = report.ratio_cells(table, report.SUBJECT)
    assert cells[2] == "4.00x (vs dramatiq); no figure: huey"  # rq's n/a: not a failure
    assert cells[0] == "-"  # Conveyor did not run (a); the baseline is not a peer
