"""Sidekiq 6.4 for Ruby (Debian's ``ruby-sidekiq``), Ruby's standard: ``ruby/bench.rb``.

Its producer and workers are Ruby processes (``harness/foreign.py``); a blocking client, so
(a2) runs 16 producer threads as for the Python blocking peers. After a job it keeps nothing of
the job (only the processed counters); a failed one goes to the retry set. Its basic fetch is a
``BRPOP``: a fetched job lives only in the worker's memory and dies with its process, so it
does not acknowledge. No realistic mix: no priorities within a queue, and retries and delayed
jobs wait for the scheduler's poll (about every 5 s at its defaults).
"""

from __future__ import annotations

from harness.foreign import Foreign

DIST = "sidekiq (ruby)"
FOREIGN = Foreign("sidekiq", "ruby", blocking=True)
SETTINGS = (
    "Ruby: sidekiq CLI per process, -c 10 (its default) / 100 for (d), basic fetch; "
    "Sidekiq::Client.push_bulk chunks of 1000; 16 producer threads for (a2), with a client pool "
    "of 16 connections (its default 5 times out); "
    "log level WARN (its default logs two lines per job)"
)
RETENTION = (
    "keeps nothing of a finished job (counters only; failures go to the retry set); does not "
    "acknowledge: basic fetch is a BRPOP, a fetched job dies with its process"
)
SCENARIOS = ("enqueue", "enqueue_concurrent", "bulk", "drain_noop", "drain_sleep", "latency")
