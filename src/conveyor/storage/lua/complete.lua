--[[ complete: record the results of finished jobs (acknowledgements are batched).

KEYS, ARGV[1..9]: see includes/queue.lua.
arg(1) JSON array of [id, lease token, result as JSON text] triples
Returns the ids whose lease was lost (another worker owns them now; nothing was written).
Events: one "completed" entry for the batch, with "results": a JSON object of the results
that are at most 1 KiB (larger ones are read from the job).
]]
-- @include queue

local items = cjson.decode(arg(1))
local now = now_ms()
local ids = {}
for i, item in ipairs(items) do ids[i] = item[1] end
local in_active = {}
if #ids > 0 then in_active = redis.call("ZMSCORE", ACTIVE, unpack(ids)) end
local lost, done, finished, results = {}, {}, {}, {}
for i, item in ipairs(items) do
  local id, token, result = item[1], item[2], item[3]
  local key = job_key(id)
  local f = redis.call("HMGET", key, "lease", "started", "made")
  if in_active[i] and f[1] == token then
    redis.call("HSET", key, "state", "completed", "result", result, "finished", now,
      "made", (tonumber(f[3]) or 0) + 1, "lease", 0)
    done[#done + 1] = id
    finished[#finished + 1] = now
    finished[#finished + 1] = id
    if #result <= 1024 then results[#results + 1] = cjson.encode(id) .. ":" .. result end
    record_duration("run", now - (tonumber(f[2]) or now))
  else
    lost[#lost + 1] = id
  end
end
if #done > 0 then
  call_chunked("ZREM", ACTIVE, done)
  call_chunked("ZADD", COMPLETED, finished)
  emit_many("completed", done, "results", "{" .. table.concat(results, ",") .. "}")
  count_metric("completed", #done)
  trim_finished(COMPLETED, KEEP_COMPLETED, KEEP_COMPLETED_MS, now)
  flush_metrics(now)
end
return lost
