--[[ append_log: add a line to a running job's log, keeping only the newest lines.

KEYS and settings: see includes/queue.lua.
ARGV[1] id  ARGV[2] lease token  ARGV[3] line
Returns CODE_OK, or CODE_LEASE_LOST (nothing written).
Events: none (logs are read from the job, not streamed as transitions).
]]
-- @include queue
-- @include leases

local id, token, line = ARGV[1], ARGV[2], ARGV[3]
if not owns(id, token) then return CODE_LEASE_LOST end
local logs = logs_key(id)
redis.call("RPUSH", logs, line)
redis.call("LTRIM", logs, -MAX_LOG_LINES, -1)
return CODE_OK
