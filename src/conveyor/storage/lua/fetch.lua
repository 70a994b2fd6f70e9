--[[ fetch: promote due delayed jobs, then lease up to N waiting jobs to a worker.

KEYS, ARGV[1..9]: see includes/queue.lua.
arg(1) worker id   arg(2) max jobs N
Returns {status, next_due, count, then 11 fields per job:
         id, token, name, data, opts, attempts, made, stalls, priority, created, progress}
  status   0 = ok, 1 = the queue is paused (nothing handed out)
  next_due ms until the earliest delayed job is due when fewer than N jobs were handed out
           (the worker will sleep until then), -1 otherwise
Jobs whose ttl passed before they started are failed with reason "expired" instead.
Events: "waiting" for each promoted job, "active" for each leased one, "failed" for expired ones.
]]
-- @include queue

local worker, want = arg(1), tonumber(arg(2))
local now = now_ms()

local due = redis.call("ZRANGEBYSCORE", DELAYED, "-inf", now, "LIMIT", 0, 1000)
for _, id in ipairs(due) do
  redis.call("ZREM", DELAYED, id)
  move_to_wait(id, job_key(id))
  emit("waiting", id)
end

if redis.call("HGET", META, "paused") == "1" then
  return {1, -1, 0}
end

local out = {0, -1, 0}
local got = 0
local popped = redis.call("ZPOPMIN", WAIT, want)
for i = 1, #popped, 2 do
  local id = popped[i]
  local key = job_key(id)
  local f = redis.call("HMGET", key, "name", "data", "opts", "attempts", "made", "stalls",
    "priority", "created", "progress", "expire_at", "queued")
  local expire_at = tonumber(f[10])
  if expire_at and expire_at < now then
    move_to_failed(id, key, now, "expired: not started within its ttl")
  else
    local token = redis.call("HINCRBY", key, "lease", 1)
    redis.call("HSET", key, "state", "active", "started", now, "worker", worker)
    redis.call("ZADD", ACTIVE, now + LEASE_MS, id)
    emit("active", id, "worker", worker)
    record_duration(now, "wait", now - (tonumber(f[11]) or tonumber(f[8]) or now))
    local n = #out
    out[n + 1] = id
    out[n + 2] = tostring(token)
    for j = 1, 9 do out[n + 2 + j] = f[j] or false end
    got = got + 1
  end
end
out[3] = got

if got < want then
  local first = redis.call("ZRANGE", DELAYED, 0, 0, "WITHSCORES")[2]
  if first then out[2] = math.max(tonumber(first) - now, 0) end
elseif redis.call("ZCARD", WAIT) > 0 then
  -- More work is waiting: pass the wake-up on to another idle worker.
  wake_workers()
end
return out
