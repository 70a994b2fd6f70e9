"""The benchmark report (benchmarks/harness/report.py): how failed repeats and failed peers
show in the cells and the ratio row."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from harness import report, versus


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
    cells = dict(
        zip(
            [key for key, _, _ in report.COLUMNS],
            report.ratio_cells(table, report.SUBJECT),
            strict=True,
        )
    )
    assert cells["drain_noop"] == "4.00x (vs dramatiq); no figure: huey"  # rq's n/a: not a failure
    assert cells["enqueue"] == "-"  # Conveyor did not run (a); the baseline is not a peer


def test_a_row_run_on_an_earlier_commit_is_not_a_peer() -> None:
    table = {
        "conveyor": {"drain_noop": report.summarize([ok(800.0)], "value")},
        "conveyor@HEAD~1": {"drain_noop": report.summarize([ok(900.0)], "value")},
        "dramatiq": {"drain_noop": report.summarize([ok(200.0)], "value")},
    }
    assert report.best_peer(table, "drain_noop", higher=True) == ("dramatiq", 200.0)


def test_this_tree_over_the_base_is_a_ratio_per_repeat_of_both_rows() -> None:
    this = {"drain_noop": [ok(110.0), ok(90.0), ok(300.0)], "latency": []}
    base = {"drain_noop": [ok(100.0), ok(100.0), {"status": "error", "detail": "boom"}]}
    found = versus.compare(this, base)
    assert found.keys() == {"drain_noop"}  # latency not run (yet) by both: "-"
    assert found["drain_noop"]["ratios"] == [1.1, 0.9]  # the failed base repeat pairs no ratio
    assert found["drain_noop"]["median"] == 1.0 and found["drain_noop"]["repeats"] == "2/3"
    row = versus.ratio_row("conveyor ÷ conveyor@v1", found)
    cells = [cell.strip() for cell in row.strip("|").split("|")][2:]  # after label and version
    by_column = dict(zip([key for key, _, _ in report.COLUMNS], cells, strict=True))
    assert by_column.pop("drain_noop") == "1.000x (0.900-1.100), 2/3 repeats", row
    assert set(by_column.values()) == {"-"}, row


def test_a_row_and_its_base_twin_swap_places_every_other_repeat() -> None:
    libs = ["conveyor", "conveyor@v1", "arq", "conveyor_sync", "conveyor_sync@v1"]
    assert versus.repeat_order(libs, 0) == libs
    assert versus.repeat_order(libs, 1) == [
        "conveyor@v1",
        "conveyor",
        "arq",
        "conveyor_sync@v1",
        "conveyor_sync",
    ]
    assert versus.repeat_order(libs, 2) == libs
