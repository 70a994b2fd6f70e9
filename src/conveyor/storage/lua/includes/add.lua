--[[ A new job's hash and its id (needs the queue include, which defines wait_score): shared
by add_job.lua, whose single-job path uses only these, and add_deduped.lua. The placement of a
call's jobs (wait set, delayed set, group) is includes/placement.lua. ]]

-- A job's hash. Fields at their defaults are left out (readers take a missing opts as "{}",
-- attempts as 1, priority, made and stalls as 0, and a missing score as the one its id gives,
-- see job_wait_score): most jobs need four fields, and a bulk add is largely the cost of these
-- writes. `score` is nil for a job whose id is its sequence number; `now` (ms) may be a number
-- or its digits.
local function write_job(key, name, data, score, now, state, opts, attempts, priority)
  if score then
    redis.call("HSET", key, "name", name, "data", data, "score", score, "created", now,
      "state", state)
  else
    redis.call("HSET", key, "name", name, "data", data, "created", now, "state", state)
  end
  if opts ~= "{}" or attempts ~= 1 or priority ~= 0 then
    redis.call("HSET", key, "opts", opts, "attempts", attempts, "priority", priority)
  end
end

-- The id of a job the producer left unnamed: its sequence number, unless that is taken (a
-- producer may choose an id that looks like one, or have named it earlier in this call).
local function free_id(seq, check, seen)
  local id = tostring(seq)
  while (seen and seen[id]) or (check and redis.call("EXISTS", job_key(id)) == 1) do
    id = tostring(redis.call("INCR", SEQ))
  end
  return id
end
