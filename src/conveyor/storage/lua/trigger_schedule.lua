--[[ trigger_schedule: one extra run of a schedule now; its timetable is unchanged.

KEYS: see includes/queue.lua; the schedule's keys: includes/schedules.lua.
ARGV: id, job id
Returns CODE_OK, CODE_EXISTS (a job with that id exists) or CODE_NOT_FOUND.
Events: "added" (with "schedule").
]]
-- @include queue
-- @include schedules

local id, job_id = ARGV[1], ARGV[2]
local key = schedule_key(id)
if redis.call("EXISTS", key) == 0 then return CODE_NOT_FOUND end
local now = now_ms()
local code = add_scheduled_job(key, id, job_id, now)
if code == CODE_OK then
  redis.call("HSET", key, "last_job", job_id, "last_run", now)
end
return code
