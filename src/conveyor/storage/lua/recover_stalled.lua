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
-- @include stall

local now = now_ms()
local expired = redis.call("ZRANGEBYSCORE", ACTIVE, "-inf", now, "LIMIT", 0, tonumber(ARGV[1]))
local recovered, failed = stall_jobs(expired, now, "its lease expired",
  "worker killed, frozen or cut off")
flush_metrics(now)
return {recovered, failed}
