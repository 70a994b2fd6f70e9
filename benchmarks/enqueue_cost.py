#!/usr/bin/env python3
"""Where the time of one awaited ``Queue.add`` goes (scenario (a) of run.py, taken apart).

    .venv/bin/python benchmarks/enqueue_cost.py [--blocks 40] [--calls 500] [--loop asyncio]

Starts its own redis-server (no persistence) on a free loopback port and times, one awaited
call at a time on uvloop (as run.py's producers run by default; ``--loop asyncio`` for the
default loop), each step that a single add adds on top of the one before:

1. ``SET`` over Conveyor's direct connection: the round trip itself;
2. ``EVALSHA`` of a script that only returns, with the queue's keys and one add's arguments:
   the fixed cost of a script call;
3. the same redis.call()s as ``add_job`` with constant arguments: the cost of the calls;
4. ``add_job`` itself with prepared arguments: the calls on real data (a new hash, a growing
   wait set) and the script's own logic;
5. ``Queue.add``: everything, with the client's work (validation, encoding, the Job returned);

and, for reference, bee-queue's ``addJob.lua`` (the script behind its add, read from
``node/node_modules`` when the Node peers are installed) sent the same way as step 4, redis-py's
asyncio ``LPUSH`` (run.py's physical-limit line), and the blocking flavour: ``SyncQueue.add``
and redis-py's blocking ``LPUSH``. The steps run in interleaved blocks (the VM's speed drifts),
and each figure is the median over blocks of microseconds per call. Two figures of Redis's own
cost per script call come with the script steps: the script's run (INFO commandstats), and the
redis-server process's CPU time (user + system, from /proc), which also counts what Redis does
around the script: reading and parsing the request, writing the reply, its event loop.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import redis  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
from harness.redis_server import RedisServer  # noqa: E402
from harness.scenario import PRODUCER_LOOPS, run_on  # noqa: E402

from conveyor import Queue, SyncQueue  # noqa: E402
from conveyor.options import build_spec  # noqa: E402
from conveyor.storage import resp  # noqa: E402

#: bee-queue's add script, where ``npm ci`` in benchmarks/node put it.
BEE_ADD_JOB = BENCH_DIR / "node" / "node_modules" / "bee-queue" / "lib" / "lua" / "addJob.lua"

#: The redis.call()s of add_job's path for one job with default options (INCR, EXISTS, XADD,
#: whose entry id is the creation time, HSET, ZADD, ZADD marker) on fixed keys.
_CALLS_ONLY = """
redis.call("INCR", SEQ)
redis.call("EXISTS", BASE .. "job:x")
redis.call("XADD", EVENTS, "MAXLEN", "~", EVENTS_MAX, "*", "event", "added", "id", "x",
  "state", "waiting")
redis.call("HSET", BASE .. "job:x", "name", "a", "data", "b", "score", "1", "created", "1",
  "state", "waiting")
