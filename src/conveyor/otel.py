"""OpenTelemetry spans for Conveyor (the ``otel`` extra: ``pip install 'conveyor-queue[otel]'``).

* a PRODUCER span ``send <queue>`` per job added (``add``, ``add_bulk``, either queue class,
  the outbox relay), whose context travels in the job (its ``opts``, as W3C ``traceparent``);
* a CONSUMER span ``process <queue>`` per attempt, around the handler, which either continues
  the producer's trace (``propagation="parent"``, the default) or starts its own and links to it
  (``"link"``; or ``CONVEYOR_OTEL_PROPAGATION=link``). Failures set the span's status and record
  the error and traceback; retries show as ``conveyor.job.attempt`` and
  ``conveyor.job.will_retry``; the queue wait as ``conveyor.job.queue_wait_ms``.

Attributes follow the messaging semantic conventions (``messaging.system`` is ``conveyor``).

It switches itself on when a queue or worker is created after an SDK ``TracerProvider`` was
installed globally (``CONVEYOR_OTEL=0`` keeps it off); ``instrument()`` does it explicitly, with
any provider. Nothing here is imported, and nothing is patched, until then: without the extra,
adding and running jobs costs nothing more. This module is the only one that imports
``opentelemetry``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import orjson
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from .errors import ConfigurationError
from .job import Job, JobContext
from .procedures import QueueCore
from .runner import NO_RETRY, AttemptOutcome
from .storage.commands import AddSpec
from .storage.ops import Op
from .version import __version__
from .worker import running

__all__ = ["Propagation", "auto_instrument", "instrument", "is_instrumented", "uninstrument"]

Propagation = Literal["parent", "link"]
PROPAGATION_ENV = "CONVEYOR_OTEL_PROPAGATION"
SYSTEM = "conveyor"
#: The worker runs each attempt through this function of ``conveyor.worker.running``.
_RUN_JOB = "run_job"


@dataclasses.dataclass
class _Instrumentation:
    tracer: trace.Tracer
    propagation: Propagation
    add_op: Callable[..., Op[list[Job]]]
    run_job: Callable[..., Any]


_active: _Instrumentation | None = None


def is_instrumented() -> bool:
    return _active is not None


def instrument(
    *, tracer_provider: trace.TracerProvider | None = None, propagation: Propagation | None = None
) -> None:
    """Switch the spans on for this process (again: re-configure them)."""
    global _active
    raw = propagation or os.environ.get(PROPAGATION_ENV) or "parent"
    if raw not in ("parent", "link"):
        raise ConfigurationError(f"propagation must be 'parent' or 'link', not {raw!r}")
    chosen: Propagation = "link" if raw == "link" else "parent"
    uninstrument()
    tracer = trace.get_tracer("conveyor", __version__, tracer_provider=tracer_provider)
    _active = _Instrumentation(tracer, chosen, QueueCore._add_op, getattr(running, _RUN_JOB))
    QueueCore._add_op = _traced_add_op  # type: ignore[method-assign]
    QueueCore.plain_adds = False  # every add goes through the span-making _add_op
    setattr(running, _RUN_JOB, _traced_run_job)


def uninstrument() -> None:
    """Switch the spans off again (the original methods come back)."""
    global _active
    if _active is None:
        return
    QueueCore._add_op = _active.add_op  # type: ignore[method-assign]
    QueueCore.plain_adds = True
    setattr(running, _RUN_JOB, _active.run_job)
    _active = None


def auto_instrument() -> bool:
    """Instrument if an SDK tracer provider is installed globally and nobody said no."""
    if _active is not None:
        return True
    if os.environ.get("CONVEYOR_OTEL", "").strip().lower() in ("0", "false", "no", "off"):
        return False
    provider = trace.get_tracer_provider()
    # The API's stand-ins (a proxy until one is set, or the no-op one) mean "not configured".
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return False
    instrument()
    return True


# -- producer ---------------------------------------------------------------------------------


def _traced_add_op(
    self: QueueCore, specs: Sequence[AddSpec], context: JobContext | None
) -> Op[list[Job]]:
    state = _active
    assert state is not None
    now_ms = int(time.time() * 1000)
    spans, traced = [], []
    for spec in specs:
        options = orjson.loads(spec.opts)
        # A job written to the outbox carries its writer's context: the span sent by the relay
        # belongs to the request that wrote the row, not to the relay.
        written = options.get("trace")
        parent = propagate.extract(written) if isinstance(written, dict) else None
        span = state.tracer.start_span(
            f"send {self.name}",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": SYSTEM,
                "messaging.destination.name": self.name,
                "messaging.operation.type": "send",
                "messaging.operation.name": "send",
                "messaging.message.body.size": len(spec.data),
                "conveyor.job.name": spec.name,
                "conveyor.job.attempts": spec.attempts,
                "conveyor.job.priority": spec.priority,
                "conveyor.job.delay_ms": spec.delay_ms,
            },
        )
        carrier: dict[str, Any] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        # "ready": when the job may first run (the producer's clock), for the queue wait.
        carrier["ready"] = now_ms + spec.delay_ms
        options["trace"] = carrier
        spans.append(span)
        traced.append(spec._replace(opts=orjson.dumps(options).decode()))
    op = state.add_op(self, traced, context)

    def finish(jobs: list[Job]) -> list[Job]:
        for span, job in zip(spans, jobs, strict=False):
            span.set_attribute("messaging.message.id", job.id)
            span.end()
        return jobs

    def fail(exc: BaseException) -> None:
        for span in spans:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, str(exc)))
            span.set_attribute("error.type", type(exc).__qualname__)
            span.end()

    return _then(op, finish, fail)


def _then(
    op: Op[list[Job]],
    finish: Callable[[list[Job]], list[Job]],
    fail: Callable[[BaseException], None],
) -> Op[list[Job]]:
    """``op`` whose final value (after any follow-up Op) goes through ``finish``. (Spans of an
    add whose round trip never completes are dropped unexported: nothing else holds them.)"""

    def parse(replies: list[Any]) -> list[Job] | Op[list[Job]]:
        try:
            value = op.parse(replies)
        except BaseException as exc:
            fail(exc)
            raise
        if isinstance(value, Op):
            return _then(value, finish, fail)
        return finish(value)

    return Op(op.commands, parse)


def outbox_context(spec: AddSpec) -> AddSpec:
    """``spec`` with the caller's current trace context in its opts (for ``Outbox.add``)."""
    carrier: dict[str, Any] = {}
    propagate.inject(carrier)
    if not carrier:
        return spec
    options = orjson.loads(spec.opts)
    options["trace"] = carrier
    return spec._replace(opts=orjson.dumps(options).decode())


