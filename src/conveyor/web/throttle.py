"""The pace of failed credential checks: password and token guessing slowed down per client."""

from __future__ import annotations

import dataclasses
import ipaddress
import time

__all__ = ["FailureThrottle", "client_key"]


def client_key(host: str | None) -> str:
    """Whom a failure counts against: the client's address; for IPv6 its /64, since one host
    commonly holds a whole /64."""
    if not host:
        return "?"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # an IPv4 client of a dual-stack server
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


@dataclasses.dataclass(slots=True)
class _Record:
    failures: int = 0
    last_failure: float = 0.0
    blocked_until: float = 0.0


@dataclasses.dataclass(slots=True)
class FailureThrottle:
    """Slows down repeated failed credential checks per client: the first ``free_failures``
    pass, then each failure blocks that client for twice as long as the previous one, up to
    ``max_delay``. Other clients are not affected; a success clears the client's record."""

    free_failures: int = 5
    first_delay: float = 1.0
    max_delay: float = 60.0
    #: A client's record is dropped this long after its last failure.
    forget_after: float = 900.0
    #: At most this many clients are remembered (the oldest records go first).
    max_clients: int = 10_000
    _records: dict[str, _Record] = dataclasses.field(default_factory=dict)

    def retry_after(self, client: str, now: float | None = None) -> float:
        """Seconds until ``client`` may try again; 0 when it may now."""
        record = self._records.get(client)
        if record is None:
            return 0.0
        return max(record.blocked_until - (now if now is not None else time.monotonic()), 0.0)

    def failed(self, client: str, now: float | None = None) -> None:
        now = now if now is not None else time.monotonic()
        record = self._records.pop(client, None)
        if record is None or now - record.last_failure > self.forget_after:
            record = _Record()
        record.failures += 1
        record.last_failure = now
        over = record.failures - self.free_failures
        if over > 0:
            delay = min(self.first_delay * 2 ** min(over - 1, 32), self.max_delay)
            record.blocked_until = now + delay
        self._records[client] = record  # re-inserted: the dict stays in order of last failure
        while len(self._records) > self.max_clients:
            del self._records[next(iter(self._records))]

    def succeeded(self, client: str) -> None:
        self._records.pop(client, None)