redis.call("ZADD", WAIT, 1, "x")
redis.call("ZADD", MARKER, 0, "1")
return {"x", 1}
"""


def payload(i: int) -> dict[str, float]:
    return {"i": i, "t": time.time()}


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far, user + system (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    server: RedisServer, blocks: int, calls: int
) -> tuple[dict[str, list[float]], dict[str, tuple[float, float]]]:
    url = server.url
    queue = Queue("cost", url=url)
    await queue.add("noop", payload(0))  # registers the queue and loads add_job
    direct = resp.DirectClient(url, 5.0, 5.0)
    plain = aioredis.Redis.from_url(url)
    admin = redis.Redis.from_url(url)

    spec = build_spec(queue.settings, "noop", payload(0))
    add_call = queue.commands.add([spec], None).commands[0]
    assert not isinstance(add_call, tuple)
    # add_job's keys, settings and helpers (its own code starts with write_job).
    prelude = add_call.script.source.split("local function write_job")[0]

    def script_call(source: str) -> bytes:
        sha = admin.script_load(source)
        head = resp.evalsha_head(sha, add_call.keys)
        return resp.pack_evalsha(head, len(add_call.keys), add_call.args)

    set_call = resp.pack(("SET", "cost:k", json.dumps(payload(0))))
    empty_call = script_call(prelude + "return 1")
    calls_call = script_call(prelude + _CALLS_ONLY)
    add_job_call = resp.pack_evalsha(add_call.head, len(add_call.keys), add_call.args)
    # Each stand-in must run its own body, not part of add_job's (the prelude ends in time).
    assert await direct.execute(empty_call, 1) == [1]
    assert await direct.execute(calls_call, 1) == [["x", 1]]

    def sending(packed: bytes) -> Callable[[int], Awaitable[object]]:
        return lambda _i: direct.execute(packed, 1)

    async def queue_add(i: int) -> object:
        return await queue.add("noop", payload(i))

    async def lpush(i: int) -> object:
        return await plain.lpush("cost:list", json.dumps({"task": "noop", "data": payload(i)}))

    # The blocking flavour (run.py's conveyor_sync and redis_lpush_sync rows): calls that
    # never yield to the loop, so they pay no asyncio cost.
    sync_queue = SyncQueue("cost", url=url)

    async def sync_add(i: int) -> object:
        return sync_queue.add("noop", payload(i))

    async def lpush_blocking(i: int) -> object:
        return admin.lpush("cost:list", json.dumps({"task": "noop", "data": payload(i)}))

    steps: dict[str, Callable[[int], Awaitable[object]]] = {
        "1 SET (round trip)": sending(set_call),
        "2 EVALSHA return 1": sending(empty_call),
        "3 add_job's calls, fixed args": sending(calls_call),
        "4 add_job": sending(add_job_call),
        "5 Queue.add": queue_add,
    }
    scripts = ["2 EVALSHA return 1", "3 add_job's calls, fixed args", "4 add_job"]
    if BEE_ADD_JOB.is_file():
        # Its keys (id counter, jobs hash, waiting list) and arguments (no id, the data) as
        # bee-queue's producer sends them.
        bee_sha = admin.script_load(BEE_ADD_JOB.read_text("utf-8"))
        bee_data = json.dumps(
            {"data": payload(0), "options": {"timestamp": 1}, "status": "created"}
        )
        bee_call = resp.pack(
            ("EVALSHA", bee_sha, 3, "bq:cost:id", "bq:cost:jobs", "bq:cost:waiting", "", bee_data)
        )
        steps["bee-queue's addJob.lua"] = sending(bee_call)
        scripts.append("bee-queue's addJob.lua")
    steps |= {
        "redis-py asyncio LPUSH": lpush,
        "SyncQueue.add (blocking)": sync_add,
        "redis-py blocking LPUSH": lpush_blocking,
    }
    times: dict[str, list[float]] = {name: [] for name in steps}
    order = list(steps.items())
    for block in range(blocks):
        for name, step in order if block % 2 else order[::-1]:
            start = time.perf_counter()
            for i in range(calls):
                await step(i)
            times[name].append((time.perf_counter() - start) / calls * 1e6)
        if block % 10 == 9:  # keep the queue from growing without end
            await queue.obliterate(force=True)
            admin.delete("cost:list")
    # Redis's own cost per script call, each script on its own: its run, and the server's CPU.
    server_us: dict[str, tuple[float, float]] = {}
    for name in scripts:
        admin.config_resetstat()
        before = cpu_seconds(server.proc.pid)
        for i in range(calls * 20):  # (/proc counts CPU in 10 ms ticks)
            await steps[name](i)
        cpu_us = (cpu_seconds(server.proc.pid) - before) / (calls * 20) * 1e6
        run_us = float(admin.info("commandstats")["cmdstat_evalsha"]["usec_per_call"])
        server_us[name] = (run_us, cpu_us)
    admin.delete("bq:cost:id", "bq:cost:jobs", "bq:cost:waiting")
    await queue.obliterate(force=True)
    await queue.close()
    sync_queue.close()
    await plain.aclose()
    direct.close()
    return times, server_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=40, help="interleaved blocks per step")
    parser.add_argument("--calls", type=int, default=500, help="awaited calls per block")
    parser.add_argument("--loop", choices=PRODUCER_LOOPS, default="uvloop", help="event loop")
    args = parser.parse_args()
    server = RedisServer()
    try:
        times, server_us = run_on(args.loop, measure(server, args.blocks, args.calls))
    finally:
        server.stop()
    print(
        f"median of {args.blocks} blocks of {args.calls} awaited calls on {args.loop}, "
        "microseconds per call\n"
    )
    print("| step | µs per call | added by this step | script's run in Redis | Redis CPU |")
    print("|---|---|---|---|---|")
    previous = None
    for name, samples in times.items():
        median = statistics.median(samples)
        numbered = name[0].isdigit()
        added = f"{median - previous:+.1f}" if numbered and previous is not None else ""
        run_us, cpu_us = (f"{x:.1f}" for x in server_us[name]) if name in server_us else ("", "")
        print(f"| {name} | {median:.1f} | {added} | {run_us} | {cpu_us} |")
        if numbered:
            previous = median


if __name__ == "__main__":
    main()
