"""The worker: ``Worker`` leases jobs from queues and runs them (see ``lifecycle``)."""

from .lifecycle import Worker

__all__ = ["Worker"]
