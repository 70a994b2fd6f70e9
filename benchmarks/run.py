#!/usr/bin/env python3
"""Conveyor vs the Python job-queue field.

    python benchmarks/run.py [--jobs N] [--repeat 3] [--only conveyor,arq,...] [--quick]
    python benchmarks/run.py --only conveyor --base REV --scenarios drain_noop,latency

See benchmarks/README.md for the method.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
#: the code this tree's Conveyor rows run
THIS_SRC = BENCH_DIR.parent / "src"
sys.path.insert(0, str(BENCH_DIR))

from harness import report, runtimes, versus  # noqa: E402
from harness.base_tree import BaseTree, adapter_name, base_label, imported_elsewhere  # noqa: E402
from harness.redis_server import RedisServer  # noqa: E402
from harness.scenario import PRODUCER_LOOPS  # noqa: E402
from harness.venv import ensure_peers_venv, peers_python  # noqa: E402

LIBRARIES = [
    "conveyor",
    "arq",
    "saq",
    "streaq",
    "taskiq",
    "rq",
    "celery",
    "dramatiq",
    "huey",
    "bullmq",
    # peers in other languages (harness/runtimes.py): their producers and workers are theirs
    "bullmq_node",
    "bull",
    "beequeue",
    "kue",
    "sidekiq",
    report.SUBJECT_SYNC,
    report.BASELINE,
    report.BASELINE_SYNC,
]
#: the scenarios of the rows that measure a producer only (report.ENQUEUE_ONLY)
PRODUCER_ONLY = ("enqueue", "enqueue_concurrent")
#: Scenario (f)'s N per --jobs: its jobs' delays (up to 1 s after each add) must not bound the
#: fastest drain, or the figure is the delays' (at 3 x 10,000 Conveyor's drain of 0.84 s ended
#: when its last delayed job fell due).
MIX_JOBS_PER_JOB = 9
SCENARIOS = [
    "enqueue",
    "enqueue_concurrent",
    "bulk",
    "drain_noop",
    "drain_sleep",
    "latency",
    "drain_limited",  # Conveyor only: flow control (see harness/scenario.py)
    "drain_groups",
    "drain_mix",
]
#: library -> scenario -> the result of each run, in order
Raw = dict[str, dict[str, list[dict[str, Any]]]]


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--jobs", type=int, help="N jobs per scenario (default 10000; quick 500)")
    ap.add_argument("--sleep-jobs", type=int, help="N for scenario (d) (default: --jobs)")
    ap.add_argument(
        "--mix-jobs",
        type=int,
        help=f"N for scenario (f) (default: {MIX_JOBS_PER_JOB} x --jobs, so that its 1 s of delays "
        "bound it less)",
    )
    ap.add_argument("--repeat", type=int, help="repeats per figure (default 3; quick 1)")
    ap.add_argument("--only", help="comma-separated libraries: " + ",".join(LIBRARIES))
    ap.add_argument(
        "--scenarios",
        help="comma-separated scenarios to run (default all): " + ",".join(SCENARIOS),
    )
    ap.add_argument("--quick", action="store_true", help="small N, repeat 1, 3 s latency run")
    ap.add_argument("--timeout", type=float, default=120.0, help="per-scenario timeout (s)")
    ap.add_argument("--rate", type=float, default=200.0, help="latency scenario jobs/s")
    ap.add_argument("--duration", type=float, help="latency scenario seconds (default 10)")
    ap.add_argument("--workers", type=int, default=2, choices=[1, 2], help="worker processes")
    ap.add_argument(
        "--producer-loop",
        choices=PRODUCER_LOOPS,
        default="uvloop",
        help="the event loop of the Python producers (default uvloop, as their workers run)",
    )
    ap.add_argument(
        "--base",
        metavar="REV",
        help="also run Conveyor's rows on git revision REV (rows conveyor@REV), interleaved",
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=BENCH_DIR / "results",
        help="where latest.md and latest.json go (default benchmarks/results)",
    )
    args = ap.parse_args()
    args.jobs = args.jobs or (500 if args.quick else 10_000)
    args.sleep_jobs = args.sleep_jobs or args.jobs
    args.mix_jobs = args.mix_jobs or MIX_JOBS_PER_JOB * args.jobs
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.duration = args.duration or (3.0 if args.quick else 10.0)
    chosen = [x.strip() for x in (args.scenarios or ",".join(SCENARIOS)).split(",") if x.strip()]
    unknown = [x for x in chosen if x not in SCENARIOS]
    if unknown or not chosen:
        ap.error(f"unknown scenarios {unknown}; choose from {','.join(SCENARIOS)}")
    args.scenarios = [x for x in SCENARIOS if x in chosen]
    return args


@functools.cache
def can_import(python: str, module: str) -> bool:
    proc = subprocess.run([python, "-c", f"import {module}"], capture_output=True)
    return proc.returncode == 0


def interpreter_for(lib: str) -> str:
    """Conveyor's rows run from this interpreter; so do the LPUSH baselines when it has redis."""
    lib = adapter_name(lib)
    if lib in (report.SUBJECT, report.SUBJECT_SYNC):
        return sys.executable
    # The LPUSH baselines, and the harness side of a peer in another language (it needs only
    # redis-py), run from this interpreter when it has redis.
    driven = (report.BASELINE, report.BASELINE_SYNC, *runtimes.RUNTIMES)
    if lib in driven and can_import(sys.executable, "redis"):
        return sys.executable
    return str(peers_python())


