-- Writing the jobs of a flow or a batch (add_flow, add_batch): the fields add_job.lua writes,
-- plus "wf", the job's place in a workflow (JSON: "p" its parent [queue, id], "f" what its
-- failure does to the parent, "b" its batch id), which complete.lua and move_to_failed copy
-- into the queue's owed hash with the outcome. Needs the queue include first.
-- @include waiting

local OWED = BASE .. "owed"

-- The id a job of the call gets: the one chosen, else its sequence number (unless taken).
local function wf_job_id(chosen, seq)
  if chosen ~= "" then return chosen end
  local id = tostring(seq)
  while redis.call("EXISTS", job_key(id)) == 1 do id = tostring(redis.call("INCR", SEQ)) end
  return id
end

-- args: [id, name, data(, opts, attempts, priority, delay ms, ttl ms)] as AddSpec.args();
-- state "waiting" (or "delayed" when it has a delay) or "waiting-children". Returns the state.
local function wf_write_job(id, args, seq, now, state, wf)
  local key = job_key(id)
  local opts, attempts, priority, delay, ttl = "{}", 1, 0, 0, 0
  if args[4] then
    opts, attempts, priority = args[4], tonumber(args[5]), tonumber(args[6])
    delay, ttl = tonumber(args[7]), tonumber(args[8])
  end
  local score = wait_score(priority, seq)
  if state == "waiting" and delay > 0 then state = "delayed" end
  redis.call("HSET", key, "name", args[2], "data", args[3], "score", score, "created", now,
    "state", state)
  if opts ~= "{}" or attempts ~= 1 or priority ~= 0 then
    redis.call("HSET", key, "opts", opts, "attempts", attempts, "priority", priority)
  end
  if wf then redis.call("HSET", key, "wf", wf) end
  local run_at = nil
  if state == "delayed" then
    run_at = now + delay
    redis.call("HSET", key, "run_at", run_at)
    redis.call("ZADD", DELAYED, run_at, id)
  elseif state == "waiting" then
    wait_new(id, priority, score)
  else
    redis.call("ZADD", WAITING_CHILDREN, now, id)
    -- a parent becomes runnable when its children are done: its delay and ttl count from
    -- then (release_parent applies them)
    if delay > 0 then redis.call("HSET", key, "delay_ms", delay) end
    if ttl > 0 then redis.call("HSET", key, "ttl_ms", ttl) end
    ttl = 0
  end
  if ttl > 0 then redis.call("HSET", key, "expire_at", (run_at or now) + ttl) end
  emit("added", id, "state", state)
  return state
end
