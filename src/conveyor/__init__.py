"""Conveyor: a Redis-backed background job queue.

Where things are: ``queue`` (async producer/admin API) and ``sync_queue`` (its blocking twin),
``worker`` (leases and runs jobs) with ``runner`` (runs one job), ``job`` and ``backoff`` (pure
models), ``storage`` (keys, Lua scripts, the one module that talks to Redis), ``errors`` (the
exception tree), ``settings`` (every default).
"""

from .backoff import Backoff
from .dedupe import Dedupe  # dedup modes
from .errors import ConveyorError, JobFailed, Retry, Unrecoverable
from .events import Event
from .flow_control import RateLimit, RateLimited
from .job import Job, JobState
from .queue import Queue
from .settings import Settings
from .sync_queue import SyncQueue
from .version import __version__
from .worker import Worker
from .workflows import Callback, FlowJob

__all__ = [
    "Backoff",
    "Callback",
    "ConveyorError",
    "Dedupe",
    "Event",
    "FlowJob",
    "Job",
    "JobFailed",
    "JobState",
    "Queue",
    "RateLimit",
    "RateLimited",
    "Retry",
    "Settings",
    "SyncQueue",
    "Unrecoverable",
    "Worker",
    "__version__",
]
