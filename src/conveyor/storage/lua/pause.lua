--[[ pause: stop (arg "1") or restart (arg "0") handing out jobs. Adding jobs still works.

KEYS and settings: see includes/queue.lua.
ARGV[1] "1" to pause, "0" to resume
Returns CODE_OK if the flag changed, CODE_UNCHANGED if it already had that value.
Events: "paused" or "resumed".
]]
-- @include queue

local paused = ARGV[1] == "1"
local was = redis.call("HGET", META, "paused") == "1"
if paused == was then return CODE_UNCHANGED end
if paused then
  redis.call("HSET", META, "paused", "1")
  emit("paused", "")
else
  redis.call("HDEL", META, "paused")
  emit("resumed", "")
  wake_workers()
end
return CODE_OK
