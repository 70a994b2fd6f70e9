--[[ update_progress: store a running job's progress (a number or any JSON value).

KEYS, ARGV[1]: see includes/queue.lua.
arg(1) id  arg(2) lease token  arg(3) progress (JSON)
Returns 1, or -1 when the lease was lost (nothing written).
Events: "progress" with the value.
]]
-- @include queue
-- @include leases

local id, token, progress = arg(1), arg(2), arg(3)
if not owns(id, token) then return -1 end
redis.call("HSET", job_key(id), "progress", progress)
emit("progress", id, "progress", progress)
return 1
