--[[ A new job's hash and wait score (needs the queue include): shared by add_job.lua, whose
single-job path uses only these, and add_deduped.lua. The placement of a call's jobs (wait set,
delayed set, group) is includes/placement.lua. ]]

-- A job's hash. Fields at their defaults are left out (readers take a missing opts as "{}",
-- attempts as 1, priority, made and stalls as 0): most jobs need five fields, and a bulk add
-- is largely the cost of these writes.
local function write_job(key, name, data, score, now, state, opts, attempts, priority)
  redis.call("HSET", key, "name", name, "data", data, "score", score, "created", now,
    "state", state)
  if opts ~= "{}" or attempts ~= 1 or priority ~= 0 then
    redis.call("HSET", key, "opts", opts, "attempts", attempts, "priority", priority)
  end
end

-- Higher priority first, FIFO within one priority (see KEYS[2] in includes/queue.lua).
local function wait_score(priority, seq)
  return (PRIORITY_OFFSET - priority) * PRIORITY_BAND + seq
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
