--[[ remove_schedule: delete a schedule (the jobs it made stay).

KEYS: see includes/queue.lua; the schedule's keys: includes/schedules.lua.
ARGV: id
Returns CODE_OK or CODE_NOT_FOUND.
Events: "schedule_removed" (id = the schedule id).
]]
-- @include queue
-- @include schedules

local id = ARGV[1]
local removed = redis.call("DEL", schedule_key(id))
redis.call("ZREM", SCHEDULES, id)
if removed == 0 then return CODE_NOT_FOUND end
emit("schedule_removed", id, "schedule", id)
return CODE_OK
