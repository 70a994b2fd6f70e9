--[[ fail: record a failed attempt; retry after a delay while attempts remain, else fail.

KEYS and settings: see includes/queue.lua.
ARGV[1] id  ARGV[2] lease token  ARGV[3] error message  ARGV[4] attempt record (JSON, kept in the
job's error history)  ARGV[5] retry delay in ms, or -1 to fail now whatever attempts remain
Returns CODE_RETRYING (will run again), CODE_FAILED (failed for good) or CODE_LEASE_LOST
(nothing was written).
Events: "retrying" (with delay) or "failed" (with the error).
]]
-- @include queue
-- @include leases
-- @include finished

local id, token, message, record, delay = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
if not owns(id, token) then return CODE_LEASE_LOST end
local key = job_key(id)
local now = now_ms()
local _, started = parse_lease(redis.call("HGET", LEASES, id))
end_leases({id})
local f = redis.call("HMGET", key, "made", "attempts", "cancel")
local made = (tonumber(f[1]) or 0) + 1
local attempts = tonumber(f[2]) or 1
if f[3] then delay = -1 end  -- a cancelled job is not retried
record_duration("run", now - (started or now))
redis.call("RPUSH", errors_key(id), record)
redis.call("LTRIM", errors_key(id), -100, -1)
redis.call("HSET", key, "error", message, "made", made)
if delay >= 0 and made < attempts then
  if delay > 0 then
    redis.call("HSET", key, "state", "delayed", "run_at", now + delay)
    redis.call("ZADD", DELAYED, now + delay, id)
  else
    move_to_wait(id, key, now)
  end
  emit("retrying", id, "error", message, "attempt", made, "delay", delay)
  count_metric("retried", 1)
  wake_workers()
  flush_metrics(now)
  return CODE_RETRYING
end
move_to_failed(id, key, now, message)
flush_metrics(now)
return CODE_FAILED
