--[[ Shared by every script (inlined by the loader where a script says "-- @include queue").

Every script receives the same KEYS, built by storage/keys.py:
  KEYS[1]  queue base "<prefix>:{<queue>}:" (a job is base.."job:"..id, its log
                   base.."logs:"..id and its attempt history base.."errors:"..id)
  KEYS[2]  wait        zset  score = (1000 - priority) * 2^40 + sequence: higher priority first,
                             FIFO within one priority
  KEYS[3]  active      zset  score = lease deadline (ms, Redis time)
  KEYS[4]  delayed     zset  score = run-at (ms)
  KEYS[5]  completed   zset  score = finish time (ms)
  KEYS[6]  failed      zset  score = finish time (ms)
  KEYS[7]  meta        hash  paused flag and queue-level facts
  KEYS[8]  events      stream of transitions (capped)
  KEYS[9]  marker      zset  popped by idle workers (BZPOPMIN) to wake without polling
  KEYS[10] seq         counter for job ids and FIFO order
  KEYS[11] workers     zset  worker id -> last heartbeat (ms)
  KEYS[12] leases      hash  id of each active job -> "<token>|<started ms>|<worker id>"; a job
                             has an entry exactly while it is in "active" (its hash keeps the
                             state it had before: readers take "active" from here)
and the same first ARGV, the client's settings as nine integers separated by spaces (one
argument, so a call stays cheap to send): events max length, keep completed (count), keep
completed (ms), keep failed (count), keep failed (ms), max log lines, metrics ttl (s),
lease (ms), max stalls.
A script's own arguments follow: arg(1) is ARGV[2].
]]
local BASE, WAIT, ACTIVE, DELAYED = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local COMPLETED, FAILED, META, EVENTS = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local MARKER, SEQ, WORKERS, LEASES = KEYS[9], KEYS[10], KEYS[11], KEYS[12]
local config = {}
for value in string.gmatch(ARGV[1], "%d+") do config[#config + 1] = tonumber(value) end
local EVENTS_MAX, KEEP_COMPLETED, KEEP_COMPLETED_MS = config[1], config[2], config[3]
local KEEP_FAILED, KEEP_FAILED_MS, MAX_LOG_LINES = config[4], config[5], config[6]
local METRICS_TTL, LEASE_MS, MAX_STALLS = config[7], config[8], config[9]
local CONFIG_ARGS = 1

local function arg(i) return ARGV[CONFIG_ARGS + i] end

local function job_key(id) return BASE .. "job:" .. id end

local function now_ms()
  local t = redis.call("TIME")
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function emit(event, id, ...)
  redis.call("XADD", EVENTS, "MAXLEN", "~", EVENTS_MAX, "*", "event", event, "id", id, ...)
end

-- One stream entry for the same transition of many jobs (a fetched batch, a bulk add): the
-- field "ids" holds a JSON array of job ids. Readers expand it into one event per job.
local function emit_many(event, ids, ...)
  if #ids == 1 then
    emit(event, ids[1], ...)
  elseif #ids > 1 then
    redis.call("XADD", EVENTS, "MAXLEN", "~", EVENTS_MAX, "*", "event", event,
      "ids", cjson.encode(ids), ...)
  end
end

local function wake_workers()
  redis.call("ZADD", MARKER, 0, "1")
end

-- Variadic commands take their arguments in chunks that stay well under Lua's stack limit.
local function call_chunked(command, key, values)
  for i = 1, #values, 4000 do
    if key then
      redis.call(command, key, unpack(values, i, math.min(i + 3999, #values)))
    else
      redis.call(command, unpack(values, i, math.min(i + 3999, #values)))
    end
  end
end

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
  for name, amount in pairs(tally) do
    redis.call("HINCRBY", key, minute .. ":" .. name, amount)
    redis.call("HINCRBY", total_key, name, amount)
  end
  for name, amount in pairs(totals_only) do
    redis.call("HINCRBY", total_key, name, amount)
  end
  redis.call("EXPIRE", key, METRICS_TTL, "NX")
  tally, totals_only = {}, {}
end

local function logs_key(id) return BASE .. "logs:" .. id end
local function errors_key(id) return BASE .. "errors:" .. id end

local function delete_jobs(ids)
  local keys = {}
  for _, id in ipairs(ids) do
    keys[#keys + 1] = job_key(id)
    keys[#keys + 1] = logs_key(id)
    keys[#keys + 1] = errors_key(id)
  end
  call_chunked("UNLINK", nil, keys)
end

local function delete_job(id)
  delete_jobs({id})
end

-- Drop the oldest finished jobs past the count cap or the age cap; bounded work per call.
local function trim_finished(set, keep, keep_ms, now)
  local excess = redis.call("ZCARD", set) - keep
  if excess > 0 then
    local ids = redis.call("ZRANGE", set, 0, math.min(excess, 1000) - 1)
    delete_jobs(ids)
    call_chunked("ZREM", set, ids)
  end
  local old = redis.call("ZRANGEBYSCORE", set, "-inf", now - keep_ms, "LIMIT", 0, 1000)
  if #old > 0 then
    delete_jobs(old)
    call_chunked("ZREM", set, old)
  end
end

-- The lease token of a delivery is a per-queue counter (HINCRBY META "lease") drawn once per
-- fetch, so every later delivery of a job carries a larger token and an older owner's token can
-- never match again (a fencing token).
local function parse_lease(value)
  if not value then return nil end
  local token, started, worker = string.match(value, "^([^|]*)|([^|]*)|(.*)$")
  return token, tonumber(started), worker
end

local function owns(id, token)
  local held = parse_lease(redis.call("HGET", LEASES, id))
  return held ~= nil and held == token
end

-- Take jobs out of "active"; their hashes get the worker and start time of the ended delivery.
local function end_leases(ids)
  if #ids == 0 then return end
  local leases = redis.call("HMGET", LEASES, unpack(ids))
  for i, id in ipairs(ids) do
    local _, started, worker = parse_lease(leases[i])
    if started then redis.call("HSET", job_key(id), "started", started, "worker", worker) end
  end
  call_chunked("HDEL", LEASES, ids)
  call_chunked("ZREM", ACTIVE, ids)
end

-- "queued" is when the job became runnable (its due time if overdue), for wait-time metrics.
-- The caller has ended the job's lease, if it had one.
local function move_to_failed(id, key, now, reason)
  redis.call("HDEL", key, "cancel")
  redis.call("HSET", key, "state", "failed", "error", reason, "finished", now)
  redis.call("ZADD", FAILED, now, id)
  emit("failed", id, "error", reason)
  count_metric("failed", 1)
  trim_finished(FAILED, KEEP_FAILED, KEEP_FAILED_MS, now)
end

-- Returns true if the job is waiting now. A job someone asked to cancel (cancel.lua) fails
-- instead: it must not run again.
local function move_to_wait(id, key, now)
  local f = redis.call("HMGET", key, "score", "run_at", "cancel", "name")
  if not f[4] then return false end  -- no job hash (deleted by hand): nothing to requeue
  if f[3] then
    move_to_failed(id, key, now, "cancelled")
    return false
  end
  redis.call("ZADD", WAIT, tonumber(f[1]) or 0, id)
  local queued = now
  local run_at = tonumber(f[2])
  if run_at and run_at < queued then queued = run_at end
  redis.call("HSET", key, "state", "waiting", "queued", queued)
  redis.call("HDEL", key, "run_at")
  return true
end