def scenarios_for(lib: str, chosen: list[str]) -> list[str]:
    return [x for x in chosen if x in PRODUCER_ONLY or adapter_name(lib) not in report.ENQUEUE_ONLY]


def with_base(libs: list[str], rev: str, chosen: list[str]) -> list[str]:
    """`libs` with a row `X@rev` right after each Conveyor row X that runs a chosen scenario."""
    out = []
    for lib in libs:
        out.append(lib)
        if lib in (report.SUBJECT, report.SUBJECT_SYNC) and scenarios_for(lib, chosen):
            out.append(base_label(lib, rev))
    return out


def run_scenario(
    python: str,
    lib: str,
    scenario: str,
    extra: list[str],
    timeout: float,
    src: Path | None = None,
) -> dict[str, Any]:
    """Run harness.scenario in its own process group; kill the whole group afterwards.
    `src` (see source_of) goes first on PYTHONPATH, for the runner and its workers."""
    cmd = [python, "-m", "harness.scenario", adapter_name(lib), scenario, *extra]
    path = [str(src)] if src else []
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*path, str(BENCH_DIR)]))
    proc = subprocess.Popen(
        cmd,
        cwd=BENCH_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        text=True,
    )
    result: dict[str, Any]
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        result = {"status": "timeout", "detail": f"timeout (>{timeout:.0f}s, killed)"}
    else:
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        if lines:
            try:
                result = json.loads(lines[-1])
            except ValueError:
                result = {"status": "error", "detail": f"unreadable result: {lines[-1][:200]}"}
        else:
            tail = [ln for ln in err.splitlines() if ln.strip()]
            detail = tail[-1] if tail else f"exit {proc.returncode}"
            result = {"status": "error", "detail": detail[:300]}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the group we created: runner + its workers
        proc.wait()
    return result


def scenario_args(args: argparse.Namespace, scenario: str, url: str) -> list[str]:
    n = {"drain_sleep": args.sleep_jobs, "drain_mix": args.mix_jobs}.get(scenario, args.jobs)
    return [
        "--url",
        url,
        "--n",
        str(n),
        "--workers",
        str(args.workers),
        "--rate",
        str(args.rate),
        "--duration",
        str(args.duration),
        "--timeout",
        str(args.timeout),
        "--loop",
        args.producer_loop,
    ]


