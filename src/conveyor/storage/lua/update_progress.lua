--[[ update_progress: store a running job's progress (a number or any JSON value).

KEYS and settings: see includes/queue.lua.
ARGV[1] id  ARGV[2] lease token  ARGV[3] progress (JSON)
Returns CODE_OK, or CODE_LEASE_LOST (nothing written).
Events: "progress" with the value.
]]
-- @include queue
-- @include leases

local id, token, progress = ARGV[1], ARGV[2], ARGV[3]
if not owns(id, token) then return CODE_LEASE_LOST end
redis.call("HSET", job_key(id), "progress", progress)
emit("progress", id, "progress", progress)
return CODE_OK
