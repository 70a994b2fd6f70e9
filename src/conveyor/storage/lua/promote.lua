--[[ promote: move delayed jobs to waiting now, ahead of their run-at time.

KEYS, ARGV[1]: see includes/queue.lua.
arg(1) "ids" or "all"
  "ids": arg(2) number of ids N, then N ids. Returns one code per id:
         1 promoted, 0 not found, -3 not delayed (nothing changed)
  "all": arg(2) at most this many. Returns {promoted, remaining delayed}.
Events: "waiting" with reason "promoted" for each job.
]]
-- @include queue

local now = now_ms()

local function promote_one(id)
  local key = job_key(id)
  if not redis.call("ZSCORE", DELAYED, id) then
    if redis.call("EXISTS", key) == 0 then return 0 end
    return -3
  end
  redis.call("ZREM", DELAYED, id)
  move_to_wait(id, key, now)
  emit("waiting", id, "reason", "promoted")
  return 1
end

local out = {}
if arg(1) == "all" then
  local ids = redis.call("ZRANGE", DELAYED, 0, tonumber(arg(2)) - 1)
  for _, id in ipairs(ids) do promote_one(id) end
  out = {#ids, redis.call("ZCARD", DELAYED)}
  if #ids > 0 then wake_workers() end
else
  local woke = false
  for i = 1, tonumber(arg(2)) do
    out[i] = promote_one(arg(2 + i))
    woke = woke or out[i] == 1
  end
  if woke then wake_workers() end
end
return out
