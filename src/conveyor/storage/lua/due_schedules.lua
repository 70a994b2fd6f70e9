--[[ due_schedules: read the schedules whose next run is due by Redis's clock (no write).

KEYS: see includes/queue.lua; the schedule's keys: includes/schedules.lua.
ARGV: limit (how many at most)
Returns {now (ms), then per due schedule: id, next run (ms), gen, def, runs}. With nothing
due this is one ZRANGEBYSCORE, whatever the number of schedules.
]]
-- @include queue
-- @include schedules

local now = now_ms()
local due = redis.call("ZRANGEBYSCORE", SCHEDULES, "-inf", now, "LIMIT", 0, tonumber(ARGV[1]),
  "WITHSCORES")
local out = {now}
for i = 1, #due, 2 do
  local id = due[i]
  local f = redis.call("HMGET", schedule_key(id), "gen", "def", "runs")
  out[#out + 1] = id
  out[#out + 1] = due[i + 1]
  out[#out + 1] = f[1] or ""
  out[#out + 1] = f[2] or "{}"
  out[#out + 1] = f[3] or ""
end
return out
