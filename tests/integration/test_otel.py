"""OpenTelemetry spans across a real worker and a real Redis, read from the SDK's in-memory
exporter: the producer span per add, the consumer span per attempt, the trace context carried
in the job (continued as parent, or linked), failures, retries and the queue wait; and no cost,
nor any import of opentelemetry, when it is not configured."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from tests.support.conveyor_helpers import running, worker
from tests.support.processes import python_env
from tests.support.waiting import async_wait_for

from conveyor import Job, Queue, Retry, SyncQueue, otel
from conveyor.errors import ConfigurationError
from conveyor.procedures import QueueCore
from conveyor.worker import running as worker_running


@pytest.fixture
def provider() -> TracerProvider:
    return TracerProvider()


@pytest.fixture
def exporter(provider: TracerProvider) -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    otel.instrument(tracer_provider=provider, propagation="parent")
    try:
        yield memory
    finally:
        otel.uninstrument()


def _spans(exporter: InMemorySpanExporter, kind: SpanKind) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind is kind]


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def _run_until(queue: Queue, handlers: dict[str, Any], done: Any) -> None:
    async with running(worker(queue, handlers, concurrency=2)):
        await async_wait_for(done, timeout=20, message="jobs did not finish")


async def test_the_consumer_continues_the_producers_trace(
    exporter: InMemorySpanExporter, provider: TracerProvider, redis_url: str, key_prefix: str
) -> None:
    queue = Queue("mail", url=redis_url, prefix=key_prefix)
    tracer = trace.get_tracer("test", tracer_provider=provider)
    inner: list[Any] = []

    def send(job: Job) -> str:
        inner.append(trace.get_current_span().get_span_context())
        return "ok"

    with tracer.start_as_current_span("POST /signup") as request:
        job = await queue.add("send", {"to": "ada"}, priority=3)
    await _run_until(queue, {"send": send}, lambda: _done(queue, job.id))
    await queue.close()

    [producer] = _spans(exporter, SpanKind.PRODUCER)
    [consumer] = _spans(exporter, SpanKind.CONSUMER)
    assert producer.name == "send mail" and consumer.name == "process mail"
    assert producer.parent is not None
    assert producer.parent.span_id == request.get_span_context().span_id
    assert consumer.context.trace_id == request.get_span_context().trace_id
    assert consumer.parent is not None and consumer.parent.span_id == producer.context.span_id
    p, c = _attrs(producer), _attrs(consumer)
    assert p["messaging.system"] == c["messaging.system"] == "conveyor"
    assert p["messaging.destination.name"] == c["messaging.destination.name"] == "mail"
    assert p["messaging.operation.type"] == "send" and c["messaging.operation.type"] == "process"
    assert p["messaging.message.id"] == c["messaging.message.id"] == job.id
    assert p["conveyor.job.priority"] == 3 and c["conveyor.job.attempt"] == 1
    assert c["conveyor.job.outcome"] == "completed" and c["conveyor.job.queue_wait_ms"] >= 0
    assert consumer.status.status_code is StatusCode.UNSET
    # The handler ran inside the consumer span (a sync handler, in a worker thread).
    assert inner and inner[0].span_id == consumer.context.span_id


async def _done(queue: Queue, *ids: str) -> bool:
    for job_id in ids:
        job = await queue.get_job(job_id)
        if job is None or not job.is_finished:
            return False
    return True


async def test_link_mode_starts_a_trace_of_its_own_linked_to_the_producer(
    exporter: InMemorySpanExporter, provider: TracerProvider, redis_url: str, key_prefix: str
) -> None:
    otel.instrument(tracer_provider=provider, propagation="link")
    with SyncQueue("mail", url=redis_url, prefix=key_prefix) as producer_queue:
        job = producer_queue.add("send", {"to": "bob"})  # the blocking queue is traced too
    queue = Queue("mail", url=redis_url, prefix=key_prefix)
    await _run_until(queue, {"send": lambda job: None}, lambda: _done(queue, job.id))
    await queue.close()
    [producer] = _spans(exporter, SpanKind.PRODUCER)
    [consumer] = _spans(exporter, SpanKind.CONSUMER)
    assert consumer.context.trace_id != producer.context.trace_id
    assert consumer.parent is None
    assert [link.context.span_id for link in consumer.links] == [producer.context.span_id]


async def test_failures_and_retries_show_on_the_attempts_spans(
    exporter: InMemorySpanExporter, redis_url: str, key_prefix: str
) -> None:
    queue = Queue("mail", url=redis_url, prefix=key_prefix)
    tries: list[int] = []

    def flaky(job: Job) -> str:
        tries.append(job.attempt)
        if job.attempt == 1:
            raise Retry(delay=0.1)
        return "second time lucky"

    def broken(job: Job) -> None:
        raise ValueError("no such mailbox")

    jobs = await queue.add_bulk(
        [{"name": "flaky", "attempts": 2}, {"name": "broken", "data": {"to": "x"}}]
    )
    await _run_until(
        queue, {"flaky": flaky, "broken": broken}, lambda: _done(queue, *(j.id for j in jobs))
    )
    await queue.close()
    assert len(_spans(exporter, SpanKind.PRODUCER)) == 2  # one per job of the bulk add
    consumers = sorted(
        _spans(exporter, SpanKind.CONSUMER),
        key=lambda s: (_attrs(s)["conveyor.job.name"], _attrs(s)["conveyor.job.attempt"]),
    )
    failed, first, second = consumers
    assert _attrs(failed)["conveyor.job.outcome"] == "failed"
    assert _attrs(failed)["conveyor.job.will_retry"] is False
    assert failed.status.status_code is StatusCode.ERROR
    assert _attrs(failed)["error.type"] == "ValueError"
    [event] = [e for e in failed.events if e.name == "exception"]
    assert "no such mailbox" in str(event.attributes["exception.message"])  # type: ignore[index]
    assert "Traceback" in str(event.attributes["exception.stacktrace"])  # type: ignore[index]

    assert (
        _attrs(first)["conveyor.job.attempt"] == 1 and first.status.status_code is StatusCode.ERROR
    )
    assert _attrs(first)["conveyor.job.outcome"] == "retry"
    assert _attrs(first)["conveyor.job.will_retry"] is True
    assert _attrs(first)["conveyor.job.retry_in_ms"] == 100
    assert _attrs(second)["conveyor.job.attempt"] == 2
    assert _attrs(second)["conveyor.job.outcome"] == "completed"
    assert "conveyor.job.queue_wait_ms" not in _attrs(second)  # only the first wait is known
    # Both attempts continue the one producer trace.
    assert first.context.trace_id == second.context.trace_id


async def test_a_delayed_job_waits_from_when_it_was_due(
    exporter: InMemorySpanExporter, redis_url: str, key_prefix: str
) -> None:
    queue = Queue("mail", url=redis_url, prefix=key_prefix)
    job = await queue.add("send", {}, delay=0.4)
    await _run_until(queue, {"send": lambda job: None}, lambda: _done(queue, job.id))
    await queue.close()
    [producer] = _spans(exporter, SpanKind.PRODUCER)
    [consumer] = _spans(exporter, SpanKind.CONSUMER)
    assert _attrs(producer)["conveyor.job.delay_ms"] == 400
    # Picked up within moments of being due: the 400 ms delay is not counted as waiting.
    assert 0 <= _attrs(consumer)["conveyor.job.queue_wait_ms"] < 400


async def test_every_lone_add_makes_its_span_once_the_queue_is_registered(
    exporter: InMemorySpanExporter, redis_url: str, key_prefix: str
) -> None:
    # (A lone add of a registered queue skips _add_op unless spans are on: see sends_alone.)
    queue = Queue("mail", url=redis_url, prefix=key_prefix)
    sync_queue = SyncQueue("mail", url=redis_url, prefix=key_prefix)
    for _ in range(3):
        await queue.add("send", {})
        sync_queue.add("send", {})
    assert len(_spans(exporter, SpanKind.PRODUCER)) == 6
    await queue.close()
    sync_queue.close()


def test_uninstrument_restores_the_originals_and_bad_modes_are_refused(
    exporter: InMemorySpanExporter,
) -> None:
    assert otel.is_instrumented()
    assert not QueueCore.plain_adds
    otel.uninstrument()
    assert not otel.is_instrumented()
    assert QueueCore._add_op.__name__ == "_add_op"
    assert QueueCore.plain_adds
    assert worker_running.run_job.__module__ == "conveyor.runner"
    with pytest.raises(ConfigurationError, match="propagation"):
        otel.instrument(propagation="sideways")  # type: ignore[arg-type]


LEAN = """
import asyncio, json, os, sys

