-- Metrics tallied per call (needs the queue include).
--[[ Metrics. Per-minute counters live in one hash per hour (BASE.."metrics:<hour>", fields
"<minute>:<name>"), so a week of history is ~170 small keys with a TTL. Lifetime totals go to
BASE.."metrics:total" (a fixed set of fields, for Prometheus counters). Durations ("wait":
queued -> started, "run": started -> finished) are counted in log-scale buckets of a factor
sqrt(2): bucket b >= 1 holds [2^((b-1)/2), 2^(b/2)) ms, bucket 0 holds < 1 ms, bucket 60 the
rest; as "<kind>:<b>" counters plus "<kind>_ms" in the totals only.
A script tallies its metrics in memory and writes them once, in flush_metrics, so a batch of a
hundred jobs costs a few HINCRBYs instead of hundreds. ]]
local tally, totals_only = {}, {}

local function count_metric(name, amount)
  tally[name] = (tally[name] or 0) + amount
end

local function record_duration(kind, ms)
  if ms < 0 then ms = 0 end
  local b = 0
  if ms >= 1 then b = math.min(math.floor(2 * math.log(ms) / math.log(2)) + 1, 60) end
  count_metric(kind .. ":" .. b, 1)
  totals_only[kind .. "_ms"] = (totals_only[kind .. "_ms"] or 0) + ms
end

local function flush_metrics(now)
  if next(tally) == nil and next(totals_only) == nil then return end
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
  for name, amount in pairs(totals_only) do
    redis.call("HINCRBY", total_key, name, amount)
  end
  if fresh then redis.call("EXPIRE", key, METRICS_TTL, "NX") end
  tally, totals_only = {}, {}
end
