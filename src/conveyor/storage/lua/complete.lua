--[[ complete: record the results of finished jobs (acknowledgements are batched).

KEYS, ARGV[1..9]: see includes/queue.lua.
arg(1) number of jobs N, then N groups of 3: id, lease token, result (JSON)
Returns the ids whose lease was lost (another worker owns them now; nothing was written).
Events: "completed" (with the result when it is small) for each job.
]]
-- @include queue

local count = tonumber(arg(1))
local now = now_ms()
local lost = {}
local done, run_ms = 0, 0
for i = 0, count - 1 do
  local id, token, result = arg(2 + i * 3), arg(3 + i * 3), arg(4 + i * 3)
  if owns(id, token) then
    local key = job_key(id)
    redis.call("ZREM", ACTIVE, id)
    local made = redis.call("HINCRBY", key, "made", 1)
    redis.call("HSET", key, "state", "completed", "result", result, "finished", now)
    redis.call("ZADD", COMPLETED, now, id)
    if #result <= 1024 then
      emit("completed", id, "result", result, "attempt", made)
    else
      emit("completed", id, "attempt", made)
    end
    local started = tonumber(redis.call("HGET", key, "started")) or now
    run_ms = run_ms + (now - started)
    record_duration(now, "run", now - started)
    done = done + 1
  else
    lost[#lost + 1] = id
  end
end
if done > 0 then
  count_metric(now, "completed", done)
  count_metric(now, "run_ms", run_ms)
  trim_finished(COMPLETED, KEEP_COMPLETED, KEEP_COMPLETED_MS, now)
end
return lost