class NotInstalled:  # as if the otel extra were not installed (redis-py looks for it too)
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "opentelemetry" and os.environ.get("HIDE_OTEL"):
            raise ImportError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, NotInstalled())
from conveyor import Queue, Worker

async def main():
    q = Queue("lean", url=sys.argv[1], prefix=sys.argv[2])
    await q.add("noop", {})
    await Worker(q, {"noop": lambda job: None}, burst=True).run(install_signal_handlers=False)
    print(json.dumps({
        "otel": sorted(m for m in sys.modules if m.startswith("opentelemetry")),
        "conveyor_otel": "conveyor.otel" in sys.modules,
        "completed": (await q.counts())["completed"],
    }))
    await q.close()

asyncio.run(main())
"""

AUTO = """
import asyncio, json, sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from conveyor import Queue, Worker, otel

memory = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(memory))
before = otel.is_instrumented()
LATE = len(sys.argv) > 3
early = Queue("auto", url=sys.argv[1], prefix=sys.argv[2]) if LATE else None  # made first
trace.set_tracer_provider(provider)  # the app configures the SDK; nothing else is asked of it

async def main():
    q = early or Queue("auto", url=sys.argv[1], prefix=sys.argv[2])
    await q.add("noop", {})
    await Worker(q, {"noop": lambda job: None}, burst=True).run(install_signal_handlers=False)
    await q.close()
    print(json.dumps({"before": before, "after": otel.is_instrumented(),
                      "spans": sorted(s.name for s in memory.get_finished_spans())}))

asyncio.run(main())
"""


def _python(code: str, *args: str, **env: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=python_env(env),
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_without_the_extra_or_the_sdk_nothing_of_it_is_loaded(
    redis_url: str, key_prefix: str
) -> None:
    hidden = _python(LEAN, redis_url, key_prefix, HIDE_OTEL="1")
    assert hidden == {"otel": [], "conveyor_otel": False, "completed": 1}
    # Installed but not configured: other libraries may import the API, Conveyor does not
    # load its instrumentation.
    installed = _python(LEAN, redis_url, key_prefix + "b")
    assert installed["conveyor_otel"] is False and installed["completed"] == 1


def test_a_configured_sdk_switches_the_spans_on_by_itself(redis_url: str, key_prefix: str) -> None:
    out = _python(AUTO, redis_url, key_prefix)
    assert out["before"] is False and out["after"] is True
    assert out["spans"] == ["process auto", "send auto"]
    off = _python(AUTO, redis_url, key_prefix + "off", CONVEYOR_OTEL="0")
    assert off["after"] is False and off["spans"] == []
    # Queue made first: the add is not traced, but the worker switches the spans on at start.
    late = _python(AUTO, redis_url, key_prefix + "late", "late")
    assert late["after"] is True and late["spans"] == ["process auto"]
