--[[ retry: put failed jobs back in the queue with a fresh budget of attempts.

KEYS and settings: see includes/queue.lua. Arguments and return values: see includes/requeue.lua.
The error history is kept; attempts made, stalls, result, error and a cancel request are reset.
Events: "waiting" with reason "retried" for each job.
]]
-- @include queue
-- @include requeue

return requeue(FAILED, "retried", function(_, key)
  redis.call("HSET", key, "made", 0, "stalls", 0)
  redis.call("HDEL", key, "result", "error", "finished", "started", "worker", "expire_at",
    "cancel")
end)
