#!/usr/bin/env python3
"""Recovery after a crash: how long a dead worker's job waits before it starts again elsewhere.

    python benchmarks/recovery.py                  # 20 SIGKILLs, 3 SIGSTOPs, 3 black holes,
                                                   # 10 SIGKILLs on a 3-master Cluster
    python benchmarks/recovery.py --kills 5 --json result.json

Two worker processes (tests/support/worker_app.py, default lease and liveness settings) serve one
queue on a redis-server of their own. Each round adds a job that sleeps 60 s on its first start;
whichever worker starts it is the victim: it gets SIGKILL, SIGSTOP, or (in the black-hole rounds,
where every worker reaches Redis through a proxy of its own, tests/support/tcp_proxy.py) its link
swallows every byte. The figure is the time from the fault to the job's start on the other worker,
read from the ledger the worker app keeps in Redis lists outside the queue's keys. The victim is
then killed and replaced by a new worker, and the next round begins. The Cluster rounds do the
same with the queue on a Redis Cluster of 3 masters (tests/support/topologies.py; the ledger
stays on the plain server).
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "src"), str(REPO)]

PREFIX = "recovery"
QUEUE = "jobs"


class Rounds:
    def __init__(self, workdir: Path, proxied: bool, cluster: bool = False) -> None:
        import redis
        from tests.support.processes import ProcessManager
        from tests.support.redis_server import RedisServer
        from tests.support.topologies import ClusterSetup

        self.redis = RedisServer(maxmemory_policy="noeviction", save="", appendonly=False)
        self.redis.start()
        self.cluster = ClusterSetup(masters=3).start() if cluster else None
        self.url = self.cluster.url if self.cluster else self.redis.url
        self.client = redis.Redis.from_url(self.redis.url, decode_responses=True)
        self.processes = ProcessManager(workdir)
        self.proxied = proxied
        self.proxies: dict[str, Any] = {}
        self.workers: dict[str, Any] = {}
        self.started = 0

    def start_worker(self) -> None:
        from tests.support.tcp_proxy import TcpProxy

        self.started += 1
        name = f"W{self.started}"
        url = self.url
        if self.proxied:
            proxy = self.proxies[name] = TcpProxy(self.redis.port).start()
            url = proxy.url
        env = {
            "CT_URL": url,
            "CT_RECORD_URL": self.redis.url,
            "CT_PREFIX": PREFIX,
            "CT_QUEUE": QUEUE,
            "CT_WORKER": name,
        }
        proc = self.processes.spawn(
            "from tests.support.worker_app import main; main()", env=env, name=name
        )
        proc.wait_for_output("started: redis=", timeout=30)
        self.workers[name] = proc

    def add_job(self) -> str:
        from conveyor import SyncQueue

        queue = SyncQueue(QUEUE, url=self.url, prefix=PREFIX)
        try:
            return queue.add("record", {"sleep": 60}).id
        finally:
            queue.close()

    def starts(self, job_id: str) -> list[str]:
        entries = self.client.lrange(f"{PREFIX}:started", 0, -1)
        return [e.rsplit(":", 1)[1] for e in entries if e.rsplit(":", 1)[0] == job_id]

    def wait_for(self, job_id: str, count: int, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            starts = self.starts(job_id)
            if len(starts) >= count:
                return starts
            time.sleep(0.005)
        raise RuntimeError(f"job {job_id} did not start {count} times within {timeout} s")

    def round(self, fault: str) -> float:
        """One fault on whichever worker takes the job; seconds until it starts elsewhere."""
        while len(self.workers) < 2:
            self.start_worker()
        time.sleep(0.6)  # each worker judges silence against its own previous beat
        job_id = self.add_job()
        victim_name = self.wait_for(job_id, 1, 10)[0]
        victim = self.workers.pop(victim_name)
        faulted_at = time.monotonic()
        if fault == "kill":
            victim.send_signal(signal.SIGKILL)
        elif fault == "stop":
            victim.send_signal(signal.SIGSTOP)
        else:
            self.proxies[victim_name].drop()
        self.wait_for(job_id, 2, 60)
        took = time.monotonic() - faulted_at
        victim.kill()
        if victim_name in self.proxies:
            self.proxies.pop(victim_name).close()
        return took

    def close(self) -> None:
        self.processes.close()
        for proxy in self.proxies.values():
            proxy.close()
        self.client.close()
        self.redis.close()
        if self.cluster is not None:
            self.cluster.close()


def summary(times: list[float]) -> dict[str, Any]:
    return {
        "n": len(times),
        "p50_s": round(statistics.median(times), 3),
        "max_s": round(max(times), 3),
        "all_s": [round(t, 3) for t in times],
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--stops", type=int, default=3)
    parser.add_argument("--black-holes", type=int, default=3)
    parser.add_argument("--cluster-kills", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="recovery-") as tmp:
        plan = [
            ("SIGKILL", "kill", args.kills, False, False),
            ("SIGSTOP", "stop", args.stops, False, False),
            ("black hole", "drop", args.black_holes, True, False),
            ("Cluster SIGKILL", "kill", args.cluster_kills, False, True),
        ]
        for label, fault, count, proxied, cluster in plan:
            if count <= 0:
                continue
            rounds = Rounds(Path(tmp) / label.replace(" ", "-"), proxied, cluster)
            try:
                times = [rounds.round(fault) for _ in range(count)]
            finally:
                rounds.close()
            results[label] = summary(times)
            figures = results[label]
            print(
                f"{label:>15}: n={figures['n']} p50 {figures['p50_s']:.2f} s, "
                f"max {figures['max_s']:.2f} s",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
