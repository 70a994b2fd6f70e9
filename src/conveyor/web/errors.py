"""How an exception raised behind the JSON API becomes its error response.

The code is the exception's own (``ConveyorError.code``); the HTTP status is looked up along
its class hierarchy in ``HTTP_STATUS``, so a subclass answers like its parent unless listed.
Anything else is a bug: logged, and answered with a 500 that tells nothing of the internals.
"""

from __future__ import annotations

import logging

from .. import errors
from .security import WebError

__all__ = ["HTTP_STATUS", "web_error"]

log = logging.getLogger("conveyor.web")

HTTP_STATUS: dict[type[Exception], int] = {
    errors.ConfigurationError: 400,
    errors.PayloadError: 400,
    errors.PayloadTooLarge: 413,
    errors.QueueNotFound: 404,
    errors.JobNotFound: 404,
    errors.ScheduleNotFound: 404,
    errors.InvalidTransition: 409,
    errors.ConnectionError: 503,
    errors.CommandRefused: 503,
}


def web_error(exc: Exception) -> WebError:
    """The status, code and message to answer ``exc`` with."""
    if isinstance(exc, WebError):
        return exc
    status = errors.lookup(type(exc), HTTP_STATUS)
    if status is None or not isinstance(exc, errors.ConveyorError):
        log.exception("unexpected error in the web API", exc_info=exc)
        return WebError(500, "internal_error", "unexpected server error (see the server log)")
    return WebError(status, exc.code, str(exc))
