"""One lookup each for an error's HTTP status and its exit code, along the class hierarchy."""

from __future__ import annotations

import pytest

from conveyor import errors
from conveyor.cli_common import EXIT_ERROR, EXIT_REDIS, EXIT_UNSAFE_REDIS, EXIT_USAGE, exit_code_for
from conveyor.demo import DemoError, DemoRedisError, DemoSetupError
from conveyor.isolation import WorkerLost
from conveyor.web.errors import web_error


class _NotFoundHere(errors.JobNotFound):
    """A subclass nobody listed: it answers as its parent does."""


def _http(exc: Exception) -> tuple[int, str]:
    found = web_error(exc)
    return found.status, found.code


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (errors.ConfigurationError("x"), 400, "bad_request"),
        (errors.InvalidQueueName("x"), 400, "invalid_queue_name"),
        (errors.PayloadNotSerializable("x"), 400, "bad_request"),
        (errors.PayloadTooLarge(10, 5), 413, "payload_too_large"),
        (errors.QueueNotFound("x"), 404, "queue_not_found"),
        (errors.JobNotFound("x", "1"), 404, "job_not_found"),
        (_NotFoundHere("x", "1"), 404, "job_not_found"),
        (errors.InvalidTransition("x"), 409, "wrong_state"),
        (errors.WrongState("x"), 409, "wrong_state"),
        (errors.JobActive("x"), 409, "job_active"),
        (errors.ConnectionError("x"), 503, "redis_unavailable"),
        (errors.NotReplicated("x"), 503, "redis_unavailable"),
        (errors.OutOfMemory("x"), 503, "redis_out_of_memory"),
        (errors.CommandRefused("x"), 503, "redis_refused"),
    ],
)
def test_http_status_and_code(exc: Exception, status: int, code: str) -> None:
    assert _http(exc) == (status, code)


def test_an_unlisted_error_is_a_500_that_shows_nothing_of_it() -> None:
    for exc in (errors.UnsafeRedisConfig("secret detail"), RuntimeError("secret detail")):
        found = web_error(exc)
        assert (found.status, found.code) == (500, "internal_error")
        assert "secret" not in found.message


@pytest.mark.parametrize(
    ("exc", "exit_code"),
    [
        (errors.ConveyorError("x"), EXIT_ERROR),
        (errors.JobNotFound("x", "1"), EXIT_ERROR),
        (_NotFoundHere("x", "1"), EXIT_ERROR),
        (errors.JobActive("x"), EXIT_ERROR),
        (WorkerLost("x"), EXIT_ERROR),
        (errors.ConfigurationError("x"), EXIT_USAGE),
        (errors.InvalidQueueName("x"), EXIT_USAGE),
        (errors.PayloadTooLarge(10, 5), EXIT_USAGE),
        (errors.ConnectionError("x"), EXIT_REDIS),
        (errors.OutOfMemory("x"), EXIT_REDIS),
        (errors.CommandRefused("x"), EXIT_REDIS),
        (errors.UnsafeRedisConfig("x"), EXIT_UNSAFE_REDIS),
        (DemoError("x"), EXIT_ERROR),
        (DemoSetupError("x"), EXIT_USAGE),
        (DemoRedisError("x"), EXIT_REDIS),
    ],
)
def test_exit_code(exc: errors.ConveyorError, exit_code: int) -> None:
    assert exit_code_for(exc) == exit_code


def test_every_error_carries_a_code_and_stays_the_builtin_it_was() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        if issubclass(cls, errors.ConveyorError):
            assert isinstance(cls.code, str) and cls.code, name
    assert issubclass(errors.QueueNotFound, LookupError)
    assert issubclass(errors.JobNotFound, KeyError)
    assert issubclass(errors.WaitTimeout, TimeoutError)
    assert issubclass(DemoSetupError, ValueError)
    assert WorkerLost is errors.WorkerLost


def test_only_transient_failures_are_connection_errors() -> None:
    assert not issubclass(errors.CommandRefused, errors.ConnectionError)
    assert issubclass(errors.OutOfMemory, errors.ConnectionError)
