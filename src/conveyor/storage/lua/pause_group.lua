--[[ pause_group: flow control, stop (arg "1") or restart (arg "0") handing out one group's
jobs. Adding jobs to it still works.

KEYS and settings: see includes/queue.lua; flow control's keys: see includes/groups.lua.
ARGV[1] group   ARGV[2] "1" to pause, "0" to resume
Returns CODE_OK if the flag changed, CODE_UNCHANGED if it already had that value.
Events: "group_paused" or "group_resumed", with "group".
]]
-- @include queue
-- @include groups

local g, paused = ARGV[1], ARGV[2] == "1"
local key = BASE .. "g:" .. g
if (redis.call("HGET", key, "paused") == "1") == paused then return CODE_UNCHANGED end
if paused then
  redis.call("HSET", key, "paused", "1")
  redis.call("ZREM", BASE .. "gready", g)
  redis.call("ZINCRBY", BASE .. "gindex", 0, g)  -- listed while paused, even when empty
  emit("group_paused", "", "group", g)
else
  redis.call("HDEL", key, "paused")
  group_ready(g, now_ms())
  group_tidy(g)
  emit("group_resumed", "", "group", g)
end
return CODE_OK
