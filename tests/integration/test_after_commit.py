"""Enqueue after commit with SQLAlchemy (the session's after_commit event) on the machine's
PostgreSQL and a real Redis: committed work sends its jobs, rolled-back work none, bad options
fail before the commit; and the outbox takes a SQLAlchemy session as its connection."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import Integer, String, create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from tests.support.postgres import temporary_database

from conveyor import Queue, SyncQueue
from conveyor.errors import ConfigurationError
from conveyor.integrations.sqlalchemy import PENDING, add_after_commit
from conveyor.outbox import Outbox


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item: Mapped[str] = mapped_column(String(100))


@pytest.fixture
def engine() -> Iterator[Engine]:
    with temporary_database() as dsn:
        made = create_engine(dsn.replace("postgresql://", "postgresql+psycopg://"))
        Base.metadata.create_all(made)
        yield made
        made.dispose()


@pytest.fixture
def queue(redis_url: str, key_prefix: str) -> Iterator[SyncQueue]:
    with SyncQueue("receipts", url=redis_url, prefix=key_prefix) as q:
        yield q


def _waiting(queue: SyncQueue) -> list[object]:
    return [job.data for job in queue.get_jobs("waiting", 0, -1, newest_first=False)]


def test_jobs_go_after_the_commit_and_never_after_a_rollback(
    engine: Engine, queue: SyncQueue
) -> None:
    with Session(engine) as session:
        with session.begin():
            order = Order(item="book")
            session.add(order)
            session.flush()
            order_id = order.id  # (read now: after the commit it is expired)
            add_after_commit(session, queue, "receipt", {"order": order_id}, attempts=3)
            assert _waiting(queue) == []  # not before the commit
        assert _waiting(queue) == [{"order": order_id}]
        [job] = queue.get_jobs("waiting", 0, -1)
        assert job.attempts == 3

        with pytest.raises(RuntimeError), session.begin():
            session.add(Order(item="lamp"))
            add_after_commit(session, queue, "receipt", {"order": "lamp"})
            raise RuntimeError("the request failed")
        assert session.info[PENDING] == []
        # The same session commits later work: the rolled-back job is not sent with it.
        with session.begin():
            add_after_commit(session, queue, "receipt", {"order": "vase"})
    assert _waiting(queue) == [{"order": order_id}, {"order": "vase"}]
    with Session(engine) as check:
        assert check.query(Order).count() == 1


def test_a_savepoint_does_not_send_early(engine: Engine, queue: SyncQueue) -> None:
    with Session(engine) as session, session.begin():
        with session.begin_nested():
            add_after_commit(session, queue, "receipt", {"nested": True})
        assert _waiting(queue) == []  # the SAVEPOINT's release is not the commit
    assert _waiting(queue) == [{"nested": True}]


async def test_an_async_queue_is_accepted_and_bad_input_refused(
    engine: Engine, redis_url: str, key_prefix: str
) -> None:
    queue = Queue("receipts", url=redis_url, prefix=key_prefix)
    with Session(engine) as session:
        with pytest.raises(ConfigurationError, match="unknown job options"):
            add_after_commit(session, queue, "receipt", {}, atempts=2)
        with pytest.raises(ConfigurationError, match="priority"):
            add_after_commit(session, queue, "receipt", {}, priority="high")
        with pytest.raises(ConfigurationError, match="Queue or SyncQueue"):
            add_after_commit(session, "receipts", "receipt", {})  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="Session"):
            add_after_commit(object(), queue, "receipt", {})
        with session.begin():
            add_after_commit(session, queue, "receipt", {"from": "async queue"})
    [job] = await queue.get_jobs("waiting", 0, -1)
    assert job.data == {"from": "async queue"}
    await queue.close()


@pytest.fixture
async def async_queue(redis_url: str, key_prefix: str) -> AsyncIterator[Queue]:
    q = Queue("receipts", url=redis_url, prefix=key_prefix)
    yield q
    await q.close()


async def test_the_outbox_writes_in_a_sqlalchemy_session_transaction(
    engine: Engine, async_queue: Queue
) -> None:
    outbox = Outbox(async_queue, engine.url.render_as_string(hide_password=False).replace(
        "postgresql+psycopg://", "postgresql://"
    ))  # fmt: skip
    with engine.begin() as conn:
        outbox.create_table(conn)
    with Session(engine) as session:
        with session.begin():
            session.add(Order(item="book"))
            row = outbox.add(session, "receipt", {"order": "book"})
        with pytest.raises(RuntimeError), session.begin():
            outbox.add(session, "receipt", {"order": "never"})
            raise RuntimeError("rolled back")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM conveyor_outbox")).scalar() == 1
    assert await outbox.relay(once=True) == 1
    job = await async_queue.get_job(f"outbox-{row}")
    assert job is not None and job.data == {"order": "book"}
