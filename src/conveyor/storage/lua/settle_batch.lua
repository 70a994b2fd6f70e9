--[[ settle_batch: count the outcomes of batch jobs in their batch (the jobs' queue is the
batch's); owes the callbacks whose condition is met. Idempotent: a job counts once (its
"p:<id>" field goes), so a repeat after a crash changes nothing. See conveyor/workflows.

KEYS and settings: see includes/queue.lua.
ARGV[1] JSON array of [owed field, sha1 of its value, batch id, job id, outcome] (outcome:
"completed", "failed" or "removed"); each owed field is cleared here if its value is unchanged.
Returns the ids of the batches that now owe callbacks.
]]
-- @include queue
-- @include workflow
-- @include batch

local owing = {}
for _, item in ipairs(cjson.decode(ARGV[1])) do
  local field, sha, batch_id, job_id, outcome = item[1], item[2], item[3], item[4], item[5]
  local bkey = BASE .. "batch:" .. batch_id
  if redis.call("HDEL", bkey, "p:" .. job_id) == 1 then
    redis.call("HINCRBY", bkey, "pending", -1)
    if outcome == "completed" then
      redis.call("HINCRBY", bkey, "completed", 1)
    elseif outcome == "failed" then
      redis.call("HINCRBY", bkey, "failed", 1)
      batch_owe(batch_id, bkey, "death")  -- at the first job that failed for good only
    else
      redis.call("HINCRBY", bkey, "total", -1)  -- removed: as if it never was in the batch
    end
    batch_check_done(batch_id, bkey)
    if redis.call("HEXISTS", OWED, "c:" .. batch_id) == 1 then owing[#owing + 1] = batch_id end
  end
  local value = redis.call("HGET", OWED, field)
  if value and redis.sha1hex(value) == sha then redis.call("HDEL", OWED, field) end
end
return owing
