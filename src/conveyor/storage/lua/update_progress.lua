--[[ update_progress: store a running job's progress (a number or any JSON value).

KEYS and settings: see includes/queue.lua.
ARGV[1] id  ARGV[2] lease token  ARGV[3] progress (JSON)
Returns 1, or -1 when the lease was lost (nothing written).
Events: "progress" with the value.
]]
-- @include queue
-- @include leases

local id, token, progress = ARGV[1], ARGV[2], ARGV[3]
if not owns(id, token) then return -1 end
redis.call("HSET", job_key(id), "progress", progress)
emit("progress", id, "progress", progress)
return 1
