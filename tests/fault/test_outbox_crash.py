"""Outbox relays SIGKILLed mid-move: every committed row becomes exactly one job, run once.

The dangerous moment of a relay is between its Redis add and its PostgreSQL commit: the jobs
are in Redis, the rows are still in the outbox. The relay processes here widen that moment
(``_after_add`` sleeps and says so on stdout), so SIGKILLs land in it; one relay is made to
kill itself there, deterministically. The ledger is a SQLite file outside Redis: the worker's
handler writes one row per execution, committed before the job is acknowledged.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from tests.support.processes import ProcessManager, SpawnedProcess
from tests.support.waiting import async_wait_for

from conveyor import Queue
from conveyor.outbox import Outbox

RELAY = """
import asyncio, os, signal, sys, time
from conveyor import Queue
from conveyor.outbox import Outbox
from conveyor.outbox.relay import Relay

MODE = os.environ["CT_MODE"]

class Slow(Outbox):
    def _after_add(self, ids):
        print("added", ids[0], ids[-1], flush=True)
        if MODE == "suicide":
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.05)  # the window between the Redis add and the commit, made wide

move_batch = Relay.move_batch

async def move_and_say(self, conn):
    moved = await move_batch(self, conn)
    if moved:
        print("committed", flush=True)
    return moved

Relay.move_batch = move_and_say
queue = Queue("orders", url=os.environ["CT_URL"], prefix=os.environ["CT_PREFIX"])
outbox = Slow(queue, os.environ["CT_DSN"])
print("relay ready", flush=True)
asyncio.run(outbox.relay(batch=int(os.environ["CT_BATCH"]), poll=0.05, once=MODE == "once"))
"""

WORKER = """
import asyncio, os, sqlite3
from conveyor import Queue, Worker

queue = Queue("orders", url=os.environ["CT_URL"], prefix=os.environ["CT_PREFIX"])

def receipt(job):
    with sqlite3.connect(os.environ["CT_LEDGER"], timeout=30) as db:
        db.execute("INSERT INTO ran (job_id, row_order) VALUES (?, ?)", (job.id, job.data["order"]))
    return "sent"

print("worker ready", flush=True)
asyncio.run(Worker(queue, {"receipt": receipt}, concurrency=4).run())
"""


@pytest.fixture
async def queue(redis_url: str, key_prefix: str) -> AsyncIterator[Queue]:
    q = Queue("orders", url=redis_url, prefix=key_prefix)
    yield q
    await q.close()


def _env(redis_url: str, key_prefix: str, dsn: str, **extra: object) -> dict[str, str]:
    env = {"CT_URL": redis_url, "CT_PREFIX": key_prefix, "CT_DSN": dsn}
    env.update({f"CT_{k.upper()}": str(v) for k, v in extra.items()})
    return env


def _place_orders(outbox: Outbox, dsn: str, start: int, count: int) -> list[int]:
    """Each order and its job in one transaction, as an application would."""
    rows = []
    with psycopg.connect(dsn) as conn:
        for order in range(start, start + count):
            with conn.transaction():
                conn.execute("INSERT INTO orders (item) VALUES (%s)", (f"item-{order}",))
                rows.append(outbox.add(conn, "receipt", {"order": order}))
    return rows


async def test_a_relay_killed_between_the_redis_add_and_the_commit_is_replayed_once(
    spawn: ProcessManager,
    outbox: Outbox,
    queue: Queue,
    pg_dsn: str,
    redis_url: str,
    key_prefix: str,
) -> None:
    rows = _place_orders(outbox, pg_dsn, 0, 40)
    env = _env(redis_url, key_prefix, pg_dsn, mode="suicide", batch=10)
    victim = spawn(RELAY, env=env, name="suicide")
    assert victim.wait(timeout=30) == -signal.SIGKILL, victim.describe()
    assert "added" in victim.stdout()
    assert await outbox.pending() == 40  # its transaction died with it
    assert (await queue.counts())["waiting"] == 10  # after its batch had reached Redis

    healthy = spawn(RELAY, env={**env, "CT_MODE": "once"}, name="once")
    assert healthy.wait(timeout=30) == 0, healthy.describe()
    assert await outbox.pending() == 0
    waiting = await queue.get_jobs("waiting", 0, -1)
    assert sorted(job.id for job in waiting) == sorted(f"outbox-{row}" for row in rows)


@pytest.mark.timeout(180)
async def test_relays_sigkilled_at_random_while_orders_arrive_lose_and_double_nothing(
    spawn: ProcessManager,
    outbox: Outbox,
    queue: Queue,
    pg_dsn: str,
    redis_url: str,
    key_prefix: str,
    tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger.sqlite"
    with sqlite3.connect(ledger) as db:
        db.execute("CREATE TABLE ran (job_id TEXT NOT NULL, row_order INTEGER NOT NULL)")
    env = _env(redis_url, key_prefix, pg_dsn, mode="run", batch=5, ledger=ledger)
    worker = spawn(WORKER, env=env, name="worker")
    worker.wait_for_output("worker ready", timeout=15)

    generation = iter(range(1000))

    def start_relay() -> SpawnedProcess:
        return spawn(RELAY, env=env, name=f"relay{next(generation)}")

    relays = [start_relay() for _ in range(3)]
    total = 600
    producer = asyncio.create_task(asyncio.to_thread(_place_orders, outbox, pg_dsn, 0, total))
    rng = random.Random(7)
    kills = mid_move = 0

    def in_window(relay: SpawnedProcess) -> bool:
        lines = relay.stdout().splitlines()
        return bool(lines) and lines[-1].startswith("added")

    while not producer.done() or await outbox.pending():
        await asyncio.sleep(rng.uniform(0.02, 0.1))
        if kills >= 60:
            continue  # enough: let the survivors finish
        # Mostly aim at a relay inside the window (its last word is "added": the Redis add
        # is done, the commit is not); sometimes at any one, wherever it is.
        index = rng.randrange(len(relays))
        if rng.random() < 0.8:
            for _ in range(50):
                aimed = [i for i, relay in enumerate(relays) if in_window(relay)]
                if aimed:
                    index = rng.choice(aimed)
                    break
                await asyncio.sleep(0.005)
        victim = relays[index]
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        kills += 1
        mid_move += in_window(victim)
        relays[index] = start_relay()
    rows = await producer
    assert len(rows) == total
    assert kills >= 20 and mid_move >= 5, (kills, mid_move)

    async def all_ran() -> bool:
        return (await queue.counts())["completed"] >= total

    await async_wait_for(all_ran, timeout=60, message="jobs did not all complete")
    counts = await queue.counts()
    assert counts["completed"] == total
    assert (counts["waiting"], counts["delayed"], counts["active"], counts["failed"]) == (
        0,
        0,
        0,
        0,
    )
    with sqlite3.connect(ledger) as db:
        ran = Counter(job_id for (job_id,) in db.execute("SELECT job_id FROM ran"))
        orders = sorted(order for (order,) in db.execute("SELECT row_order FROM ran"))
    assert set(ran) == {f"outbox-{row}" for row in rows}  # nothing lost
    assert set(ran.values()) == {1}  # nothing run twice
    assert orders == list(range(total))
    assert await outbox.pending() == 0