def check_library(
    python: str, lib: str, venv_error: str | None, src: Path | None = None, skip: str = ""
) -> dict[str, Any]:
    """Once per library, before any run: does it import, and which version/settings.
    `skip`: why its runtime (Node, Ruby) is missing; the library is then skipped."""
    if skip:
        return {"status": "skipped", "detail": skip}
    if venv_error and python != sys.executable:
        return {"status": "error", "detail": venv_error}
    return verified(run_scenario(python, lib, "check", [], 60, src), src)


def verified(res: dict[str, Any], src: Path | None) -> dict[str, Any]:
    """A Conveyor row's result, or an error if any of its processes imported other code than
    its `src`."""
    wrong = imported_elsewhere(res, src) if src and res.get("status") == "ok" else None
    if wrong is None:
        return res
    return {**res, "status": "error", "detail": f"imported {wrong}, not {src}"}


def run_once(
    lib: str,
    python: str,
    check: dict[str, Any],
    scenario: str,
    args: argparse.Namespace,
    server: RedisServer,
    src: Path | None = None,
) -> dict[str, Any]:
    """One run of one scenario on a flushed server (or the check's failure)."""
    if check.get("status") != "ok":
        status = "skipped" if check.get("status") == "skipped" else "error"
        return {"status": status, "detail": check.get("detail", "")}
    try:
        server.flush()
    except (OSError, RuntimeError) as exc:
        return {"status": "error", "detail": f"could not reset Redis before the run: {exc}"}
    t0 = time.monotonic()
    # A scenario waits at most --timeout at each of its waits (workers ready, warm-up, the
    # jobs or samples): the budget leaves room for all three, so a stuck library's cell says
    # which wait it was stuck in rather than just "killed".
    budget = args.timeout * 3 + 60 + (args.duration if scenario == "latency" else 0)
    extra = scenario_args(args, scenario, server.url)
    res = verified(run_scenario(python, lib, scenario, extra, budget, src), src)
    res["wall_s"] = round(time.monotonic() - t0, 2)
    return res


def source_of(lib: str, base: BaseTree | None) -> Path | None:
    """The src/ a row's processes import Conveyor from: the base's checkout for a base row,
    this tree's for Conveyor's own rows (an installed conveyor elsewhere on the path, such as
    another checkout's editable install, must not stand in for it), none for a peer."""
    if base and adapter_name(lib) != lib:
        return base.src
    if lib in (report.SUBJECT, report.SUBJECT_SYNC):
        return THIS_SRC
    return None


def bench_all(
    libs: list[str],
    args: argparse.Namespace,
    server: RedisServer,
    venv_error: str | None,
    progress: Callable[[dict[str, dict[str, Any]], Raw], None],
    base: BaseTree | None = None,
    skips: dict[str, str] | None = None,
) -> tuple[dict[str, dict[str, Any]], Raw]:
    """Check every library once, then run interleaved: for each repeat, every library's
    scenarios once, so that speed drift of the machine spreads over all libraries. After
    each run `progress` gets what is known so far. Rows of `base` run its source tree."""
    pythons = {lib: interpreter_for(lib) for lib in libs}
    srcs = {lib: source_of(lib, base) for lib in libs}
    skips = skips or {}
    info = {
        lib: check_library(pythons[lib], lib, venv_error, srcs[lib], skips.get(lib, ""))
        for lib in libs
    }
    for lib in libs:
        if base and adapter_name(lib) in (report.SUBJECT, report.SUBJECT_SYNC):
            info[lib]["source"] = base.describe(base_row=adapter_name(lib) != lib)
    raw: Raw = {lib: {s: [] for s in scenarios_for(lib, args.scenarios)} for lib in libs}
    for r in range(args.repeat):
        for lib in versus.repeat_order(libs, r):
            for scenario in scenarios_for(lib, args.scenarios):
                res = run_once(lib, pythons[lib], info[lib], scenario, args, server, srcs[lib])
                raw[lib][scenario].append(res)
                shown = {k: round(v, 2) if isinstance(v, float) else v for k, v in res.items()}
                print(f"[{lib}] {scenario} #{r + 1}: {shown}", file=sys.stderr, flush=True)
                progress(info, raw)
    return info, raw


