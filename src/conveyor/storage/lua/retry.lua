--[[ retry: put failed jobs back in the queue with a fresh budget of attempts.

KEYS, ARGV[1]: see includes/queue.lua.
arg(1) "ids" or "all"
  "ids": arg(2) number of ids N, then N ids. Returns one code per id:
         1 retried, 0 not found, -3 not failed (nothing changed)
  "all": arg(2) at most this many. Returns {retried, remaining failed}.
The error history is kept; attempts made, stalls, result and error are reset.
Events: "waiting" with reason "retried" for each job.
]]
-- @include queue

local now = now_ms()

local function retry_one(id)
  local key = job_key(id)
  if not redis.call("ZSCORE", FAILED, id) then
    if redis.call("EXISTS", key) == 0 then return 0 end
    return -3
  end
  redis.call("ZREM", FAILED, id)
  redis.call("HSET", key, "made", 0, "stalls", 0)
  redis.call("HDEL", key, "result", "error", "finished", "started", "worker", "expire_at",
    "cancel")
  move_to_wait(id, key, now)
  emit("waiting", id, "reason", "retried")
  return 1
end

local out = {}
if arg(1) == "all" then
  local ids = redis.call("ZRANGE", FAILED, 0, tonumber(arg(2)) - 1)
  for _, id in ipairs(ids) do retry_one(id) end
  out = {#ids, redis.call("ZCARD", FAILED)}
  if #ids > 0 then wake_workers() end
else
  local woke = false
  for i = 1, tonumber(arg(2)) do
    out[i] = retry_one(arg(2 + i))
    woke = woke or out[i] == 1
  end
  if woke then wake_workers() end
end
return out
