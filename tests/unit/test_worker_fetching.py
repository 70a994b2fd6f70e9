"""The fetch loop against a stand-in worker (``FetchHost``) and stand-in Redis: how much it
asks each queue for, when it stops, how it waits for work and what it hands back."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.unit.worker_fakes import FakeRedis, queue

from conveyor.settings import Settings
from conveyor.storage.commands import QueueCommands
from conveyor.storage.protocol import FetchReply
from conveyor.worker.fetching import Fetcher

MAIL, SMS = queue("mail", fetch_size=3), queue("sms", fetch_size=3)


class Host:
    """A worker with ``free`` slots whose jobs never finish."""

    id = "w"

    def __init__(self, free: int, burst: bool = False) -> None:
        self.free = free
        self.burst = burst
        self.started: list[tuple[str, str]] = []

    def fetchable(self) -> int:
        return self.free - len(self.started)

    def limit_reached(self) -> bool:
        return False

    def holds_jobs(self) -> bool:
        return bool(self.started)

    def start(self, commands: QueueCommands, reply: FetchReply) -> None:
        self.started += [(commands.queue, job.id) for job in reply.jobs]

    async def wait_for_slot(self) -> None:
        await asyncio.sleep(3600)

    async def wait_until_settled(self) -> None:
        await asyncio.sleep(3600)


class Waiting:
    """The wait sets of the queues, and fetch.lua over them."""

    def __init__(self, **jobs: list[str]) -> None:
        self.jobs = {f"conveyor:{{{name}}}:": ids for name, ids in jobs.items()}
        self.next_due_ms: int | None = None

    def redis(self) -> FakeRedis:
        store: FakeRedis

        def fetch(worker: str, count: int) -> list[Any]:
            ids = self.jobs[store.queue]
            taken, self.jobs[store.queue] = ids[:count], ids[count:]
            header: list[Any] = []
            if len(taken) < count and self.next_due_ms is not None:
                header = ["next_due_ms", self.next_due_ms]
            fields = [None, None, None, None, None, None, None, "1", None]
            return [header, *[f for i in taken for f in (i, "1@w", "send", *fields[1:])]]

        store = FakeRedis(fetch=fetch, release=lambda n, *pairs: n)
        store.commands["BZPOPMIN"] = lambda *args: None
        return store


def fetcher(host: Host, store: FakeRedis, blocking: FakeRedis | None = None) -> Fetcher:
    settings = Settings(url="redis://127.0.0.1:1/0", fetch_size=3, idle_wake_seconds=5.0)
    return Fetcher(host, [MAIL, SMS], settings, store, blocking or store, asyncio.Event())


async def test_each_queue_is_offered_the_slots_the_ones_before_it_left() -> None:
    waiting = Waiting(mail=["1"], sms=["2", "3", "4", "5"])
    host, store = Host(free=4), waiting.redis()
    loop = fetcher(host, store)
    running = asyncio.create_task(loop.run())
    await asyncio.sleep(0.02)
    assert host.started == [("mail", "1"), ("sms", "2"), ("sms", "3"), ("sms", "4")]
    assert [args[1] for _, args in store.calls[:2]] == [3, 3]  # at most fetch_size at once
    loop._stopping.set()
    await asyncio.wait_for(running, 1)


async def test_burst_mode_stops_once_a_round_finds_nothing_and_nothing_is_held() -> None:
    waiting = Waiting(mail=[], sms=[])
    host, store = Host(free=2, burst=True), waiting.redis()
    await asyncio.wait_for(fetcher(host, store).run(), 1)
    assert store.names() == ["fetch", "fetch"]


async def test_idle_it_blocks_on_every_marker_until_the_next_delayed_job_is_due() -> None:
    waiting = Waiting(mail=[], sms=[])
    waiting.next_due_ms = 50
    host, store = Host(free=2), waiting.redis()
    loop = fetcher(host, store)
    running = asyncio.create_task(loop.run())
    await asyncio.sleep(0.08)
    waits = [args for name, args in store.calls if name == "BZPOPMIN"]
    assert waits[0] == (MAIL.keys.marker, SMS.keys.marker, 0.05)
    waiting.jobs[f"conveyor:{{{MAIL.queue}}}:"] = ["7"]
    await asyncio.sleep(0.1)
    assert host.started == [("mail", "7")]
    loop._stopping.set()
    await asyncio.wait_for(running, 1)


async def test_the_fetch_behind_the_wait_starts_jobs_and_stopping_hands_its_jobs_back() -> None:
    waiting = Waiting(mail=[], sms=[])
    host, store = Host(free=2), waiting.redis()
    blocking = waiting.redis()
    blocking.direct = type("Direct", (), {"client_id": None})()
    blocking.block_for = 0.05
    loop = fetcher(host, store, blocking)
    running = asyncio.create_task(loop.run())
    await asyncio.sleep(0.01)
    waiting.jobs[f"conveyor:{{{SMS.queue}}}:"] = ["8"]
    await asyncio.sleep(0.06)  # the wait ends; the fetch queued behind it leased job 8
    assert host.started == [("sms", "8")]
    # Two free slots: the fetch behind the wait asked the first queue only, so a full round
    # of fetches followed (and found job 8 in the second).
    assert blocking.names()[:2] == ["BZPOPMIN", "fetch"]
    waiting.jobs[f"conveyor:{{{MAIL.queue}}}:"] = ["9"]
    loop._stopping.set()
    await asyncio.wait_for(running, 1)
    await loop.end_waits()
    assert ("mail", "9") not in host.started
    assert ("release", (1, "9", "1@w")) in store.calls
