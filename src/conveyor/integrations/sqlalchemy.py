"""Enqueue once a SQLAlchemy session commits (its ``after_commit`` event).

::

    with Session(engine) as session, session.begin():
        session.add(Order(item="book"))
        add_after_commit(session, queue, "send_receipt", {"order": 7})
    # the job is added after the COMMIT; a rollback drops it

The job is validated at once (a bad option raises in the caller), kept in ``session.info``, and
added when the session's outermost transaction commits; its rollback discards it (a SAVEPOINT
rolled back does not: those adds follow the outer transaction). The window this
leaves: a process that dies between the commit and the add loses the job (and if Redis refuses
the add, ``commit()`` raises after the data was committed). Where that matters, write the job in
the transaction itself with the PostgreSQL outbox (``conveyor.outbox.Outbox.add(session, ...)``).

An ``AsyncSession`` works too (its ``sync_session``); the add then blocks the event loop for
one round trip after the commit.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError
from ..options import OPTION_NAMES, build_spec
from ..procedures import QueueCore
from ..sync_queue import SyncQueue

__all__ = ["add_after_commit"]

#: ``session.info`` key of the adds waiting for the commit.
PENDING = "conveyor.after_commit"


def add_after_commit(
    session: Any, queue: QueueCore, name: str, data: Any = None, **options: Any
) -> None:
    """``queue.add(name, data, **options)`` after ``session`` commits (``queue``: a
    ``SyncQueue``, or a ``Queue`` whose settings a blocking twin is made with)."""
    from sqlalchemy import event

    session = getattr(session, "sync_session", session)  # AsyncSession
    if not hasattr(session, "info"):
        raise ConfigurationError(f"add_after_commit needs a SQLAlchemy Session, not {session!r}")
    if not isinstance(queue, QueueCore):
        raise ConfigurationError(f"add_after_commit needs a Queue or SyncQueue, not {queue!r}")
    unknown = sorted(set(options) - OPTION_NAMES)
    if unknown:
        raise ConfigurationError(f"unknown job options {unknown}")
    build_spec(queue.settings, name, data, **options)  # raises now, not after the commit
    target = queue if isinstance(queue, SyncQueue) else _blocking_twin(queue)
    pending: list[tuple[SyncQueue, str, Any, dict[str, Any]]] | None = session.info.get(PENDING)
    if pending is None:
        pending = session.info[PENDING] = []
        # after_commit fires for a SAVEPOINT's release too: it only marks a commit, and the
        # jobs go when the outermost transaction has ended committed.
        event.listen(session, "after_commit", _committed)
        event.listen(session, "after_transaction_end", _send)
        # (after_soft_rollback: after_rollback is skipped when no connection was ever used)
        event.listen(session, "after_soft_rollback", _discard)
    pending.append((target, name, data, options))


_twins: dict[tuple[Any, str], SyncQueue] = {}


def _blocking_twin(queue: QueueCore) -> SyncQueue:
    key = (queue.settings, queue.name)
    twin = _twins.get(key)
    if twin is None:
        twin = _twins.setdefault(key, SyncQueue(queue.name, settings=queue.settings))
    return twin


#: ``session.info`` key: a commit happened in the transaction now ending.
COMMITTED = "conveyor.after_commit.committed"


def _committed(session: Any) -> None:
    session.info[COMMITTED] = True


def _send(session: Any, transaction: Any) -> None:
    if getattr(transaction, "parent", None) is not None or getattr(transaction, "nested", False):
        return  # a SAVEPOINT or a subtransaction ended: the outer one goes on
    if not session.info.pop(COMMITTED, False):
        return
    pending = session.info.get(PENDING) or []
    while pending:  # one at a time, so a failure leaves the rest visible in session.info
        target, name, data, options = pending[0]
        target.add(name, data, **options)
        pending.pop(0)


def _discard(session: Any, previous_transaction: Any) -> None:
    # Only the outermost transaction's rollback: a SAVEPOINT rolled back keeps what was added
    # before and inside it (they go, or not, with the outer transaction).
    if getattr(previous_transaction, "parent", None) is not None:
        return
    session.info.pop(COMMITTED, None)
    pending = session.info.get(PENDING)
    if pending:
        pending.clear()
