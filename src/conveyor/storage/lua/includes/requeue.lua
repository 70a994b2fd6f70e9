-- @include finished

--[[ Moving jobs from one set back to "wait" (retry: failed -> wait; promote: delayed -> wait),
with the calling convention both scripts share:
  ARGV[1] "ids": ARGV[2] number of ids N, then N ids. Returns one code per id:
         CODE_OK (moved), CODE_NOT_FOUND, CODE_WRONG_STATE (not in that set: nothing changed)
  ARGV[1] "all": ARGV[2] at most this many. Returns {moved, still in the set}.
`prepare(id, key)` runs before the move (e.g. to reset counters). Events: "waiting" with
"reason" for each job. Needs the queue include first. ]]
local function requeue(set, reason, prepare)
  local now = now_ms()
  local function one(id)
    local key = job_key(id)
    if not redis.call("ZSCORE", set, id) then
      if redis.call("EXISTS", key) == 0 then return CODE_NOT_FOUND end
      return CODE_WRONG_STATE
    end
    redis.call("ZREM", set, id)
    prepare(id, key)
    move_to_wait(id, key, now)
    emit("waiting", id, "reason", reason)
    return CODE_OK
  end

  if ARGV[1] == "all" then
    local ids = redis.call("ZRANGE", set, 0, tonumber(ARGV[2]) - 1)
    for _, id in ipairs(ids) do one(id) end
    if #ids > 0 then wake_workers() end
    return {#ids, redis.call("ZCARD", set)}
  end
  local out, woke = {}, false
  for i = 1, tonumber(ARGV[2]) do
    out[i] = one(ARGV[2 + i])
    woke = woke or out[i] == CODE_OK
  end
  if woke then wake_workers() end
  return out
end
