--[[ append_log: add a line to a running job's log, keeping only the newest lines.

KEYS, ARGV[1]: see includes/queue.lua.
arg(1) id  arg(2) lease token  arg(3) line
Returns 1, or -1 when the lease was lost (nothing written).
Events: none (logs are read from the job, not streamed as transitions).
]]
-- @include queue
-- @include leases

local id, token, line = arg(1), arg(2), arg(3)
if not owns(id, token) then return -1 end
local logs = logs_key(id)
redis.call("RPUSH", logs, line)
redis.call("LTRIM", logs, -MAX_LOG_LINES, -1)
return 1
