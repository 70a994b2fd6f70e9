#!/usr/bin/env python3
"""Chaos soak: enqueue N jobs, run them on 4 worker processes that are killed, stopped and frozen
at random, kill Redis once, and count what was lost, run twice, failed or left pending.

    python benchmarks/soak.py                 # 100,000 jobs
    python benchmarks/soak.py --ci            # 10,000 jobs, the short form tests/fault runs
    python benchmarks/soak.py --jobs 20000 --seed 7 --json result.json

The ledger is SQLite, outside the Redis under test: the producer records each job id once its
enqueue was acknowledged; each worker process writes one row per start and one per execution to
its own SQLite file (committed inside the handler, before the job is acknowledged). Redis runs
with AOF ``appendfsync always`` in a temporary directory; it is SIGKILLed once, mid-run, and
restarted.

Chaos, every ``--chaos-interval`` seconds on a random worker: SIGKILL (60 %), SIGTERM (25 %) or
SIGSTOP for two lease periods then SIGCONT (15 %). A supervisor restarts every worker that exits.

Figures (Jepsen's queue checker vocabulary):
  lost        acknowledged enqueues that never ran and are no longer in Redis, or are marked
              completed there; counted job by job (must be 0; the first 20 ids in lost_ids)
  duplicated  extra executions of jobs that ran more than once (at-least-once; bounded by the
              jobs in flight at SIGKILL/SIGSTOP)
  failed      jobs in Conveyor's failed set (e.g. stalled more than max_stalls times)
  pending     acknowledged jobs still waiting/active/delayed when the drain ended
  unexpected  executions of ids the producer never had acknowledged                (must be 0)
  recovery    per SIGKILL and SIGSTOP: seconds from the signal until every job the process
              had in hand started again elsewhere (p50 and max over the kills that had jobs in
              hand; each kill in the JSON). 2 % of the jobs take 0.3-1 s, so most kills do.
Exit status: 0 when lost, pending and unexpected are all 0, else 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "src"), str(REPO)]

QUEUE = "soak"
#: The signals after which the soak times how soon the process's jobs start elsewhere.
RECOVERED_FROM = ("SIGKILL", "SIGSTOP")
#: The share of jobs that take 0.3-1 s instead of 1-5 ms.
LONG_JOB_SHARE = 0.02
PREFIX = "soak"


# -- worker process -------------------------------------------------------------------------------


def worker_main(url: str, ledger_dir: str, concurrency: int, lease: float, grace: float) -> None:
    import logging

    from conveyor import Job, Queue, Worker

    pid = os.getpid()
    db = sqlite3.connect(Path(ledger_dir) / f"runs-{pid}.db", isolation_level=None)
    # A killed process keeps what it committed (the OS has it); only power loss would not.
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("CREATE TABLE IF NOT EXISTS runs (id TEXT, pid INTEGER, t_start REAL, t_end REAL)")
    db.execute("CREATE TABLE IF NOT EXISTS starts (id TEXT, pid INTEGER, t_start REAL)")
    queue = Queue(
        QUEUE,
        url=url,
        prefix=PREFIX,
        lease_seconds=lease,
        max_stalls=20,
        shutdown_grace_seconds=grace,
        socket_timeout_seconds=2.0,
    )

    @queue.handler("soak")
    async def soak(job: Job) -> None:
        started = time.time()
        # Every start, so that a kill's jobs in hand (started, never ended there) are known.
        db.execute("INSERT INTO starts VALUES (?, ?, ?)", (job.id, pid, started))
        # Mostly short jobs; a few long ones, so that a killed worker usually has one in hand.
        long_job = random.random() < LONG_JOB_SHARE
        await asyncio.sleep(random.uniform(0.3, 1.0) if long_job else random.uniform(0.001, 0.005))
        db.execute("INSERT INTO runs VALUES (?, ?, ?, ?)", (job.id, pid, started, time.time()))
        if job.data and job.data.get("fail"):
            raise RuntimeError("fails after it ran, as the checker's self-test asks")

    logging.basicConfig(level=logging.WARNING, format=f"worker {pid} %(levelname)s %(message)s")
    asyncio.run(Worker(queue, concurrency=concurrency).run())


# -- the soak -------------------------------------------------------------------------------------


class Soak:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        from tests.support.redis_server import RedisServer

        self.args = args
        self.rng = random.Random(args.seed)
        self.workdir = workdir
        self.ledger_dir = workdir / "ledger"
        self.ledger_dir.mkdir()
        self.redis = RedisServer(appendonly=True, appendfsync="always").start()
        self.url = self.redis.url
        self.workers: list[subprocess.Popen[bytes]] = []
        self.kills = {"SIGKILL": 0, "SIGTERM": 0, "SIGSTOP": 0, "redis": 0}
        #: (signal name, pid, wall time) of each SIGKILL and SIGSTOP sent
        self.kill_log: list[tuple[str, int, float]] = []
        self.acked = 0
        self.enqueue_errors = 0
        self.sabotaged = 0
        self.producer_done = asyncio.Event()
        self.redis_restarted_at: float | None = None
        self.db = sqlite3.connect(self.ledger_dir / "enqueued.db", isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE enqueued (id TEXT PRIMARY KEY, acked_at REAL)")

    # -- processes ------------------------------------------------------------------------------

    def start_worker(self) -> subprocess.Popen[bytes]:
        a = self.args
        log = open(self.workdir / "workers.log", "ab")  # noqa: SIM115 - shared by all workers
        proc = subprocess.Popen(
            [
                *(sys.executable, __file__, "--worker", self.url, str(self.ledger_dir)),
                *(str(a.concurrency), str(a.lease), str(a.grace)),
            ],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        return proc

    def supervise(self) -> None:
        """Replace every worker that exited (killed, or stopped by SIGTERM)."""
        for i, proc in enumerate(self.workers):
            if proc.poll() is not None:
                self.workers[i] = self.start_worker()

    # -- producer -------------------------------------------------------------------------------

    async def produce(self) -> None:
        from conveyor import Queue
        from conveyor.errors import ConnectionError

        queue = Queue(QUEUE, url=self.url, prefix=PREFIX, socket_timeout_seconds=2.0)
        batch = self.args.batch
        if self.args.sabotage:
            await queue.pause()  # so that the first batch is still waiting when it is sabotaged
        try:
            for start in range(0, self.args.jobs, batch):
                ids = [f"j{n}" for n in range(start, min(start + batch, self.args.jobs))]
                jobs: list[dict[str, Any]] = [{"name": "soak", "job_id": i} for i in ids]
                if self.args.sabotage and start == 0:
                    # As many jobs fail after they ran as are deleted: counts of failed jobs
                    # must not make up for lost ones.
                    for job in jobs[: self.args.sabotage]:
                        job["data"] = {"fail": True}
                while True:
                    try:
                        # Job ids make the retry of a batch whose outcome is unknown idempotent.
                        await queue.add_bulk(jobs)
                        break
                    except ConnectionError:
                        self.enqueue_errors += 1
                        await asyncio.sleep(0.05)  # Redis is down: retry the same batch
                now = time.time()
                self.db.executemany("INSERT INTO enqueued VALUES (?, ?)", [(i, now) for i in ids])
                self.acked += len(ids)
                if self.args.sabotage and start == 0:
                    await self.sabotage(queue)
                if self.args.rate:
                    await asyncio.sleep(len(ids) / self.args.rate)
        finally:
            await queue.close()
            self.producer_done.set()

    async def sabotage(self, queue: Any) -> None:
        """Checker self-test: delete waiting jobs behind Conveyor's back; they count as lost
        (while as many others fail after running, see ``produce``)."""
        keys = queue.commands.keys
        # The newest waiting jobs: the wait list's tail (jobs of priority 0), else the set's.
        want = self.args.sabotage
        popped = list(await queue.redis.command("RPOP", keys.wait_list, want) or [])
        if len(popped) < want:
            popped += await queue.redis.command("ZPOPMAX", keys.wait, want - len(popped))
        ids = [str(item[0] if isinstance(item, list | tuple) else item) for item in popped]
        ids = [i for i in ids if i.startswith("j")]
        if ids:
            await queue.redis.command("DEL", *[keys.job(i) for i in ids])
        self.sabotaged = len(ids)
        await queue.resume()

    # -- chaos ----------------------------------------------------------------------------------

    async def chaos(self, stop: asyncio.Event) -> None:
        lo, hi = self.args.chaos_interval
        redis_killed = False
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.rng.uniform(lo, hi))
            if stop.is_set():
                return
            if not redis_killed and self.acked >= self.args.jobs * 0.4:
                redis_killed = True
                await self.kill_redis()
                continue
            proc = self.rng.choice(self.workers)
            roll = self.rng.random()
            if roll < 0.60:
                self._signal(proc, signal.SIGKILL, "SIGKILL")
            elif roll < 0.85:
                self._signal(proc, signal.SIGTERM, "SIGTERM")
            else:
                self._signal(proc, signal.SIGSTOP, "SIGSTOP")
                await asyncio.sleep(2 * self.args.lease)  # frozen past its lease
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGCONT)

    def _signal(self, proc: subprocess.Popen[bytes], sig: int, name: str) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, sig)
                self.kills[name] += 1
                if name in RECOVERED_FROM:
                    self.kill_log.append((name, proc.pid, time.time()))

    async def kill_redis(self) -> None:
        self.redis.kill()
        self.kills["redis"] += 1
        await asyncio.sleep(self.rng.uniform(0.2, 1.0))  # down for a moment
        await asyncio.to_thread(self.redis.start)  # same port and dir: the AOF is replayed
        self.redis_restarted_at = time.time()

    # -- run ------------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        self.workers = [self.start_worker() for _ in range(self.args.workers)]
        started = time.time()
        stop_chaos = asyncio.Event()
        producer = asyncio.create_task(self.produce())
        chaos = asyncio.create_task(self.chaos(stop_chaos))
        deadline = None
        try:
            while True:
                await asyncio.sleep(0.2)
                self.supervise()
                if not self.producer_done.is_set():
                    continue
                if deadline is None:
                    # Chaos goes on until almost everything ran, then the rest drains in peace.
                    if await self.pending() > self.args.jobs * 0.02:
                        continue
                    deadline = time.time() + self.args.drain_timeout
                    stop_chaos.set()
                    await chaos
                    for proc in self.workers:  # nothing stays frozen
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(proc.pid, signal.SIGCONT)
                if await self.pending() == 0 or time.time() > deadline:
                    break
        finally:
            stop_chaos.set()
            await producer
            with contextlib.suppress(asyncio.CancelledError):
                await chaos
        finished = time.time()
        pending = await self.pending()
        counts = await self.counts()
        self.stop_workers()
        acked = {row[0] for row in self.db.execute("SELECT id FROM enqueued")}
        rows = self.runs()
        never_ran = acked - {job_id for job_id, _, _ in rows}
        return self.report(
            started, finished, pending, counts, acked, rows, await self.whereabouts(never_ran)
        )

    async def counts(self) -> dict[str, int]:
        from conveyor import Queue

        async with Queue(QUEUE, url=self.url, prefix=PREFIX) as queue:
            return await queue.counts()

    async def whereabouts(self, ids: set[str]) -> dict[str, str | None]:
        """Each job's state in Redis now, or None where Redis no longer has the job."""
        from conveyor import Queue

        found: dict[str, str | None] = {}
        ordered = sorted(ids)
        async with Queue(QUEUE, url=self.url, prefix=PREFIX) as queue:
            for start in range(0, len(ordered), 500):
                chunk = ordered[start : start + 500]
                jobs = await asyncio.gather(*(queue.get_job(job_id) for job_id in chunk))
                found.update(
                    (job_id, None if job is None else job.state.value)
                    for job_id, job in zip(chunk, jobs, strict=True)
                )
        return found

    async def pending(self) -> int:
        with contextlib.suppress(Exception):
            c = await self.counts()
            return c["waiting"] + c["active"] + c["delayed"]
        return -1

    def stop_workers(self) -> None:
        for proc in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)
                proc.terminate()
        for proc in self.workers:
            try:
                proc.wait(timeout=self.args.grace + 5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def runs(self) -> list[tuple[str, float, float]]:
        return self._ledger("SELECT id, t_start, t_end FROM runs")

    def _ledger(self, query: str) -> list[Any]:
        rows: list[Any] = []
        for path in sorted(self.ledger_dir.glob("runs-*.db")):
            with contextlib.closing(sqlite3.connect(path)) as db:
                rows += db.execute(query).fetchall()
        return rows

    def recoveries(self) -> dict[str, Any]:
        """Per SIGKILL and SIGSTOP, how long until every job the process had in hand started
        again on another process: a job is the process's when its last start before the signal
        was there (running, or done but not yet acknowledged) and it started again after."""
        starts: dict[str, list[tuple[float, int]]] = {}
        for job_id, pid, t_start in self._ledger("SELECT id, pid, t_start FROM starts"):
            starts.setdefault(job_id, []).append((t_start, pid))
        for runs in starts.values():
            runs.sort()
        per_kill: list[dict[str, Any]] = []
        for name, pid, at in self.kill_log:
            back = []
            for runs in starts.values():
                before = [run for run in runs if run[0] <= at]
                if not before or before[-1][1] != pid:
                    continue
                again = next((t for t, other in runs if t > at and other != pid), None)
                if again is not None:
                    back.append(again - at)
            per_kill.append(
                {
                    "signal": name,
                    "jobs_started_again": len(back),
                    "recovery_s": round(max(back), 3) if back else None,
                }
            )
        summary: dict[str, Any] = {"per_kill": per_kill}
        for name in RECOVERED_FROM:
            times = sorted(
                k["recovery_s"]
                for k in per_kill
                if k["signal"] == name and k["recovery_s"] is not None
            )
            summary[name] = {
                "kills_with_jobs": len(times),
                "p50_s": times[len(times) // 2] if times else None,
                "max_s": times[-1] if times else None,
            }
        return summary

    def report(
        self,
        started: float,
        finished: float,
        pending: int,
        counts: dict[str, int],
        acked: set[str],
        rows: list[tuple[str, float, float]],
        never_ran: dict[str, str | None],
    ) -> dict[str, Any]:
        """The figures; `never_ran` maps each acknowledged job that never ran to its state in
        Redis (None: gone)."""
        ran: dict[str, int] = {}
        for job_id, _, _ in rows:
            ran[job_id] = ran.get(job_id, 0) + 1
        # Lost, job by job: gone from Redis, or recorded as completed, without ever having run.
        # A job still waiting or failed accounts only for itself, never for another one.
        lost = [job_id for job_id, state in never_ran.items() if state in (None, "completed")]
        ends = sorted(t_end for _, _, t_end in rows)
        gaps = [b - a for a, b in itertools.pairwise(ends)]
        redis_recovery = None
        if self.redis_restarted_at is not None:
            after = [t for t in ends if t >= self.redis_restarted_at]
            redis_recovery = round(after[0] - self.redis_restarted_at, 3) if after else None
        elapsed = finished - started
        return {
            "jobs": self.args.jobs,
            "acknowledged": len(acked),
            "ran": len(ran),
            "lost": len(lost),
            "lost_ids": sorted(lost)[:20],
            "duplicated": sum(n - 1 for n in ran.values()),
            "duplicated_jobs": sum(1 for n in ran.values() if n > 1),
            "unexpected": len(ran.keys() - acked),
            "failed": counts["failed"],
            "pending": pending,
            "throughput_per_s": round(len(ran) / elapsed, 1),
            "elapsed_s": round(elapsed, 1),
            "redis_recovery_s": redis_recovery,
            "longest_gap_s": round(max(gaps), 3) if gaps else None,
            "kills": self.kills,
            "recovery": self.recoveries(),
            "enqueue_retries": self.enqueue_errors,
            **({"sabotaged": self.sabotaged} if self.args.sabotage else {}),
            "workers": self.args.workers,
            "concurrency": self.args.concurrency,
            "lease_s": self.args.lease,
            "seed": self.args.seed,
        }

    def close(self) -> None:
        self.db.close()
        self.redis.close()


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--jobs", type=int, default=100_000)
    p.add_argument("--ci", action="store_true", help="short form: 10,000 jobs, faster chaos")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--lease", type=float, default=2.0, help="lease seconds (short: fast recovery)")
    p.add_argument("--grace", type=float, default=5.0, help="SIGTERM grace seconds")
    p.add_argument("--batch", type=int, default=100, help="jobs per add_bulk")
    p.add_argument("--rate", type=float, default=0.0, help="enqueue rate limit, jobs/s (0: none)")
    p.add_argument(
        "--chaos-interval", type=float, nargs=2, default=(2.0, 6.0), metavar=("LO", "HI")
    )
    p.add_argument("--drain-timeout", type=float, default=300.0)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    p.add_argument("--sabotage", type=int, default=0, help=argparse.SUPPRESS)  # checker self-test
    args = p.parse_args(argv)
    if args.ci:
        args.jobs = 10_000 if "--jobs" not in argv else args.jobs
        args.chaos_interval = (0.5, 1.5)
        args.drain_timeout = 120.0
        args.rate = args.rate or 1000.0
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    return args


def main(argv: list[str]) -> int:
    if argv[:1] == ["--worker"]:
        url, ledger_dir, concurrency, lease, grace = argv[1:6]
        worker_main(url, ledger_dir, int(concurrency), float(lease), float(grace))
        return 0
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="conveyor-soak-") as tmp:
        soak = Soak(args, Path(tmp))
        try:
            result = asyncio.run(soak.run())
        finally:
            soak.stop_workers()
            soak.close()
    width = max(len(k) for k in result)
    for key, value in result.items():
        if key == "recovery":  # the per-kill list is in the JSON
            value = {k: v for k, v in value.items() if k != "per_kill"}
        print(f"{key:<{width}}  {value}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    ok = result["lost"] == 0 and result["pending"] == 0 and result["unexpected"] == 0
    print("OK: nothing lost" if ok else "FAILED: jobs lost or left pending", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
