--[[ drop_children: remove the children (on this queue) of a flow parent that was cancelled or
removed, those that have not run: waiting, delayed, or waiting for children of their own
(whose children then go the same way). Running and finished ones are left alone. See
conveyor/workflows.

KEYS and settings: see includes/queue.lua.
ARGV[1] JSON array of child job ids
Returns how many were removed.
Events: "removed" for each.
]]
-- @include queue
-- @include finished
-- @include waiting
-- @include workflow

local removed, waiting = 0, {}
for _, id in ipairs(cjson.decode(ARGV[1])) do
  local key = job_key(id)
  local f = redis.call("HMGET", key, "state", "kids")
  local state = f[1]
  if redis.call("HEXISTS", LEASES, id) == 0 and
      (state == "waiting" or state == "delayed" or state == "waiting-children") then
    if state == "waiting" then waiting[#waiting + 1] = id end
    redis.call("ZREM", DELAYED, id)
    redis.call("ZREM", WAITING_CHILDREN, id)
    if f[2] then redis.call("HSET", OWED, "k:" .. id, f[2]) end
    delete_job(id)
    emit("removed", id)
    removed = removed + 1
  end
end
unwait(waiting)  -- (all at once: one pass over the wait list however many there are)
return removed
