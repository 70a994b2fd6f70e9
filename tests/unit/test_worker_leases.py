"""Keeping leases: one round trip renews, beats and recovers for every queue; its named
replies stop cancelled jobs, flag lost leases and notice a data loss."""

from __future__ import annotations

import asyncio

from tests.unit.worker_fakes import FakeRedis, queue

from conveyor.job import Job
from conveyor.storage.protocol import FetchedJob
from conveyor.worker.leased import LeasedJob, LeasedJobs
from conveyor.worker.leases import LeaseKeeper

MAIL, SMS = queue("mail"), queue("sms")


class Queues:
    """extend_leases, heartbeat and recover_stalled as the keeper sees them."""

    def __init__(self) -> None:
        self.lost: list[str] = []
        self.cancel: list[str] = []
        self.epoch = "100"
        self.stalled = [0, 0]

    def redis(self) -> FakeRedis:
        store = FakeRedis(
            extend_leases=lambda n, *pairs: [self.lost, self.cancel],
            heartbeat=lambda worker, info, ttl, known: [1, self.epoch],
            recover_stalled=lambda limit: self.stalled,
        )
        store.commands["SADD"] = lambda key, name: 1
        return store


def lease(jobs: LeasedJobs, job_id: str) -> LeasedJob:
    raw = FetchedJob(job_id, "7@w", "send", "{}", None, None, None, None, None, "1000", None)
    item = LeasedJob(MAIL, Job.from_fetch("mail", list(raw), None))
    jobs.add(item)
    return item


def keeper(store: FakeRedis, jobs: LeasedJobs) -> LeaseKeeper:
    return LeaseKeeper(store, [MAIL, SMS], jobs, "w", 30.0, lambda: "{}")


async def test_one_round_trip_keeps_every_queue() -> None:
    queues, jobs = Queues(), LeasedJobs()
    lease(jobs, "1")
    store = queues.redis()
    await keeper(store, jobs).keep()
    assert store.round_trips == 1
    assert store.names() == ["extend_leases", "heartbeat", "recover_stalled"] * 2
    assert store.calls[0][1] == (1, "1", "7@w")  # the mail queue's one lease
    assert store.calls[3][1] == (0,)  # none in sms


async def test_a_cancel_request_stops_the_job_and_a_lost_lease_is_flagged() -> None:
    queues, jobs = Queues(), LeasedJobs()
    running, lost = lease(jobs, "1"), lease(jobs, "2")
    running.task = asyncio.ensure_future(asyncio.sleep(10))
    queues.cancel, queues.lost = ["1"], ["2"]
    await keeper(queues.redis(), jobs).keep()
    await asyncio.sleep(0)
    assert running.cancelling and running.task.cancelled()
    assert lost.lost and not running.lost


async def test_a_new_epoch_is_a_data_loss_and_the_queue_is_listed_again() -> None:
    queues, jobs = Queues(), LeasedJobs()
    store = queues.redis()
    keeping = keeper(store, jobs)
    await keeping.keep()
    assert keeping.data_losses == 0
    queues.epoch = "200"
    await keeping.keep()
    assert keeping.data_losses == 2  # both queues lost their data
    assert [args[1] for name, args in store.calls if name == "SADD"] == ["mail", "sms"]


async def test_the_interval_renews_well_inside_the_lease() -> None:
    assert keeper(Queues().redis(), LeasedJobs()).interval == 2.0
    short = LeaseKeeper(Queues().redis(), [MAIL], LeasedJobs(), "w", 3.0, lambda: "{}")
    assert short.interval == 1.0
