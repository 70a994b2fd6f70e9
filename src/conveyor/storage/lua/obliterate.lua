--[[ obliterate: delete every key of the queue, a chunk per call (call until cursor is "0").

KEYS and settings: see includes/queue.lua.
ARGV[1] "1" to go on even while jobs are active   ARGV[2] SCAN cursor ("0" at first)
Returns {next cursor, keys deleted}, or {CODE_IS_ACTIVE, n} when n jobs are active and ARGV[1] is
not "1".
The first call pauses the queue so that workers stop taking jobs while it is emptied.
Events: none survive (the stream is deleted too).
]]
-- @include queue

local force, cursor = ARGV[1] == "1", ARGV[2]
if cursor == "0" then
  local active = redis.call("ZCARD", ACTIVE)
  if active > 0 and not force then return {CODE_IS_ACTIVE, active} end
  redis.call("HSET", META, "paused", "1")
end
local reply = redis.call("SCAN", cursor, "MATCH", BASE .. "*", "COUNT", 1000)
local keys = reply[2]
for i = 1, #keys, 500 do
  redis.call("UNLINK", unpack(keys, i, math.min(i + 499, #keys)))
end
return {reply[1], #keys}
