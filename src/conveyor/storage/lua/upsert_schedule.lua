--[[ upsert_schedule: create or replace a job scheduler (Queue.schedule).

KEYS: see includes/queue.lua; the schedule's keys: includes/schedules.lua.
ARGV: id, def (JSON), name, data (JSON), opts (JSON), attempts, priority, ttl (ms),
      overlap ("1"/"0"), next run (ms; "" = the timetable has no tick), limit ("" = none)
The definition is replaced whole, in one step, so of concurrent upserts the last one holds;
what the schedule has done (runs, last run and job, created) and its paused flag are kept.
Returns {CODE_OK, 1 if it existed else 0} or {CODE_STALE} when the next run given is not after
the last tick already handled (the caller read the clock before that tick fired: it computes
again, so a tick never runs twice).
Events: "schedule_updated" (id = the schedule id).
]]
-- @include queue
-- @include schedules

local id = ARGV[1]
local key = schedule_key(id)
local next_run = ARGV[10]
local last_tick = tonumber(redis.call("HGET", key, "last_tick") or "")
if next_run ~= "" and last_tick and tonumber(next_run) <= last_tick then
  return {CODE_STALE}
end
local now = now_ms()
local existed = redis.call("EXISTS", key)
redis.call("HSET", key, "def", ARGV[2], "name", ARGV[3], "data", ARGV[4], "opts", ARGV[5],
  "attempts", ARGV[6], "priority", ARGV[7], "ttl", ARGV[8], "overlap", ARGV[9],
  "gen", redis.call("INCR", SEQ), "updated", now)
if existed == 0 then
  redis.call("HSET", key, "created", now, "runs", 0, "paused", 0)
end
local state = redis.call("HMGET", key, "paused", "runs")
if ARGV[11] ~= "" and tonumber(state[2]) >= tonumber(ARGV[11]) then next_run = "" end
if state[1] == "1" then next_run = "" end
set_next_run(key, id, next_run)
emit("schedule_updated", id, "schedule", id)
return {CODE_OK, existed}
