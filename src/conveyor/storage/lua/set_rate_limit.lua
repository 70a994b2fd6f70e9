--[[ set_rate_limit: flow control, the queue's rate limit (shared by every worker: fetch.lua
hands out at most N jobs in any window of PER ms).

KEYS and settings: see includes/queue.lua; flow control's keys: see includes/groups.lua.
ARGV[1] N (0 removes the limit)   ARGV[2] PER in ms
Returns CODE_OK.
Events: "rate_limit" with "limit" ("N/PER ms", or "" when removed).
]]
-- @include queue

local n, per = tonumber(ARGV[1]), tonumber(ARGV[2])
local flow = BASE .. "flow"
if n > 0 then
  redis.call("HSET", flow, "rate_n", n, "rate_ms", per)
  redis.call("HSET", META, "flow", "1")
  emit("rate_limit", "", "limit", n .. "/" .. per .. " ms")
else
  redis.call("HDEL", flow, "rate_n", "rate_ms")
  redis.call("DEL", BASE .. "rate")
  emit("rate_limit", "", "limit", "")
end
wake_workers()  -- a changed limit may let jobs out now
return CODE_OK
