"""The PostgreSQL outbox against the machine's PostgreSQL and a real Redis.

Jobs are written in the caller's transaction and exist only if it commits; the relay moves them
with the row id as the job id; a replay (a batch added to Redis whose commit never happened)
adds nothing twice; relays running at once share the rows; the CLI relay works as a process.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from tests.support.waiting import async_wait_for

from conveyor import Backoff, JobState, Queue
from conveyor.errors import ConfigurationError
from conveyor.outbox import Outbox


@pytest.fixture
async def queue(redis_url: str, key_prefix: str) -> AsyncIterator[Queue]:
    q = Queue("orders", url=redis_url, prefix=key_prefix)
    yield q
    await q.close()


def _rows(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM conveyor_outbox").fetchone()
        assert row is not None
        return int(row[0])


async def test_a_committed_add_becomes_a_job_with_the_row_id_and_its_options(
    outbox: Outbox, queue: Queue, pg_dsn: str
) -> None:
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("INSERT INTO orders (item) VALUES ('book')")
        plain = outbox.add(conn, "receipt", {"order": 1, "b": [1, 2], "a": "x"})
        rich = outbox.add(
            conn,
            "remind",
            {"order": 1},
            attempts=4,
            priority=7,
            delay=60,
            timeout=5,
            backoff=Backoff.fixed(2),
        )
        named = outbox.add(conn, "receipt", {"order": 2}, job_id="order-2-receipt")
    assert isinstance(plain, int) and rich == plain + 1
    assert await outbox.relay(once=True) == 3
    assert _rows(pg_dsn) == 0

    job = await queue.get_job(f"outbox-{plain}")
    assert job is not None and job.name == "receipt" and job.state is JobState.WAITING
    assert job.data == {"order": 1, "b": [1, 2], "a": "x"}
    delayed = await queue.get_job(f"outbox-{rich}")
    assert delayed is not None and delayed.state is JobState.DELAYED
    assert (delayed.attempts, delayed.priority, delayed.timeout) == (4, 7, 5.0)
    assert delayed.backoff == Backoff.fixed(2)
    # The delay counts from the insert: run_at is about a minute after it was created.
    assert delayed.run_at is not None and delayed.created_at is not None
    assert 58_000 <= delayed.run_at - delayed.created_at <= 60_500
    assert (await queue.get_job("order-2-receipt")) is not None
    assert named == rich + 1
    assert (await queue.counts())["waiting"] == 2


async def test_a_rolled_back_transaction_leaves_no_job(
    outbox: Outbox, queue: Queue, pg_dsn: str
) -> None:
    with psycopg.connect(pg_dsn) as conn:
        with pytest.raises(RuntimeError), conn.transaction():
            conn.execute("INSERT INTO orders (item) VALUES ('lamp')")
            outbox.add(conn, "receipt", {"order": 3})
            raise RuntimeError("the view failed after the add")
        conn.rollback()
    assert _rows(pg_dsn) == 0
    assert await outbox.relay(once=True) == 0
    assert (await queue.counts())["waiting"] == 0


async def test_bad_options_raise_before_anything_is_written(outbox: Outbox, pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        with pytest.raises(ConfigurationError, match="attempts"):
            outbox.add(conn, "receipt", {}, attempts=0)
        with pytest.raises(ConfigurationError, match="unknown job options"):
            outbox.add(conn, "receipt", {}, atempts=2)
        with pytest.raises(ConfigurationError, match="job name"):
            outbox.add(conn, "", {})
        with pytest.raises(ConfigurationError, match="connection"):
            outbox.add(object(), "receipt", {})
        conn.commit()
    assert _rows(pg_dsn) == 0
    with pytest.raises(ConfigurationError, match="outbox table"):
        Outbox("orders", pg_dsn, table="orders; DROP TABLE x")
    with pytest.raises(ConfigurationError, match="batch"):
        await outbox.relay(once=True, batch=0)
    with pytest.raises(ConfigurationError, match="DSN"):
        await Outbox(outbox.queue).relay(once=True)


class _CrashAfterAdd(Outbox):
    """Dies (as far as the transaction knows) between the Redis add and the commit."""

    def _after_add(self, ids: list[int]) -> None:
        raise KeyboardInterrupt("killed mid-move")


async def test_a_batch_replayed_after_a_failed_commit_adds_nothing_twice(
    outbox: Outbox, queue: Queue, pg_dsn: str
) -> None:
    with psycopg.connect(pg_dsn) as conn:
        ids = [outbox.add(conn, "receipt", {"i": i}) for i in range(25)]
    crashing = _CrashAfterAdd(queue, pg_dsn)
    with pytest.raises(KeyboardInterrupt):
        await crashing.relay(once=True, batch=10)
    assert _rows(pg_dsn) == 25  # the claim was rolled back
    assert (await queue.counts())["waiting"] == 10  # but the first batch reached Redis
    assert await outbox.relay(once=True, batch=7) == 25
    assert _rows(pg_dsn) == 0
    counts = await queue.counts()
    assert counts["waiting"] == 25  # not 35
    waiting = await queue.get_jobs("waiting", 0, -1)
    assert sorted(job.id for job in waiting) == sorted(f"outbox-{i}" for i in ids)


async def test_relays_running_at_once_move_every_row_once(
    outbox: Outbox, queue: Queue, pg_dsn: str, redis_url: str, key_prefix: str
) -> None:
    with psycopg.connect(pg_dsn) as conn:
        for i in range(400):
            outbox.add(conn, "receipt", {"i": i})
    relays = [Outbox(Queue("orders", url=redis_url, prefix=key_prefix), pg_dsn) for _ in range(4)]
    moved = await asyncio.gather(*(r.relay(once=True, batch=15) for r in relays))
    for relay in relays:
        await relay.queue.close()
    assert sum(moved) == 400
    assert sum(1 for m in moved if m) >= 2  # the rows were really shared, not taken by one
    assert (await queue.counts())["waiting"] == 400
    assert await outbox.pending() == 0


async def test_an_idle_relay_wakes_on_commit(outbox: Outbox, queue: Queue, pg_dsn: str) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.relay(poll=30, stop=stop))
    await asyncio.sleep(0.5)  # the relay is listening and idle
    started = time.monotonic()
    with psycopg.connect(pg_dsn) as conn:
        row = outbox.add(conn, "receipt", {"late": True})

    async def arrived() -> bool:
        return await queue.get_job(f"outbox-{row}") is not None

    await async_wait_for(arrived, timeout=5, message="the relay did not wake on NOTIFY")
    assert time.monotonic() - started < 5  # far below the 30 s poll
    stop.set()
    assert await asyncio.wait_for(task, 5) == 1


async def test_async_psycopg_connections_add_too(outbox: Outbox, queue: Queue, pg_dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(pg_dsn) as conn:
        row = await outbox.add(conn, "receipt", {"async": True})
    assert await outbox.relay(once=True) == 1
    job = await queue.get_job(f"outbox-{row}")
    assert job is not None and job.data == {"async": True}


def _cli(*args: str, env: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from conveyor.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


async def test_the_cli_relay_moves_rows_and_refuses_a_missing_dsn(
    outbox: Outbox, queue: Queue, pg_dsn: str, redis_url: str, key_prefix: str
) -> None:
    with psycopg.connect(pg_dsn) as conn:
        for i in range(30):
            outbox.add(conn, "receipt", {"i": i})
    base = ["outbox-relay", "orders", "--url", redis_url, "--prefix", key_prefix]
    done = _cli(*base, "--dsn", pg_dsn, "--once", "--batch", "8")
    assert done.returncode == 0, done.stderr
    assert "moved 30 jobs to orders" in done.stderr
    assert (await queue.counts())["waiting"] == 30
    missing = _cli(*base, env={"PATH": "/usr/bin:/bin"})
    assert missing.returncode == 2
    assert "--dsn" in missing.stderr
    bad = _cli(*base, "--dsn", pg_dsn, "--table", "Bad Name", "--once")
    assert bad.returncode == 2 and "outbox table" in bad.stderr


async def test_the_relays_span_belongs_to_the_trace_that_wrote_the_row(
    outbox: Outbox, queue: Queue, pg_dsn: str
) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from conveyor import otel

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    otel.instrument(tracer_provider=provider)
    try:
        with trace.get_tracer("app", tracer_provider=provider).start_as_current_span("POST"):
            with psycopg.connect(pg_dsn) as conn:
                row = outbox.add(conn, "receipt", {"order": 1})
            request = trace.get_current_span().get_span_context()
        assert await outbox.relay(once=True) == 1
    finally:
        otel.uninstrument()
    [send] = [s for s in memory.get_finished_spans() if s.name == "send orders"]
    assert send.context.trace_id == request.trace_id
    assert send.parent is not None and send.parent.span_id == request.span_id
    job = await queue.get_job(f"outbox-{row}")
    assert job is not None  # and the job carries the send span's context on to the consumer
    assert job.trace["traceparent"].split("-")[2] == format(send.context.span_id, "016x")


async def test_a_running_cli_relay_moves_rows_as_they_commit_and_stops_on_sigterm(
    outbox: Outbox, queue: Queue, pg_dsn: str, redis_url: str, key_prefix: str, spawn: Any
) -> None:
    import signal

    args = ["outbox-relay", "orders", "--url", redis_url, "--prefix", key_prefix]
    relay = spawn(
        "from conveyor.cli import main; main()", args=[*args, "--dsn", pg_dsn, "--poll", "30"]
    )
    relay.wait_for_output("started", timeout=15)
    with psycopg.connect(pg_dsn) as conn:
        rows = [outbox.add(conn, "receipt", {"i": i}) for i in range(5)]

    async def moved() -> bool:
        return (await queue.counts())["waiting"] == len(rows)

    await async_wait_for(moved, timeout=10, message="the running relay moved nothing")
    relay.send_signal(signal.SIGTERM)
    assert relay.wait(timeout=10) == 0, relay.describe()
    assert "moved 5 jobs to orders" in relay.output()


async def test_a_relay_rides_out_its_postgresql_connection_being_killed(
    outbox: Outbox, queue: Queue, pg_dsn: str
) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.relay(poll=0.2, stop=stop))
    await asyncio.sleep(0.5)  # idle, listening
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert killed is not None and killed[0] >= 1
    with psycopg.connect(pg_dsn) as conn:
        row = outbox.add(conn, "receipt", {"after": "the kill"})

    async def arrived() -> bool:
        return await queue.get_job(f"outbox-{row}") is not None

    await async_wait_for(arrived, timeout=15, message="the relay did not reconnect")
    assert not task.done()
    stop.set()
    assert await asyncio.wait_for(task, 5) == 1