def write_report(
    args: argparse.Namespace,
    redis_version: str,
    info: dict[str, dict[str, Any]],
    raw: Raw,
    complete: bool,
    base: BaseTree | None = None,
) -> str:
    """Write latest.md and latest.json from the runs so far; returns the markdown."""
    meta = {
        "machine": report.machine_info(redis_version),
        "complete": complete,
        "jobs": args.jobs,
        "sleep_jobs": args.sleep_jobs,
        "mix_jobs": args.mix_jobs,
        "repeat": args.repeat,
        "workers": args.workers,
        "rate": args.rate,
        "duration": args.duration,
        "timeout": args.timeout,
        "quick": args.quick,
        "scenarios": args.scenarios,
    }
    rows: list[str] = []
    notes: list[str] = []
    compared: dict[str, dict[str, Any]] = {}
    if base:
        meta["base"] = base.meta()
        rows, notes, compared = versus.report_parts(meta["base"], info, raw)
    table = {lib: report.summaries(raw[lib]) for lib in raw}
    md = report.markdown(meta, table, info, rows, notes)
    out_dir = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "meta": meta,
        "libraries": info,
        "summary": table,
        "ratios": report.ratios(table, report.SUBJECT),
        "summary_extra": report.summary_extra(table),
        **({"versus_base": compared} if base else {}),
        "runs": raw,
    }
    # Written after every run: a run that dies half-way still leaves what it measured.
    (out_dir / "latest.md").write_text(md)
    (out_dir / "latest.json").write_text(json.dumps(payload, indent=2) + "\n")
    return md


def main() -> int:
    args = parse_args()
    libs = LIBRARIES if not args.only else [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = [x for x in libs if x not in LIBRARIES]
    if unknown:
        print(f"unknown libraries: {unknown}; choose from {LIBRARIES}", file=sys.stderr)
        return 2
    if args.base:
        libs = with_base(libs, args.base, args.scenarios)
        if not any(adapter_name(lib) != lib for lib in libs):
            print("--base: neither conveyor nor conveyor_sync (enqueue) runs", file=sys.stderr)
            return 2
    # A kill ends the run through the `finally`s and `with`s: Redis stops, the worktree goes.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _: sys.exit(128 + signum))
    with contextlib.ExitStack() as stack:
        base = None
        if args.base:
            try:
                base = stack.enter_context(BaseTree(args.base))
            except RuntimeError as exc:
                print(f"--base {args.base}: {exc}", file=sys.stderr)
                return 2
            print(f"base {args.base} = {base.commit} in {base.path}", file=sys.stderr)
        try:
            run(args, libs, base)
        except KeyboardInterrupt:
            print(f"interrupted: what was measured is in {args.out}", file=sys.stderr)
            return 130
    return 0


def run(args: argparse.Namespace, libs: list[str], base: BaseTree | None) -> None:
    venv_error = None
    if any(interpreter_for(lib) != sys.executable for lib in libs):
        venv_error = ensure_peers_venv()
    skips = runtimes.prepare(libs)  # npm ci / apt-get ruby-sidekiq; why a peer cannot run
    for lib, why in skips.items():
        print(f"skipping {lib}: {why}", file=sys.stderr)

    server = RedisServer()
    redis_version = server.version()
    print(f"redis-server {redis_version} on {server.url}", file=sys.stderr)
    try:
        info, raw = bench_all(
            libs,
            args,
            server,
            venv_error,
            lambda info, raw: write_report(args, redis_version, info, raw, False, base),
            base,
            skips,
        )
    finally:
        server.stop()
    print(write_report(args, redis_version, info, raw, True, base))
    print(f"wrote {args.out / 'latest.md'} and latest.json", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
