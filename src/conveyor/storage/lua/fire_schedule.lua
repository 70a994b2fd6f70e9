--[[ fire_schedule: run one due tick of a schedule and advance its timetable, in one step.

KEYS: see includes/queue.lua; the schedule's keys: includes/schedules.lua.
ARGV: id, due (ms: the next run the caller read), next (ms; "" = the timetable ended),
      gen (of the definition the caller planned with), fire ("1" = add a job, "0" = skip the
      tick), reason ("tick", "catch_up" or "missed"), job id (a function of id and due)
Every worker may call this for the same tick: only the first call whose plan still matches
(the stored next run is `due`, it is due by Redis's clock, and the definition is the one the
plan was made from) does anything, so a tick makes one job however many workers run.
Returns {code, job id}: CODE_OK (a job was added, or the tick was skipped as planned),
CODE_SKIPPED (overlap is off and the previous job is not finished: no job), CODE_UNCHANGED
(not due, or another call handled it), CODE_STALE (the definition changed), CODE_NOT_FOUND,
CODE_WRONG_STATE (the next run given is not after `due`: a client bug, nothing written).
Events: "added" (with "schedule"), "skipped" (with "schedule" and "reason": overlap or missed).
]]
-- @include queue
-- @include schedules

local id, due, next_run = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local key = schedule_key(id)
local score = redis.call("ZSCORE", SCHEDULES, id)
if not score then return {CODE_NOT_FOUND, ""} end
local now = now_ms()
if tonumber(score) ~= due or due > now then return {CODE_UNCHANGED, ""} end
local f = redis.call("HMGET", key, "gen", "overlap", "last_job")
if f[1] ~= ARGV[4] then return {CODE_STALE, ""} end
if next_run ~= "" and tonumber(next_run) <= due then return {CODE_WRONG_STATE, ""} end
local job_id, code = ARGV[7], CODE_OK
if ARGV[5] ~= "1" then
  emit("skipped", job_id, "schedule", id, "reason", ARGV[6])
elseif f[2] == "0" and unfinished(f[3]) then
  code = CODE_SKIPPED
  emit("skipped", job_id, "schedule", id, "reason", "overlap", "previous", f[3])
else
  add_scheduled_job(key, id, job_id, now)
  redis.call("HSET", key, "last_job", job_id, "last_run", now)
  redis.call("HINCRBY", key, "runs", 1)
end
redis.call("HSET", key, "last_tick", due)
set_next_run(key, id, next_run)
return {code, job_id}
