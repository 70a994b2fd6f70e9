#!/usr/bin/env python3
"""The client's cost of one awaited ``Queue.add``: one git revision against the working tree.

    .venv/bin/python benchmarks/add_ab.py --base HEAD~1            # Queue.add, default loop
    .venv/bin/python benchmarks/add_ab.py --base HEAD~1 --uvloop   # the same on uvloop
    .venv/bin/python benchmarks/add_ab.py --base HEAD~1 --sync     # SyncQueue.add

A change to the client's hot path is worth a few microseconds per add, which run.py's scenario
(a) cannot tell from this VM's noise. This checks ``--base`` out (as run.py's ``--base`` does)
and runs rounds of one process per version (A B, B A, ...) on one private redis-server, each
process with its version's ``src/`` first on ``PYTHONPATH``: 50 adds to warm up, then
``--calls`` awaited adds (one at a time, ``{"i": n, "t": time}`` payloads) in 3 blocks, of
which the fastest counts. Two figures per process: wall microseconds per add (round trip and
Redis included) and the process's own CPU microseconds per add (``time.process_time``: the
client's cost, less moved by the other work on the machine). Each figure is the median over
rounds (min after it); the verdict is the median of B/A within each round, with its middle
half. Run A against A (``--base HEAD`` on a clean tree) first to see how far that moves alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
WARM_UP = 50
BLOCKS = 3


def child(url: str, calls: int, flavour: str) -> None:
    """One version's process: print its figures as one JSON line."""
    import asyncio

    import conveyor
    from conveyor import Queue, SyncQueue

    figures: list[tuple[float, float]] = []  # (wall, CPU) µs per add of each block

    def started() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def ended(wall: float, cpu: float) -> None:
        figures.append(
            ((time.perf_counter() - wall) / calls * 1e6, (time.process_time() - cpu) / calls * 1e6)
        )

    if flavour == "sync":
        sync_queue = SyncQueue("add-ab", url=url)
        for n in range(-WARM_UP, 0):
            sync_queue.add("noop", {"i": n, "t": time.time()})
        for _ in range(BLOCKS):
            wall, cpu = started()
            for n in range(calls):
                sync_queue.add("noop", {"i": n, "t": time.time()})
            ended(wall, cpu)
        sync_queue.close()
    else:

        async def adds() -> None:
            queue = Queue("add-ab", url=url)
            for n in range(-WARM_UP, 0):
                await queue.add("noop", {"i": n, "t": time.time()})
            for _ in range(BLOCKS):
                wall, cpu = started()
                for n in range(calls):
                    await queue.add("noop", {"i": n, "t": time.time()})
                ended(wall, cpu)
            await queue.close()

        if flavour == "uvloop":
            import uvloop

            uvloop.run(adds())
        else:
            asyncio.run(adds())
    wall = min(w for w, _ in figures)
    cpu = min(c for _, c in figures)
    print(json.dumps({"origin": conveyor.__file__, "wall": wall, "cpu": cpu}))


def one_process(src: Path, url: str, calls: int, flavour: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(src), str(BENCH_DIR)]))
    cmd = [sys.executable, __file__, "--child", url, "--calls", str(calls), "--flavour", flavour]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"a run of {src} failed:\n{proc.stderr}")
    found: dict[str, float] = json.loads(proc.stdout.splitlines()[-1])
    origin = Path(str(found["origin"])).resolve()
    if not origin.is_relative_to(src.resolve()):
        raise SystemExit(f"a run meant for {src} imported conveyor from {origin}")
    return found


def summary(label: str, values: list[float]) -> str:
    return f"{label} {statistics.median(values):.1f} ({min(values):.1f})"


def verdict(a: list[float], b: list[float]) -> str:
    pairs = sorted(y / x for x, y in zip(a, b, strict=True))
    quartiles = statistics.quantiles(pairs, n=4)
    return (
        f"median {statistics.median(pairs):.3f} (middle half {quartiles[0]:.3f}-{quartiles[2]:.3f})"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--base", default="HEAD", help="git revision for A (default HEAD)")
    ap.add_argument("--rounds", type=int, default=10, help="processes per version (default 10)")
    ap.add_argument("--calls", type=int, default=2000, help="adds per block (default 2000)")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--uvloop", action="store_true", help="Queue.add on uvloop")
    group.add_argument("--sync", action="store_true", help="SyncQueue.add instead")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--flavour", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.calls, args.flavour)
        return 0
    if args.rounds < 2:
        ap.error("--rounds must be at least 2 (the verdict compares rounds)")
    flavour = "sync" if args.sync else "uvloop" if args.uvloop else "asyncio"
    sys.path.insert(0, str(BENCH_DIR))
    from harness.base_tree import BaseTree
    from harness.redis_server import RedisServer

    try:
        base = BaseTree(args.base)
    except RuntimeError as exc:
        print(f"cannot resolve {args.base!r}: {exc}", file=sys.stderr)
        return 2
    figures: dict[str, dict[str, list[float]]] = {
        side: {"wall": [], "cpu": []} for side in ("A", "B")
    }
    server = RedisServer()
    try:
        with base:
            sources = {"A": base.src, "B": REPO / "src"}
            for round_ in range(args.rounds):
                for side in ("A", "B") if round_ % 2 == 0 else ("B", "A"):
                    server.flush()
                    found = one_process(sources[side], server.url, args.calls, flavour)
                    for key in ("wall", "cpu"):
                        figures[side][key].append(found[key])
    finally:
        server.stop()

    what = "SyncQueue.add" if args.sync else f"awaited Queue.add (on {flavour})"
    print(f"µs per {what}, median (min) of {args.rounds} rounds, fastest of {BLOCKS} blocks each")
    for side, where in (("A", f"{args.base} ({base.commit[:10]})"), ("B", "working tree")):
        wall, cpu = figures[side]["wall"], figures[side]["cpu"]
        print(f"  {side} {where}: {summary('wall', wall)}, {summary('client CPU', cpu)}")
    for key, label in (("wall", "wall"), ("cpu", "client CPU")):
        print(f"  B/A {label} within each round: {verdict(figures['A'][key], figures['B'][key])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
