"""benchmarks/run.py with a peer in another language: BullMQ for Node runs its own producer
and workers and fills its cells, scenario (f) adds its column; without node on PATH the row is
skipped with the reason and the rest of the run goes on. A machine without node, or ruby with
Sidekiq, skips those peers' tests locally and fails them under CI (tests/support/prerequisites.py;
scripts/setup installs both)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.prerequisites import missing

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from harness import runtimes

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"


def run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[str, dict]:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--repeat", "1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=280,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return (tmp_path / "latest.md").read_text(), json.loads((tmp_path / "latest.json").read_text())


def cells(md: str, first: str) -> list[str]:
    row = next(line for line in md.splitlines() if line.startswith(f"| {first} |"))
    return [cell.strip() for cell in row.strip("|").split("|")][2:]


@pytest.mark.timeout(300)
def test_bullmq_for_node_fills_its_row_and_the_mix_column(tmp_path: Path) -> None:
    why = runtimes.prepare(["bullmq_node"]).get("bullmq_node")
    if why:
        missing(why)
    scenarios = "enqueue,enqueue_concurrent,drain_noop,latency,drain_mix"
    md, data = run(
        tmp_path,
        *("--only", "conveyor,bullmq_node", "--scenarios", scenarios),
        *("--jobs", "300", "--duration", "1"),
    )
    assert "(f) realistic mix jobs/s" in md
    enqueue, concurrent, bulk, drain, sleep, p50, p99, mixed = cells(md, "bullmq_node")
    for figure in (enqueue, concurrent, drain, p50, p99, mixed):
        assert float(figure.replace(",", "")) > 0, md
    assert bulk == sleep == "-"
    assert float(cells(md, "conveyor")[-1].replace(",", "")) > 0, md
    run_ = data["runs"]["bullmq_node"]["enqueue_concurrent"][0]
    assert run_["producers"] == 100 and run_["threads"] is False
    assert data["libraries"]["bullmq_node"]["version"].startswith("6."), data["libraries"]
    assert data["runs"]["bullmq_node"]["latency"][0]["samples"] == 200
    assert data["ratios"]["drain_mix"]["best_peer"] == "bullmq_node"


@pytest.mark.timeout(200)
def test_without_node_the_row_is_skipped_and_says_why(tmp_path: Path) -> None:
    redis_server = shutil.which("redis-server")
    assert redis_server, "redis-server is needed by the benchmark"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "redis-server").symlink_to(redis_server)  # and nothing else: no node, no npm
    env = dict(os.environ, PATH=str(bin_dir))
    md, data = run(
        tmp_path,
        *("--only", "conveyor,bullmq_node", "--scenarios", "enqueue,drain_noop"),
        *("--jobs", "200"),
        env=env,
    )
    assert cells(md, "bullmq_node")[0] == cells(md, "bullmq_node")[3] == "skipped"
    assert "- **bullmq_node**: skipped: node/npm not found on PATH" in md
    assert float(cells(md, "conveyor")[0].replace(",", "")) > 0
    assert data["runs"]["bullmq_node"]["enqueue"][0]["status"] == "skipped"


@pytest.mark.timeout(300)
def test_sidekiq_runs_its_ruby_producer_threads_and_workers(tmp_path: Path) -> None:
    if not runtimes.sidekiq_loads():  # the test installs nothing; run.py's setup would
        missing("ruby with sidekiq not installed (Debian's ruby-sidekiq; scripts/setup)")
    scenarios = "enqueue,enqueue_concurrent,bulk,drain_noop,drain_mix"
    md, data = run(tmp_path, *("--only", "sidekiq", "--scenarios", scenarios), *("--jobs", "300"))
    enqueue, concurrent, bulk, drain, *_ = cells(md, "sidekiq")
    for figure in (enqueue, concurrent, bulk, drain):
        assert float(figure.replace(",", "")) > 0, md
    run_ = data["runs"]["sidekiq"]["enqueue_concurrent"][0]
    assert run_["producers"] == 16 and run_["threads"] is True
    assert data["runs"]["sidekiq"]["drain_mix"][0]["status"] == "n/a"
    assert cells(md, "sidekiq")[-1] == "n/a"  # (f) was run: its column says it cannot
    assert data["libraries"]["sidekiq"]["version"].startswith("6.4")
    assert "- **sidekiq**: keeps nothing of a finished job" in md  # under the table
