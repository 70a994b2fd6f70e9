--[[ cancel: stop a job. One that has not started fails at once with reason "cancelled"; a
running one is flagged, and its worker cancels it when it next renews its leases (within a
few seconds) and records the attempt as failed with reason "cancelled", without retry.

KEYS and settings: see includes/queue.lua.
ARGV[1] id
Returns the state the job was in ("waiting", "delayed" or "active"); CODE_NOT_FOUND if there is
no such job; CODE_WRONG_STATE if it had already finished (nothing changed).
Events: "failed" with reason "cancelled" for a job that had not started; "cancelling" for a
running one (its "failed" follows when the worker stops it).
]]
-- @include queue
-- @include finished
-- @include waiting

local id = ARGV[1]
local key = job_key(id)
local now = now_ms()
if redis.call("HEXISTS", LEASES, id) == 1 then
  redis.call("HSET", key, "cancel", 1)
  emit("cancelling", id)
  return "active"
end
local state = redis.call("HGET", key, "state")
if not state then return CODE_NOT_FOUND end
if state ~= "waiting" and state ~= "delayed" and state ~= "waiting-children" then
  return CODE_WRONG_STATE
end
-- workflows: a flow's parent; its children that have not run are removed (owed: "k:<id>")
if state == "waiting-children" then
  redis.call("ZREM", WAITING_CHILDREN, id)
  local kids = redis.call("HGET", key, "kids")
  if kids then redis.call("HSET", BASE .. "owed", "k:" .. id, kids) end
end
local group = redis.call("HGET", key, "group")  -- flow control: a grouped job waits there
if group then
  group_unpush(group, id)
elseif state == "waiting" then
  unwait({id})
end
redis.call("ZREM", DELAYED, id)
redis.call("HDEL", key, "run_at")
move_to_failed(id, key, now, "cancelled")
flush_metrics(now)
return state
