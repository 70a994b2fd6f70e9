"""Out-of-band completion/latency probe.

Jobs call :func:`done` (a lock + two assignments: no Redis I/O on the job's
path). A daemon thread in each worker process publishes the totals to
Redis every few milliseconds so the parent can see progress:

* ``benchprobe:ready`` hash  pid -> wall time just before the library's
  worker loop is entered;
* ``benchprobe:done``  hash  pid -> "count last_completion first_completion"
  (wall times);
* ``benchprobe:lat``   list  of enqueue-to-start latencies, one per job run:
  ``"I SECONDS"`` when the adapter passes the payload index ``i`` to
  :func:`done`, plain ``"SECONDS"`` when it does not (see :func:`parse_sample`).
  With the index the latency scenario can count each job once and leave out
  warm-up jobs (``i < 0``), even when a library runs a job more than once;
* ``benchprobe:origin`` hash  pid -> the file the library was imported from, for
  adapters that say (``ORIGIN``): proof of which source tree a worker ran.
"""

from __future__ import annotations

import os
import threading
import time

READY_KEY = "benchprobe:ready"
DONE_KEY = "benchprobe:done"
LAT_KEY = "benchprobe:lat"
ORIGIN_KEY = "benchprobe:origin"
FLUSH_INTERVAL = 0.005


class Probe:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self.last = 0.0
        self.first = 0.0
        self.lat: list[str] = []

    def done(self, enqueued_at: float, i: int | None = None) -> None:
        """Record one finished job run.

        `enqueued_at` is the producer's wall time (payload ``t``), `i` the payload index.
        """
        now = time.time()
        sample = repr(now - enqueued_at)
        with self._lock:
            if not self.count:
                self.first = now
            self.count += 1
            self.last = now
            self.lat.append(sample if i is None else f"{i} {sample}")

    def start_reporter(self, url: str, origin: str | None = None) -> None:
        import redis

        client = redis.Redis.from_url(url)
        pid = str(os.getpid())
        if origin:  # before the ready stamp: a ready worker has always said where it is from
            client.hset(ORIGIN_KEY, pid, origin)
        client.hset(READY_KEY, pid, repr(time.time()))

        def loop() -> None:
            sent = -1
            while True:
                time.sleep(FLUSH_INTERVAL)
                with self._lock:
                    count, first, last, lat = self.count, self.first, self.last, self.lat
                    self.lat = []
                if count == sent and not lat:
                    continue
                pipe = client.pipeline(transaction=False)
                pipe.hset(DONE_KEY, pid, f"{count} {last!r} {first!r}")
                if lat:
                    pipe.rpush(LAT_KEY, *lat)
                pipe.execute()
                sent = count

        threading.Thread(target=loop, name="bench-probe", daemon=True).start()


PROBE = Probe()


def done(enqueued_at: float, i: int | None = None) -> None:
    PROBE.done(enqueued_at, i)


def parse_sample(raw: bytes | str) -> tuple[int | None, float]:
    """One ``benchprobe:lat`` entry -> (payload index or None, latency in seconds)."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    head, _, tail = text.partition(" ")
    return (int(head), float(tail)) if tail else (None, float(head))
