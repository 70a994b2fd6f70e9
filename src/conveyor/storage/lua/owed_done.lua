--[[ owed_done: work this queue owed elsewhere was done (a parent on another queue was told of
its child's outcome, a flow's adds were made). See conveyor/workflows.

KEYS and settings: see includes/queue.lua.
ARGV[1] JSON array of [owed field, sha1 of the value that was done]: a field is cleared only if
its value is still that one (a newer outcome of the same job stays owed).
Returns how many were cleared.
]]
-- @include queue

local OWED, cleared = BASE .. "owed", 0
for _, item in ipairs(cjson.decode(ARGV[1])) do
  local value = redis.call("HGET", OWED, item[1])
  if value and redis.sha1hex(value) == item[2] then
    redis.call("HDEL", OWED, item[1])
    cleared = cleared + 1
  end
end
return cleared
