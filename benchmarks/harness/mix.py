"""Scenario (f), a realistic mix: the options of job ``i``, the same rule in every language
(``node/jobs.js``, ``ruby/bench.rb``).

10 % of the jobs fail on their first attempt and are retried at once, 10 % are delayed by
0-1 s, priorities run 0-3, and each job returns a result, which the library stores.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class MixSpec:
    fail: bool
    delay_s: float
    priority: int


def spec(i: int) -> MixSpec:
    delay_ms = (i * 7919) % 1000 if i % 10 == 1 else 0
    return MixSpec(fail=i % 10 == 0, delay_s=delay_ms / 1000, priority=i % 4)


def payload(i: int) -> dict[str, Any]:
    data: dict[str, Any] = {"i": i, "t": time.time()}
    if spec(i).fail:
        data["fail"] = True
    return data


class FailOnce(Exception):
    """What a mix job marked ``fail`` raises on its first attempt."""