# -- consumer ---------------------------------------------------------------------------------


async def _traced_run_job(job: Job, *args: Any, **kwargs: Any) -> AttemptOutcome:
    state = _active
    if state is None:  # uninstrumented while this worker ran
        original: Callable[..., Any] = getattr(running, _RUN_JOB)
        return await original(job, *args, **kwargs)  # type: ignore[no-any-return]
    carrier = job.trace if isinstance(job.trace, dict) else None
    parent: Context | None = None
    links: list[Link] = []
    if carrier:
        produced = propagate.extract(carrier)
        if state.propagation == "parent":
            parent = produced
        else:
            span_context = trace.get_current_span(produced).get_span_context()
            if span_context.is_valid:
                links.append(Link(span_context))
            parent = Context()  # a trace of its own
    attributes: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.destination.name": job.queue,
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.message.id": job.id,
        "conveyor.job.name": job.name,
        "conveyor.job.attempt": job.attempt,
        "conveyor.job.attempts": job.attempts,
    }
    if carrier and job.attempt == 1 and isinstance(carrier.get("ready"), int):
        attributes["conveyor.job.queue_wait_ms"] = max(
            int(time.time() * 1000) - carrier["ready"], 0
        )
    span = state.tracer.start_span(
        f"process {job.queue}",
        context=parent,
        kind=SpanKind.CONSUMER,
        links=links,
        attributes=attributes,
    )
    with trace.use_span(
        span, end_on_exit=False, record_exception=False, set_status_on_exception=False
    ):
        try:
            outcome: AttemptOutcome = await state.run_job(job, *args, **kwargs)
        except BaseException as exc:  # cancelled: the worker stopped or cancelled the job
            span.set_attribute("conveyor.job.outcome", "interrupted")
            span.set_attribute("error.type", type(exc).__qualname__)
            span.end()
            raise
    _record(span, job, outcome)
    span.end()
    return outcome


def _record(span: trace.Span, job: Job, outcome: AttemptOutcome) -> None:
    span.set_attribute("conveyor.job.duration_ms", outcome.duration_ms)
    if outcome.completed:
        span.set_attribute("conveyor.job.outcome", "completed")
        return
    error = outcome.error or "failed"
    will_retry = outcome.retry_delay_ms != NO_RETRY and job.attempt < job.attempts
    span.set_status(Status(StatusCode.ERROR, error))
    span.set_attribute("error.type", error.split(":", 1)[0])
    span.set_attribute("conveyor.job.outcome", "retry" if will_retry else "failed")
    span.set_attribute("conveyor.job.will_retry", will_retry)
    if will_retry:
        span.set_attribute("conveyor.job.retry_in_ms", max(outcome.retry_delay_ms, 0))
    event = {"exception.type": error.split(":", 1)[0], "exception.message": error}
    if outcome.traceback:
        event["exception.stacktrace"] = outcome.traceback
    span.add_event("exception", event)
