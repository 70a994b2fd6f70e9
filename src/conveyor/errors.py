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
    │   ├── NotReplicated                   fewer replicas than asked confirmed an add in time
    │   └── CommandRefused                  Redis refused a command (ACL, disabled command, script)
    ├── UnsafeRedisConfig                   Redis would evict keys (maxmemory-policy)
    ├── JobError                            about one job; carries ``job_id``
    │   ├── JobNotFound (KeyError)
    │   ├── InvalidTransition               the job is not in a state that allows the action
    │   ├── LeaseLost                       another worker owns the job now
    │   └── JobFailed                       raised by ``job.wait()``; carries ``reason``
    └── WaitTimeout (TimeoutError)          ``job.wait(timeout=)`` ran out

Handlers may raise two control-flow exceptions (not errors of Conveyor's own):

* ``Retry(delay=...)``: retry this attempt after ``delay`` seconds, ignoring the backoff policy.
* ``Unrecoverable``: fail the job now; remaining attempts are not used.
"""

from __future__ import annotations

__all__ = [
    "CommandRefused",
    "ConfigurationError",
    "ConnectionError",
    "ConveyorError",
    "InvalidQueueName",
    "InvalidTransition",
    "JobError",
    "JobFailed",
    "JobNotFound",
    "LeaseLost",
    "NotReplicated",
    "OutOfMemory",
    "PayloadError",
    "PayloadNotSerializable",
    "PayloadTooLarge",
    "Retry",
    "Unrecoverable",
    "UnsafeRedisConfig",
    "WaitTimeout",
]


class ConveyorError(Exception):
    """Base of every exception raised by Conveyor."""


class ConfigurationError(ConveyorError, ValueError):
    """A setting, job option or name is invalid."""


class InvalidQueueName(ConfigurationError):
    """A queue name contains characters that are not allowed, or is too long."""


class PayloadError(ConveyorError, ValueError):
    """Job data (or a result) was refused before reaching Redis."""


class PayloadNotSerializable(PayloadError):
    """The value cannot be encoded as JSON."""


class PayloadTooLarge(PayloadError):
    """The encoded value is larger than the configured limit."""

    def __init__(self, size: int, limit: int, what: str = "job data") -> None:
        super().__init__(
            f"{what} is {size} bytes once encoded, over the limit of {limit} bytes "
            "(raise Settings.max_payload_bytes, or store the payload elsewhere and pass a key)"
        )
        self.size = size
        self.limit = limit


class ConnectionError(ConveyorError):
    """Redis could not be reached, or refused a command."""


class OutOfMemory(ConnectionError):
    """Redis reached maxmemory and refused the write; nothing was changed."""


class NotReplicated(ConnectionError):
    """The master stored the jobs but too few replicas confirmed them (``wait_replicas``)."""


class CommandRefused(ConnectionError):
    """Redis answered with an error: an ACL rule, a disabled or unknown command, a script error."""


class UnsafeRedisConfig(ConveyorError):
    """Redis is configured in a way that can lose jobs (e.g. an evicting maxmemory-policy)."""


class JobError(ConveyorError):
    """An error about one job."""

    def __init__(self, message: str, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id


class JobNotFound(JobError, KeyError):
    """No job with that id exists in the queue (never added, removed, or cleaned up)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class InvalidTransition(JobError):
    """The job's state does not allow the requested action (e.g. retrying a completed job)."""


class LeaseLost(JobError):
    """The worker's lease on the job expired and another worker took the job over."""


class JobFailed(JobError):
    """The awaited job failed; ``reason`` says why (the last error, "stalled", "timeout", ...)."""

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(f"job {job_id} failed: {reason}", job_id)
        self.reason = reason


class WaitTimeout(ConveyorError, TimeoutError):
    """The job did not finish within the time given to ``wait``."""


class Retry(Exception):
    """Raise from a handler to retry the job after ``delay`` seconds (counts as an attempt)."""

    def __init__(self, delay: float | None = None, reason: str = "retry requested") -> None:
        super().__init__(reason)
        self.delay = delay


class Unrecoverable(Exception):
    """Raise from a handler to fail the job at once, without using its remaining attempts."""
