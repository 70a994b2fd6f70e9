-- Metrics tallied per call (needs the queue include).
--[[ Metrics. Per-minute counters live in one hash per hour (BASE.."metrics:<hour>", fields
"<minute>:<name>"), so a week of history is ~170 small keys with a TTL. Lifetime totals go to
BASE.."metrics:total" (a fixed set of fields, for Prometheus counters). Durations ("wait":
queued -> started, "run": started -> finished) are counted in log-scale buckets of a factor
sqrt(2): bucket b >= 1 holds [2^((b-1)/2), 2^(b/2)) ms, bucket 0 holds < 1 ms, bucket 60 the
rest; as "<kind>:<b>" counters plus "<kind>_ms" in the totals only.
A script tallies its metrics in memory and writes them once, in flush_metrics, so a call for a
hundred jobs costs a few HINCRBYs instead of hundreds. ]]
local tally, durations, duration_ms = {}, {}, {}

local function count_metric(name, amount)
  tally[name] = (tally[name] or 0) + amount
end

-- Called for every job a fetch or complete handles, so it only counts: the bucket comes from
-- the exponent math.frexp returns (no logarithm), the field names are made in flush_metrics.
local SQRT_HALF = 0.70710678118654752
local function record_duration(kind, ms)
  local b = 0
  if ms >= 1 then
    local m, e = math.frexp(ms)  -- ms = m * 2^e, 0.5 <= m < 1
    b = 2 * e - 1
    if m >= SQRT_HALF then b = b + 1 end
    if b > 60 then b = 60 end
  elseif ms < 0 then
    ms = 0
  end
  local counts = durations[kind]
  if not counts then
    counts = {}
    durations[kind] = counts
    duration_ms[kind] = 0
  end
  counts[b] = (counts[b] or 0) + 1
  duration_ms[kind] = duration_ms[kind] + ms
end

local function flush_metrics(now)
  for kind, counts in pairs(durations) do
    for b, n in pairs(counts) do count_metric(kind .. ":" .. b, n) end
  end
  if next(tally) == nil then return end
  local minute = math.floor(now / 60000)
  local key = BASE .. "metrics:" .. math.floor(minute / 60)
  local total_key = BASE .. "metrics:total"
  -- A field of this minute that HINCRBY reports at exactly the amount added is new, and so
  -- may be the hour's hash: only then does it need its TTL (saves a call on most flushes).
  local fresh = false
  for name, amount in pairs(tally) do
    if redis.call("HINCRBY", key, minute .. ":" .. name, amount) == amount then fresh = true end
    redis.call("HINCRBY", total_key, name, amount)
  end
  for kind, ms in pairs(duration_ms) do
    redis.call("HINCRBY", total_key, kind .. "_ms", ms)
  end
  if fresh then redis.call("EXPIRE", key, METRICS_TTL, "NX") end
  tally, durations, duration_ms = {}, {}, {}
end
