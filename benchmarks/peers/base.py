"""Adapter contract shared by every `peers/<lib>.py` module.

Each adapter module defines:

* ``DIST``: distribution name used to report the installed version;
* ``SETTINGS``: a one-line human summary of the worker settings used;
* ``async def open_producer(url: str) -> Producer``;
* ``def run_worker(url: str, mode: str) -> None``: blocks forever, running the
  library's worker in this process. ``mode`` is ``"noop"`` (scenarios c and e)
  or ``"sleep"`` (scenario d) so an adapter may pick the concurrency the
  library recommends for that kind of work. ``harness.worker_main`` stamps the
  process "ready" (``PROBE.start_reporter``) before calling it, so everything it
  does counts as the library's start-up. An asyncio library runs its worker
  through :func:`run_on_uvloop`;
* optionally ``SCENARIOS``: the scenarios the module supports (default: all).
  Producer-only rows (the LPUSH baselines, ``conveyor_sync``) set ``("enqueue",)``;
  the driver's list of such rows is ``harness.report.ENQUEUE_ONLY``;
* optionally ``"drain_mix"`` in ``SCENARIOS`` (scenario f, opt-in) with a producer method
  ``async def enqueue_mix(datas)`` that adds each job with its options (``harness/mix.py``)
  and a worker that runs ``mix`` jobs;
* instead of ``open_producer`` and ``run_worker``, a library in another language sets
  ``FOREIGN`` (``harness.foreign.Foreign``): its producer and workers are processes of its own
  runtime (``node/bench.js``, ``ruby/bench.rb``);
* optionally ``RETENTION``: one line on what the library keeps in Redis after a job and
  whether it acknowledges, listed under the report's table;
* optionally ``ORIGIN`` and ``VERSION``: the file the library was imported from and
  its version as that code says. Conveyor's adapters set them, so a run of an earlier
  commit (``run.py --base``) shows, in every producer's and worker's result, that it
  ran that commit's code, under that commit's version.

Sync libraries implement ``async def enqueue`` with a blocking call that never
yields to the event loop, so their producer pays no asyncio cost.

Jobs are named ``noop`` and ``sleep``; both receive ``{"i": int, "t": float}``
(``t`` = producer wall clock just before the enqueue call) and call
``harness.probe.done(t)`` when finished. ``sleep`` first waits 10 ms.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Protocol

Payload = dict[str, Any]
SLEEP_S = 0.01


class Producer(Protocol):
    #: True when the library offers a real bulk-enqueue API.
    has_bulk: bool
    #: jobs per bulk call
    bulk_chunk: int

    async def enqueue(self, task: str, data: Payload) -> None: ...

    async def enqueue_bulk(self, task: str, datas: list[Payload]) -> None: ...

    async def close(self) -> None: ...


class NoBulk:
    """Mixin for libraries without a bulk-enqueue API."""

    has_bulk = False
    bulk_chunk = 0

    async def enqueue_bulk(self, task: str, datas: list[Payload]) -> None:
        raise NotImplementedError


def run_on_uvloop(main: Coroutine[Any, Any, None]) -> None:
    """Run an asyncio library's worker on uvloop, as Conveyor's runs: the event loop is not
    what this benchmark compares. (taskiq's own CLI picks uvloop when it is installed.)"""
    import uvloop

    uvloop.run(main)
