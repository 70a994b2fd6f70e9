-- Moving jobs to failed or back to wait, and deleting and trimming finished jobs (needs the
-- queue include; brings the metrics include with it).
-- @include metrics
-- @include groups

local function delete_jobs(ids)
  local keys = {}
  for _, id in ipairs(ids) do
    keys[#keys + 1] = job_key(id)
    keys[#keys + 1] = logs_key(id)
    keys[#keys + 1] = errors_key(id)
  end
  call_chunked("UNLINK", nil, keys)
end

local function delete_job(id)
  delete_jobs({id})
end

-- Drop the oldest finished jobs past the count cap or the age cap; bounded work per call.
local function trim_finished(set, keep, keep_ms, now)
  local excess = redis.call("ZCARD", set) - keep
  if excess > 0 then
    local ids = redis.call("ZRANGE", set, 0, math.min(excess, 1000) - 1)
    delete_jobs(ids)
    call_chunked("ZREM", set, ids)
  end
  local old = redis.call("ZRANGEBYSCORE", set, "-inf", now - keep_ms, "LIMIT", 0, 1000)
  if #old > 0 then
    delete_jobs(old)
    call_chunked("ZREM", set, old)
  end
end

-- The caller has ended the job's lease, if it had one.
local function move_to_failed(id, key, now, reason)
  redis.call("HDEL", key, "cancel")
  redis.call("HSET", key, "state", "failed", "error", reason, "finished", now)
  redis.call("ZADD", FAILED, now, id)
  -- workflows: a job of a flow or batch owes its outcome to its parent or batch (see
  -- conveyor/workflows); plain jobs lack the field, so this costs them one HGET.
  local wf = redis.call("HGET", key, "wf")
  if wf then
    redis.call("HSET", BASE .. "owed", "o:" .. id, '["failed",' .. cjson.encode(reason) .. "," .. wf .. "]")
  end
  emit("failed", id, "error", reason)
  count_metric("failed", 1)
  trim_finished(FAILED, KEEP_FAILED, KEEP_FAILED_MS, now)
end

-- The wait score of a job from its hash's "score" and "priority" fields. A job whose id is
-- its sequence number (most jobs) stores no score: its id and priority give it, which saves a
-- field in every job's hash.
local function job_wait_score(id, stored, priority)
  local score = tonumber(stored)
  if not score then
    local seq = tonumber(id)
    -- (no score and no sequence, a hand-made hash: first in line)
    score = seq and wait_score(tonumber(priority) or 0, seq) or 0
  end
  return score
end

-- Returns true if the job is waiting now. A job someone asked to cancel (cancel.lua) fails
-- instead: it must not run again. "queued" is when the job became runnable (its due time if
-- overdue), for wait-time metrics.
local function move_to_wait(id, key, now)
  local f = redis.call("HMGET", key, "score", "run_at", "cancel", "name", "group", "priority")
  if not f[4] then return false end  -- no job hash (deleted by hand): nothing to requeue
  if f[3] then
    move_to_failed(id, key, now, "cancelled")
    return false
  end
  local score = job_wait_score(id, f[1], f[6])
  if f[5] then  -- flow control: a grouped job waits in its group
    group_push(f[5], id, score, now)
  else
    redis.call("ZADD", WAIT, score, id)
  end
  local queued = now
  local run_at = tonumber(f[2])
  if run_at and run_at < queued then queued = run_at end
  redis.call("HSET", key, "state", "waiting", "queued", queued)
  redis.call("HDEL", key, "run_at")
  return true
end
