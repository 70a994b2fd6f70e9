--[[ resume_schedule: a paused schedule ticks again, from the first tick after now.

KEYS: see includes/queue.lua; the schedule's keys: includes/schedules.lua.
ARGV: id, gen (of the definition the next run was computed from), next run (ms; "" = none)
Returns CODE_OK, CODE_UNCHANGED (not paused), CODE_NOT_FOUND or CODE_STALE (the definition
changed, or the next run is not after the last tick handled: the caller computes again).
Events: "schedule_resumed" (id = the schedule id).
]]
-- @include queue
-- @include schedules

local id, next_run = ARGV[1], ARGV[3]
local key = schedule_key(id)
local f = redis.call("HMGET", key, "paused", "gen", "last_tick")
if not f[1] then return CODE_NOT_FOUND end
if f[1] ~= "1" then return CODE_UNCHANGED end
if f[2] ~= ARGV[2] then return CODE_STALE end
if next_run ~= "" and f[3] and tonumber(next_run) <= tonumber(f[3]) then return CODE_STALE end
redis.call("HSET", key, "paused", 0, "gen", redis.call("INCR", SEQ))
set_next_run(key, id, next_run)
emit("schedule_resumed", id, "schedule", id)
return CODE_OK
