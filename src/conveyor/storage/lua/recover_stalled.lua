--[[ recover_stalled: hand jobs whose lease expired back to waiting, or fail them as stalled.

KEYS and settings: see includes/queue.lua.
ARGV[1] at most this many jobs per call
Returns {recovered, failed}.
A job's lease expires when its worker died, froze or lost Redis for a whole lease period.
Each expiry counts as a stall; past max stalls the job fails with reason "stalled". The lease
is ended, so the old owner can no longer complete the job.
Events: "stalled" for each recovered job, "failed" for each job failed as stalled.
]]
-- @include queue
-- @include leases
-- @include finished

local now = now_ms()
local expired = redis.call("ZRANGEBYSCORE", ACTIVE, "-inf", now, "LIMIT", 0, tonumber(ARGV[1]))
local recovered, failed = 0, 0
for _, id in ipairs(expired) do
  local key = job_key(id)
  if redis.call("EXISTS", key) == 0 then  -- deleted by hand while running: forget it
    redis.call("HDEL", LEASES, id)
    redis.call("ZREM", ACTIVE, id)
  else
    end_leases({id})
    local stalls = redis.call("HINCRBY", key, "stalls", 1)
    if stalls > MAX_STALLS then
      move_to_failed(id, key, now,
        "stalled: its lease expired " .. stalls .. " times (worker killed, frozen or cut off)")
      failed = failed + 1
    else
      if move_to_wait(id, key, now) then
        emit("stalled", id, "stalls", stalls)
        recovered = recovered + 1
      else
        failed = failed + 1
      end
    end
  end
end
if recovered > 0 then wake_workers() end
flush_metrics(now)
return {recovered, failed}
