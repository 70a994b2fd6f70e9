"""Every exception Conveyor raises, in one tree.

::

    ConveyorError
    ├── ConfigurationError (ValueError)     bad settings, options or names
    │   └── InvalidQueueName
    ├── PayloadError (ValueError)           job data refused before it reaches Redis
    │   ├── PayloadNotSerializable
    │   └── PayloadTooLarge
    ├── ConnectionError                     Redis unreachable (transient: callers may retry)
    │   ├── OutOfMemory                     Redis is at maxmemory (noeviction): nothing was written
    │   └── NotReplicated                   fewer replicas than asked confirmed an add in time
    ├── CommandRefused                      Redis refused a command (ACL, disabled command, script):
    │                                       retrying the same command fails the same way
    ├── UnsafeRedisConfig                   Redis would evict keys (maxmemory-policy)
    ├── QueueNotFound (LookupError)         no queue of that name is registered
    ├── ScheduleNotFound (LookupError)      no schedule of that id in the queue
    ├── JobError                            about one job; carries ``job_id``
    │   ├── JobNotFound (KeyError)
    │   ├── InvalidTransition               the job is not in a state that allows the action
    │   │   ├── JobActive                   ... because it is running
    │   │   └── WrongState                  ... because it is in another state
    │   ├── LeaseLost                       another worker owns the job now
    │   └── JobFailed                       raised by ``job.wait()``; carries ``reason``
    ├── WaitTimeout (TimeoutError)          ``job.wait(timeout=)`` ran out
    └── WorkerLost                          the child process of an isolated job died

Each class names its ``code``, a stable string (the JSON API's error code). The HTTP status
(``web.errors``) and the command line's exit code (``cli_common``) are looked up along the
class hierarchy, so a subclass is reported like its parent unless it is listed itself.

Handlers may raise two control-flow exceptions (not errors of Conveyor's own):

* ``Retry(delay=...)``: retry this attempt after ``delay`` seconds, ignoring the backoff policy.
* ``Unrecoverable``: fail the job now; remaining attempts are not used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

__all__ = [
    "CommandRefused",
    "ConfigurationError",
    "ConnectionError",
    "ConveyorError",
    "InvalidQueueName",
    "InvalidTransition",
    "JobActive",
    "JobError",
    "JobFailed",
    "JobNotFound",
    "LeaseLost",
    "NotReplicated",
    "OutOfMemory",
    "PayloadError",
    "PayloadNotSerializable",
    "PayloadTooLarge",
    "QueueNotFound",
    "Retry",
    "ScheduleNotFound",
    "Unrecoverable",
    "UnsafeRedisConfig",
    "WaitTimeout",
    "WorkerLost",
    "WrongState",
]

T = TypeVar("T")


class ConveyorError(Exception):
    """Base of every exception raised by Conveyor."""

    code = "conveyor_error"


def lookup(error: type[BaseException], table: Mapping[type[Exception], T]) -> T | None:
    """The value ``table`` gives the nearest class of ``error``'s hierarchy (its MRO), or None
    when no class of it is listed: how a status or an exit code is found for an error. (Not in
    ``__all__``, which lists the exceptions only.)"""
    for cls in error.__mro__:
        if issubclass(cls, Exception) and cls in table:
            return table[cls]
    return None


class ConfigurationError(ConveyorError, ValueError):
    """A setting, job option or name is invalid."""

    code = "bad_request"


class InvalidQueueName(ConfigurationError):
    """A queue name contains characters that are not allowed, or is too long."""

    code = "invalid_queue_name"


class PayloadError(ConveyorError, ValueError):
    """Job data (or a result) was refused before reaching Redis."""

    code = "bad_request"


class PayloadNotSerializable(PayloadError):
    """The value cannot be encoded as JSON."""


class PayloadTooLarge(PayloadError):
    """The encoded value is larger than the configured limit."""

    code = "payload_too_large"

    def __init__(self, size: int, limit: int, what: str = "job data") -> None:
        super().__init__(
            f"{what} is {size} bytes once encoded, over the limit of {limit} bytes "
            "(raise Settings.max_payload_bytes, or store the payload elsewhere and pass a key)"
        )
        self.size = size
        self.limit = limit


class ConnectionError(ConveyorError):
    """Redis could not be reached or cannot serve commands now: retrying later may succeed."""

    code = "redis_unavailable"


class OutOfMemory(ConnectionError):
    """Redis reached maxmemory and refused the write; nothing was changed."""

    code = "redis_out_of_memory"


class NotReplicated(ConnectionError):
    """The master stored the jobs but too few replicas confirmed them (``wait_replicas``)."""


class CommandRefused(ConveyorError):
    """Redis answered with an error: an ACL rule, a disabled or unknown command, a script error.

    Not a ``ConnectionError``: the same command would be refused again."""

    code = "redis_refused"


class UnsafeRedisConfig(ConveyorError):
    """Redis is configured in a way that can lose jobs (e.g. an evicting maxmemory-policy)."""

    code = "unsafe_redis_config"


class QueueNotFound(ConveyorError, LookupError):
    """The queue name is valid but no queue of that name is registered."""

    code = "queue_not_found"


class ScheduleNotFound(ConveyorError, LookupError):
    """No schedule (job scheduler) with that id exists in the queue."""

    code = "schedule_not_found"


class JobError(ConveyorError):
    """An error about one job."""

    code = "job_error"

    def __init__(self, message: str, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id


class JobNotFound(JobError, KeyError):
    """No job with that id exists in the queue (never added, removed, or cleaned up)."""

    code = "job_not_found"

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class InvalidTransition(JobError):
    """The job's state does not allow the requested action (e.g. retrying a completed job)."""

    code = "wrong_state"


class JobActive(InvalidTransition):
    """The action needs a job that is not running, and this one is running."""

    code = "job_active"


class WrongState(InvalidTransition):
    """The job is in a state other than the one the action needs (and is not running)."""


class LeaseLost(JobError):
    """The worker's lease on the job expired and another worker took the job over."""

    code = "lease_lost"


class JobFailed(JobError):
    """The awaited job failed; ``reason`` says why (the last error, "stalled", "timeout", ...)."""

    code = "job_failed"

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(f"job {job_id} failed: {reason}", job_id)
        self.reason = reason


class WaitTimeout(ConveyorError, TimeoutError):
    """The job did not finish within the time given to ``wait``."""

    code = "wait_timeout"


class WorkerLost(ConveyorError):
    """The child process running the job died before it finished (crash, kill, out of memory)."""

    code = "worker_lost"


class Retry(Exception):
    """Raise from a handler to retry the job after ``delay`` seconds (counts as an attempt)."""

    def __init__(self, delay: float | None = None, reason: str = "retry requested") -> None:
        super().__init__(reason)
        self.delay = delay


class Unrecoverable(Exception):
    """Raise from a handler to fail the job at once, without using its remaining attempts."""
