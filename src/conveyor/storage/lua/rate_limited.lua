--[[ rate_limited: flow control, a handler raised RateLimited(delay) (a remote API answered
429): the job goes back to waiting without using an attempt, and its group (or, for a job
without one, the jobs without a group) is held: nothing of it is handed out for `delay`. The
groups of a queue are not held by a job without a group: they keep their turns.

KEYS and settings: see includes/queue.lua; flow control's keys: see includes/groups.lua.
ARGV[1] id  ARGV[2] lease token  ARGV[3] delay in ms
Returns CODE_OK, or CODE_LEASE_LOST (nothing was written).
Events: "rate_limited" with "delay" and "group" ("" for the jobs without a group).
]]
-- @include queue
-- @include leases
-- @include finished

local id, token, delay = ARGV[1], ARGV[2], tonumber(ARGV[3])
if not owns(id, token) then return CODE_LEASE_LOST end
local key = job_key(id)
local now = now_ms()
local until_ms = now + delay
-- Back to waiting first (its group's slot comes back), then the hold.
end_leases({id})
move_to_wait(id, key, now)
local g = redis.call("HGET", key, "group")
if g then
  local held = tonumber(redis.call("HGET", BASE .. "g:" .. g, "hold")) or 0
  if until_ms > held then
    redis.call("HSET", BASE .. "g:" .. g, "hold", until_ms)
    redis.call("ZREM", BASE .. "gready", g)
    redis.call("ZADD", BASE .. "gsleep", until_ms, g)
  end
else  -- their member of the round robin ("") sleeps, as a held group does
  local held = tonumber(redis.call("HGET", BASE .. "flow", "hold")) or 0
  if until_ms > held then
    redis.call("HSET", BASE .. "flow", "hold", until_ms)
    redis.call("ZREM", BASE .. "gready", "")
    redis.call("ZADD", BASE .. "gsleep", until_ms, "")
  end
end
redis.call("HSET", META, "flow", "1")
emit("rate_limited", id, "delay", delay, "group", g or "")
flush_metrics(now)
return CODE_OK
