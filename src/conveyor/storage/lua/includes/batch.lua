-- The end of a batch (add_batch, settle_batch): owes the callbacks whose condition is met,
-- each once. A callback owed is "fire:<kind>" in the batch hash (the counts it reports) and
-- "c:<batch id>" in the queue's owed hash, until callback_added clears both.
-- Needs the queue and workflow includes first.

local function batch_counts(batch_id, bkey)
  local f = redis.call("HMGET", bkey, "total", "completed", "failed")
  return cjson.encode({id = batch_id, total = tonumber(f[1]), completed = tonumber(f[2]),
    failed = tonumber(f[3])})
end

local function batch_owe(batch_id, bkey, kind)
  -- "done:<kind>" marks a callback owed once already: never twice
  if redis.call("HSETNX", bkey, "done:" .. kind, 1) == 1 then
    if redis.call("HEXISTS", bkey, "cb:" .. kind) == 1 then
      redis.call("HSET", bkey, "fire:" .. kind, batch_counts(batch_id, bkey))
      redis.call("HSET", OWED, "c:" .. batch_id, 1)
    end
  end
end

-- A finished batch with no callback left to add is kept as long as its jobs are.
local function batch_expire_if_settled(bkey)
  local f = redis.call("HMGET", bkey, "state", "fire:complete", "fire:success", "fire:death")
  if f[1] ~= "running" and not (f[2] or f[3] or f[4]) then
    redis.call("PEXPIRE", bkey, math.max(KEEP_COMPLETED_MS, KEEP_FAILED_MS))
  end
end

-- Every job ran to an outcome: the batch is complete (and a success if none failed).
local function batch_check_done(batch_id, bkey)
  if tonumber(redis.call("HGET", bkey, "pending")) > 0 then return end
  local failed = tonumber(redis.call("HGET", bkey, "failed"))
  redis.call("HSET", bkey, "state", failed > 0 and "complete" or "success",
    "finished", now_ms())
  batch_owe(batch_id, bkey, "complete")
  if failed == 0 then batch_owe(batch_id, bkey, "success") end
  batch_expire_if_settled(bkey)
end
