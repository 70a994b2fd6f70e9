--[[ read_schedules: schedules as stored, with the state of each one's last job (no write).

KEYS: see includes/queue.lua; the schedule's keys: includes/schedules.lua.
ARGV: "ids", n, id... (those schedules) or "range", start, stop (by next run, stop inclusive)
Returns {total number of schedules, Redis time (ms), then per schedule found: id, {field,
value, ...}, the last job's state ("" when there is none or it is gone)}. (The time saves the
callers that plan a next run from now a TIME call of their own.)
]]
-- @include queue
-- @include schedules

local ids
if ARGV[1] == "ids" then
  ids = {unpack(ARGV, 3, 2 + tonumber(ARGV[2]))}
else
  ids = redis.call("ZRANGE", SCHEDULES, tonumber(ARGV[2]), tonumber(ARGV[3]))
end
local out = {redis.call("ZCARD", SCHEDULES), now_ms()}
for _, id in ipairs(ids) do
  local fields = redis.call("HGETALL", schedule_key(id))
  if #fields > 0 then
    local last, state = redis.call("HGET", schedule_key(id), "last_job"), ""
    if last then
      if redis.call("HEXISTS", LEASES, last) == 1 then
        state = "active"
      else
        state = redis.call("HGET", job_key(last), "state") or ""
      end
    end
    out[#out + 1] = id
    out[#out + 1] = fields
    out[#out + 1] = state
  end
end
return out
