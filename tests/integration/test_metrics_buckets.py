"""The duration buckets the scripts count in (includes/metrics.lua) are the ones the readers
decode (admin.bucket_bounds), at every boundary: run in a real Redis's Lua."""

from __future__ import annotations

from importlib import resources

import redis.asyncio as aioredis

from conveyor.admin import bucket_bounds
from conveyor.settings import Settings
from conveyor.storage.commands import QueueCommands
from conveyor.storage.scripts import build_source

# record_duration for each ARGV, then the bucket it counted and the sum of the durations.
_PROBE = """
local out = {}
for i = 1, #ARGV do
  durations = {}
  record_duration("run", tonumber(ARGV[i]))
  out[i] = next(durations["run"])
end
durations, duration_ms = {}, {}
for i = 1, #ARGV do record_duration("run", tonumber(ARGV[i])) end
out[#out + 1] = duration_ms["run"]
return out
"""


def expected_bucket(ms: int) -> int:
    if ms < 1:
        return 0
    for bucket in range(1, 60):
        low, high = bucket_bounds(bucket)
        if low <= ms < high:
            return bucket
    return 60


async def test_each_duration_lands_in_the_bucket_the_readers_decode(redis_url: str) -> None:
    def read(path: str) -> str:
        if path == "probe.lua":
            return "-- @include queue\n-- @include metrics\n" + _PROBE
        return resources.files("conveyor.storage").joinpath("lua", path).read_text("utf-8")

    source = build_source("probe", QueueCommands(Settings(), "q").script_settings, read)
    # Every power of 2 and its neighbours (the boundaries of even buckets), the integers around
    # the odd ones (2^(k + 1/2)), a span of small values, and the clamps at both ends.
    values = {-5, 0, *range(1, 200), 10**15}
    for k in range(0, 40):
        for edge in (2**k, round(2 ** (k + 0.5))):
            values.update({edge - 1, edge, edge + 1})
    ms = sorted(values)
    client = aioredis.Redis.from_url(redis_url)
    try:
        reply = await client.eval(source, 1, "probe:{q}:", *ms)  # KEYS[1]: the queue base
    finally:
        await client.aclose()
    *buckets, total = reply
    assert buckets == [expected_bucket(v) for v in ms]
    assert total == sum(max(v, 0) for v in ms)
