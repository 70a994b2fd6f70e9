--[[ pause_schedule: stop a schedule's ticks until it is resumed (its definition stays).

KEYS: see includes/queue.lua; the schedule's keys: includes/schedules.lua.
ARGV: id
Returns CODE_OK, CODE_UNCHANGED (already paused) or CODE_NOT_FOUND.
Events: "schedule_paused" (id = the schedule id).
]]
-- @include queue
-- @include schedules

local id = ARGV[1]
local key = schedule_key(id)
local paused = redis.call("HGET", key, "paused")
if not paused then return CODE_NOT_FOUND end
if paused == "1" then return CODE_UNCHANGED end
redis.call("HSET", key, "paused", 1)
set_next_run(key, id, "")
emit("schedule_paused", id, "schedule", id)
return CODE_OK
