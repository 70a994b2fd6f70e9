#!/usr/bin/env python3
"""Redis's own time per call of the Lua scripts: one git revision against the working tree.

    .venv/bin/python benchmarks/script_ab.py --base HEAD~1 add     # one add_job call
    .venv/bin/python benchmarks/script_ab.py --base HEAD~1 bulk    # add_job of 100, per job
    .venv/bin/python benchmarks/script_ab.py --base HEAD~1 drain   # fetch + complete, per job
    .venv/bin/python benchmarks/script_ab.py --base HEAD~1 mix     # scenario (f)'s jobs, per job

Changes to the scripts are worth a few microseconds of Redis time each, which a whole-system
run (run.py, scaling.py) cannot tell from this VM's noise. This loads both versions of the
scripts into one private redis-server and calls them in interleaved blocks (A B, B A, ...),
reading Redis's time per call from ``INFO commandstats`` after each block, so a drift of the
machine's speed falls on both alike. Each version's scripts are built by its own loader
(``storage/scripts.py`` at that revision, run from a checkout of it), so a change to what the
loader writes into a script is measured too. Each figure is the median over blocks (min after
it), and the verdict the median of B/A within each pair of neighbouring blocks, with its
middle half: run A against A (``--base HEAD`` with a clean tree) first to see how far that
moves on its own.

* ``add``: ``add_job`` for one job with default options, 1,000 calls per block.
* ``bulk``: ``add_job`` for 100 jobs with default options in one call (as ``add_bulk`` sends
  them), 20 calls per block; Redis's time per job.
* ``drain``: 2,000 jobs are bulk-added (not timed), then ``fetch`` 100 at a time and
  ``complete`` each batch; Redis's time for both scripts per job. Completed jobs accumulate
  past ``keep_completed``, so the trimming of old ones is part of the figure, as in a drain.
* ``mix``: as ``drain``, for jobs with the options of run.py's realistic mix (harness/mix.py:
  priority 0-3, 2 attempts with a fixed backoff of 0, every tenth fails once and is retried at
  once through ``fail``, each result ``{"i": n}`` stored), bulk-added through each version's
  own ``add_job`` (timed too) with the options as that version's client stores them; the mix's
  delays are left out (a block would wait for them). Redis's time for all four scripts per job.

A is ``--base`` (default HEAD), B the working tree; B/A below 1 means the change saves time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import orjson  # noqa: E402
import redis  # noqa: E402
from harness import mix  # noqa: E402
from harness.base_tree import BaseTree  # noqa: E402
from harness.redis_server import RedisServer  # noqa: E402

from conveyor import Backoff, SyncQueue  # noqa: E402
from conveyor.storage.scripts import ScriptSettings, build_source  # noqa: E402

FETCH_ROUND = 100
JOBS_PER_DRAIN_BLOCK = 2000
CALLS_PER_ADD_BLOCK = 1000
JOBS_PER_BULK_CALL = 100
CALLS_PER_BULK_BLOCK = 20
_FETCH_FIELDS = 11


def git_show(revision: str, path: str) -> str:
    """The file at ``path`` (from the repository's root) as it was at ``revision``."""
    return subprocess.run(
        ["git", "show", f"{revision}:{path}"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout


#: The scripts a block calls.
SCRIPTS = ("add_job", "fetch", "complete", "fail")
#: Run in a checkout's src/: the sources its own loader builds (argv: the names, the settings,
#: as JSON).
_BUILD = """
import json, sys
from conveyor.storage.scripts import build_source
names, settings = json.loads(sys.argv[1]), tuple(tuple(pair) for pair in json.loads(sys.argv[2]))
print(json.dumps({name: build_source(name, settings) for name in names}))
"""


def sources_at(revision: str, settings: ScriptSettings) -> dict[str, str]:
    """The scripts of ``SCRIPTS`` as the loader at ``revision`` builds them."""
    with BaseTree(revision) as tree:
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                _BUILD,
                orjson.dumps(SCRIPTS).decode(),
                orjson.dumps(settings).decode(),
            ],
            env={**os.environ, "PYTHONPATH": str(tree.src)},
            check=True,
            capture_output=True,
            text=True,
        )
    return orjson.loads(proc.stdout)  # type: ignore[no-any-return]


def working_tree_sources(settings: ScriptSettings) -> dict[str, str]:
    return {name: build_source(name, settings) for name in SCRIPTS}


def mix_opts(revision: str | None) -> str:
    """The opts of a mix job as the client at `revision` (None: the working tree) stores them:
    the backoff as a short list since ``Backoff.to_stored``, a dict before."""
    policy = Backoff.fixed(0)
    path = "src/conveyor/backoff.py"
    source = (REPO / path).read_text("utf-8") if revision is None else git_show(revision, path)
    stored = policy.to_stored() if "def to_stored" in source else policy.to_dict()
    return orjson.dumps({"backoff": stored}).decode()


def evalsha_usec(client: redis.Redis) -> tuple[float, int]:
    stats = client.info("commandstats").get("cmdstat_evalsha", {"usec": 0, "calls": 0})
    return float(stats["usec"]), int(stats["calls"])


class Version:
    def __init__(
        self, client: redis.Redis, queue: SyncQueue, sources: dict[str, str], opts: str
    ) -> None:
        self.client = client
        self.keys = list(queue.commands.keys.script_keys)
        self.opts = opts
        self.sha = {name: client.script_load(source) for name, source in sources.items()}

    def call(self, name: str, *args: object) -> object:
        return self.client.evalsha(self.sha[name], len(self.keys), *self.keys, *args)

    def add_block(self) -> float:
        """Redis µs per add_job call."""
        for i in range(CALLS_PER_ADD_BLOCK):
            self.call("add_job", "", "noop", f'{{"i":{i}}}')
        usec, calls = evalsha_usec(self.client)
        return usec / calls

    def bulk_block(self) -> float:
        """Redis µs per job of add_job calls of ``JOBS_PER_BULK_CALL`` jobs."""
        for _ in range(CALLS_PER_BULK_BLOCK):
            jobs = [["", "noop", f'{{"i":{i}}}'] for i in range(JOBS_PER_BULK_CALL)]
            self.call("add_job", orjson.dumps(jobs))
        usec, calls = evalsha_usec(self.client)
        return usec / (calls * JOBS_PER_BULK_CALL)

    def drain_block(self) -> float:
        """Redis µs per job for fetch + complete."""
        # Added by this version's add_job (not timed): where a job waits is the version's own.
        for start in range(0, JOBS_PER_DRAIN_BLOCK, JOBS_PER_BULK_CALL):
            jobs = [["", "noop", f'{{"i":{i}}}'] for i in range(start, start + JOBS_PER_BULK_CALL)]
            self.call("add_job", orjson.dumps(jobs))
        self.client.config_resetstat()
        done = 0
        while True:
            reply = self.call("fetch", "script-ab", FETCH_ROUND)
            assert isinstance(reply, list)
            # A named header, then the jobs (the scripts before it began with three numbers).
            body = reply[1:] if isinstance(reply[0], list) else reply[3:]
            count = len(body) // _FETCH_FIELDS
            if count == 0:
                break
            items = [
                [body[i * _FETCH_FIELDS].decode(), body[i * _FETCH_FIELDS + 1].decode(), "null", 1]
                for i in range(count)
            ]
            lost = self.call("complete", orjson.dumps(items))
            if lost:
                raise SystemExit(f"complete reported lost leases {lost!r}: the versions disagree")
            done += count
        if done != JOBS_PER_DRAIN_BLOCK:
            raise SystemExit(f"drained {done} of {JOBS_PER_DRAIN_BLOCK} jobs")
        usec, _ = evalsha_usec(self.client)
        return usec / done

    def mix_block(self) -> float:
        """Redis µs per job for add_job + fetch + complete + fail, scenario (f)'s jobs."""
        self.client.config_resetstat()
        for start in range(0, JOBS_PER_DRAIN_BLOCK, FETCH_ROUND):
            jobs = []
            for i in range(start, start + FETCH_ROUND):
                data = {"i": i, "fail": True} if mix.spec(i).fail else {"i": i}
                jobs.append(["", "mix", orjson.dumps(data).decode(), self.opts, 2,
                             mix.spec(i).priority, 0, 0])  # fmt: skip
            self.call("add_job", orjson.dumps(jobs))
        done = 0
        while True:
            reply = self.call("fetch", "script-ab", FETCH_ROUND)
            assert isinstance(reply, list)
            body = reply[1:]
            count = len(body) // _FETCH_FIELDS
            if count == 0:
                break
            items = []
            for n in range(count):
                job_id, token, _name, data = (
                    f.decode() for f in body[n * _FETCH_FIELDS : n * _FETCH_FIELDS + 4]
                )
                made = int(body[n * _FETCH_FIELDS + 6] or 0)
                decoded = orjson.loads(data)
                if decoded.get("fail") and made == 0:
                    record = orjson.dumps({"attempt": 1, "error": "FailOnce: fails once"})
                    self.call("fail", job_id, token, "FailOnce: fails once", record, 0)
                    continue
                result = orjson.dumps({"i": decoded["i"]}).decode()
                items.append([job_id, token, result, made + 1])
            if items and self.call("complete", orjson.dumps(items)):
                raise SystemExit("complete reported lost leases: the versions disagree")
            done += len(items)
        if done != JOBS_PER_DRAIN_BLOCK:
            raise SystemExit(f"drained {done} of {JOBS_PER_DRAIN_BLOCK} jobs")
        usec, _ = evalsha_usec(self.client)
        return usec / done


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("what", choices=["add", "bulk", "drain", "mix"])
    ap.add_argument("--base", default="HEAD", help="git revision for A (default HEAD)")
    ap.add_argument("--blocks", type=int, default=21, help="blocks per version (default 21)")
    args = ap.parse_args()
    if args.blocks < 2:
        ap.error("--blocks must be at least 2 (the verdict compares pairs of blocks)")
    server = RedisServer()
    try:
        queue = SyncQueue("script-ab", url=server.url)
        settings = queue.commands.script_settings
        try:
            base_sources = sources_at(args.base, settings)
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", None) or exc
            print(f"cannot read the scripts at {args.base!r}: {detail}", file=sys.stderr)
            return 2
        client = redis.Redis.from_url(server.url)
        versions = {
            "A": Version(client, queue, base_sources, mix_opts(args.base)),
            "B": Version(client, queue, working_tree_sources(settings), mix_opts(None)),
        }
        figures: dict[str, list[float]] = {"A": [], "B": []}
        for block in range(args.blocks):
            for label in ("A", "B") if block % 2 == 0 else ("B", "A"):
                client.config_resetstat()
                version = versions[label]
                if args.what == "add":
                    figure = version.add_block()
                elif args.what == "bulk":
                    figure = version.bulk_block()
                elif args.what == "drain":
                    figure = version.drain_block()
                else:
                    figure = version.mix_block()
                figures[label].append(figure)
        queue.close()
        client.close()
    finally:
        server.stop()

    unit = {
        "add": "per add_job call",
        "bulk": f"per job of add_job calls of {JOBS_PER_BULK_CALL}",
        "drain": "per job (fetch + complete)",
        "mix": "per mix job (add_job + fetch + complete + fail)",
    }[args.what]
    print(f"Redis µs {unit}, median (min) of {args.blocks} interleaved blocks")
    for label, where in (("A", args.base), ("B", "working tree")):
        values = figures[label]
        print(f"  {label} {where}: {statistics.median(values):.2f} ({min(values):.2f})")
    # Each block of B ran next to one of A: the ratio within each pair cancels the slower drift.
    pairs = sorted(b / a for a, b in zip(figures["A"], figures["B"], strict=True))
    quartiles = statistics.quantiles(pairs, n=4)
    print(
        f"  B/A within each pair of blocks: median {statistics.median(pairs):.3f} "
        f"(middle half {quartiles[0]:.3f}-{quartiles[2]:.3f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
