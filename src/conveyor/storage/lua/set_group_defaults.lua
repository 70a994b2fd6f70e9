--[[ set_group_defaults: flow control, the settings of every group without its own.

KEYS and settings: see includes/queue.lua; flow control's keys: see includes/groups.lua.
ARGV[1] concurrency (0 = no limit)  ARGV[2] rate N (0 = no limit)  ARGV[3] rate PER in ms
ARGV[4] weight (at least 1)  ARGV[5] max size (0 = no limit)
Returns the number of groups looked at again (each may have become runnable).
Events: "group_defaults".
]]
-- @include queue
-- @include groups

local flow = BASE .. "flow"
local fields = {"d_conc", "d_rate_n", "d_rate_ms", "d_weight", "d_max"}
for i, field in ipairs(fields) do
  local value = tonumber(ARGV[i])
  if value > 0 and not (field == "d_weight" and value == 1) then
    redis.call("HSET", flow, field, value)
  else
    redis.call("HDEL", flow, field)
  end
end
if tonumber(ARGV[2]) == 0 then redis.call("HDEL", flow, "d_rate_ms") end
emit("group_defaults", "")
-- A raised limit lets groups out that were held back by the old one.
local now = now_ms()
local groups = redis.call("ZRANGE", BASE .. "gindex", 0, -1)
for _, g in ipairs(groups) do
  local hold = tonumber(redis.call("HGET", BASE .. "g:" .. g, "hold")) or 0
  if hold <= now then redis.call("ZREM", BASE .. "gsleep", g) end
  group_ready(g, now)
end
return #groups
