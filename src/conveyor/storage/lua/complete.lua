--[[ complete: record the results of finished jobs (a worker sends them together).

KEYS and settings: see includes/queue.lua.
ARGV[1] JSON array of [id, lease token, result as JSON text, attempts made counting this one
        (, 1 for a job of a flow or batch: it owes its outcome, see conveyor/workflows)]
Returns the ids whose lease was lost (another worker owns them now; nothing was written).
Events: one "completed" entry for the call, with "results": a JSON object of the results
other than null that are at most 1 KiB, and "large": a JSON array of the ids whose result was
left out for its size (read from the job); every other job's result is null. (Leaving the
nulls out keeps the stream, capped by entries, from holding a few bytes more per job.)
]]
-- @include queue
-- @include leases
-- @include finished

local items = cjson.decode(ARGV[1])
local now = now_ms()
-- (The digits of now, formatted once: each job's HSET and its ZADD score would format the
-- number again, as every call does with a number argument.)
local now_text = tostring(now)
local ids = {}
for i, item in ipairs(items) do ids[i] = item[1] end
local leases = {}
if #ids > 0 then leases = redis.call("HMGET", LEASES, unpack(ids)) end
local lost, done, finished, results, large = {}, {}, {}, {}, {}
for i, item in ipairs(items) do
  local id, token, result, made = item[1], item[2], item[3], item[4]
  local held, started, worker, started_text = parse_lease(leases[i])
  if held ~= nil and held == token then
    redis.call("HSET", job_key(id), "state", "completed", "result", result, "finished", now_text,
      "made", made, "started", started_text, "worker", worker)
    done[#done + 1] = id
    finished[#finished + 1] = now_text
    finished[#finished + 1] = id
    if #result > 1024 then
      large[#large + 1] = cjson.encode(id)
    elseif result ~= "null" then
      results[#results + 1] = cjson.encode(id) .. ":" .. result
    end
    record_duration("run", now - started)
    if item[5] then  -- workflows: written with the outcome, so a crash cannot lose it
      local wf = redis.call("HGET", job_key(id), "wf")
      if wf then
        redis.call("HSET", BASE .. "owed", "o:" .. id, '["completed",' .. result .. "," .. wf .. "]")
      end
    end
  else
    lost[#lost + 1] = id
  end
end
if #done > 0 then
  call_chunked("HDEL", LEASES, done)
  call_chunked("ZREM", ACTIVE, done)
  group_slots_free(done, now)  -- flow control: the slots of their groups come back
  call_chunked("ZADD", COMPLETED, finished)
  emit_many("completed", done, "results", "{" .. table.concat(results, ",") .. "}",
    "large", "[" .. table.concat(large, ",") .. "]")
  count_metric("completed", #done)
  trim_finished(COMPLETED, KEEP_COMPLETED, KEEP_COMPLETED_MS, now)
  flush_metrics(now)
end
return lost
