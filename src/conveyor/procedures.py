"""Multi-step queue operations written once for both ``Queue`` and ``SyncQueue``.

A procedure is a generator: it yields the ``Op`` to run next and is sent that Op's value, until
it returns its result. ``Queue`` drives procedures with ``await``, ``SyncQueue`` by blocking,
so loops such as "clean a chunk at a time until done" exist in one place only.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from .errors import ConfigurationError, InvalidTransition, JobActive, JobNotFound, WrongState
from .job import CANCELLABLE_STATES, Job, JobContext, JobState
from .otel_auto import autostart
from .settings import Settings
from .storage.commands import AddSpec, Op, QueueCommands
from .storage.protocol import Code

__all__ = [
    "Procedure",
    "Progress",
    "QueueCore",
    "cancelled_state",
    "clean",
    "obliterate",
    "requeue_all",
    "single_action",
]

T = TypeVar("T")
Procedure = Generator[Op[Any], Any, T]
#: Told, after each chunk of a chunked operation, how many jobs it has handled so far.
Progress = Callable[[int], None]

#: Jobs per round trip for SyncQueue's bulk adds and for the admin operations done a chunk at
#: a time.
CHUNK_SIZE = 1000
#: The states cancel works in, as its refusal names them.
_CANCELLABLE = ", ".join(s.value for s in JobState if s in CANCELLABLE_STATES)


class QueueCore:
    """What ``Queue`` and ``SyncQueue`` share: the name, settings and command builder."""

    #: Whether a lone add may skip ``_add_op`` (see ``sends_alone``): not while something
    #: wraps it (OpenTelemetry's spans do, see ``otel.instrument``).
    plain_adds: ClassVar[bool] = True

    def __init__(
        self,
        name: str,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        **overrides: Any,
    ) -> None:
        self.settings = make_settings(url, settings, overrides)
        self.commands = QueueCommands(self.settings, name)
        self.name = name
        self._registered = False
        autostart()  # ecosystem: OpenTelemetry switches itself on when its SDK is configured

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, url={self.settings.redacted_url()!r})"

    def _add_op(self, specs: Sequence[AddSpec], context: JobContext | None) -> Op[list[Job]]:
        """The Op that adds ``specs``. Until one has succeeded it also registers the queue, in
        the same round trip (concurrent first adds all register: harmless, and no add waits
        for another's registration)."""
        if self._registered:
            return self.commands.add(specs, context)
        op = self.commands.add(specs, context, register=True)

        def parse(replies: list[Any]) -> list[Job] | Op[list[Job]]:
            self._registered = True
            return op.parse(replies)

        return Op(op.commands, parse)

    def sends_alone(self, spec: AddSpec) -> bool:
        """Whether one add may go out as ``commands.single_add`` over the client's direct
        connection, its reply read by ``commands.added``: the commonest add, without the Op
        around it (building and parsing an Op cost as much of the client's time as the rest
        of the add). Not before the queue is registered, with a dedup mode, while adds wait
        for replicas, nor while spans are on (``plain_adds``); ``redis.settle`` reads any
        reply ``added`` does not."""
        return (
            self._registered
            and spec.dedupe is None
            and QueueCore.plain_adds
            and not self.settings.wait_replicas
        )

    def _add_ops(
        self, specs: Sequence[AddSpec], context: JobContext | None, size: int
    ) -> Iterator[Op[list[Job]]]:
        """The Ops that add ``specs`` in chunks of ``size``, made as they are asked for (so a
        chunk sent after the first succeeded does not register the queue again)."""
        for start in range(0, len(specs), size):
            yield self._add_op(specs[start : start + size], context)


def make_settings(
    url: str | None, settings: Settings | None, overrides: Mapping[str, Any]
) -> Settings:
    """Settings from (in order of precedence) keyword overrides, ``url``, ``settings``, env."""
    base = settings if settings is not None else Settings.from_env()
    changes = dict(overrides)
    if url is not None:
        changes["url"] = url
    return base.replace(**changes) if changes else base


def check_code(code: int, job_id: str, action: str, expected_state: str) -> None:
    """Turn a script's per-job return code into the matching exception."""
    if code == Code.NOT_FOUND:
        raise JobNotFound(f"cannot {action} job {job_id}: no such job", job_id)
    if code == Code.IS_ACTIVE:
        raise JobActive(f"cannot {action} job {job_id}: it is running", job_id)
    if code == Code.WRONG_STATE:
        raise WrongState(f"cannot {action} job {job_id}: it is not {expected_state}", job_id)


def cancelled_state(reply: str | int, job_id: str) -> JobState:
    if isinstance(reply, int):
        check_code(reply, job_id, "cancel", _CANCELLABLE)
        raise AssertionError(f"cancel.lua returned {reply}")  # check_code raised for every code
    return JobState(reply)


def parse_state(state: JobState | str) -> JobState:
    try:
        return JobState(state)
    except ValueError:
        raise ConfigurationError(
            f"unknown job state {state!r}; use one of {', '.join(s.value for s in JobState)}"
        ) from None


def single_action(
    op: Op[list[int]], job_id: str, action: str, expected_state: str
) -> Procedure[None]:
    """remove / retry / promote of one job: the script's code becomes the matching error."""
    [code] = yield op
    check_code(code, job_id, action, expected_state)


def requeue_all(
    make_op: Callable[[int], Op[tuple[int, int]]], progress: Progress | None = None
) -> Procedure[int]:
    """retry_all / promote_all: a chunk at a time until the set is empty; returns how many
    moved."""
    total = 0
    while True:
        moved, remaining = yield make_op(CHUNK_SIZE)
        total += int(moved)
        if progress is not None:
            progress(total)
        if not moved or not remaining:
            return total


def clean(
    commands: QueueCommands,
    state: JobState | str,
    older_than: float,
    limit: int | None,
    progress: Progress | None = None,
) -> Procedure[int]:
    job_state = parse_state(state)
    if job_state is JobState.ACTIVE:
        raise InvalidTransition("active jobs cannot be cleaned; they are running")
    deleted, cursor = 0, "0"
    while cursor != "-1" and (limit is None or deleted < limit):
        chunk = CHUNK_SIZE if limit is None else min(CHUNK_SIZE, limit - deleted)
        count, cursor = yield commands.clean(job_state, int(older_than * 1000), chunk, cursor)
        deleted += int(count)
        if progress is not None:
            progress(deleted)
    return deleted


def obliterate(commands: QueueCommands, force: bool) -> Procedure[int]:
    cursor, deleted = "0", 0
    while True:
        reply, count = yield commands.obliterate(force, cursor)
        if isinstance(reply, Code):  # Code.IS_ACTIVE: jobs are running
            raise InvalidTransition(
                f"queue {commands.queue!r} has {count} running jobs; stop the workers or use force"
            )
        deleted += int(count)
        cursor = reply
        if cursor == "0":
            break
    yield commands.unregister()
    return deleted
