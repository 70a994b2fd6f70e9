--[[ release_parent: tell flow parents (on this queue) the outcomes of their children (on any
queue). Idempotent: a child counts once (its "p:<child ref>" field in the parent goes), so a
repeat after a crash changes nothing. See conveyor/workflows.

KEYS and settings: see includes/queue.lua.
ARGV[1] JSON array of [parent id, child ref "queue|id", outcome, value, on_failure]: outcome
"completed" (value: the result, JSON text), "failed" (value: the error, JSON text) or
"removed"; on_failure "fail" (the parent fails at once, naming the child), "ignore" (the
failure is kept for the parent to read) or "remove" (as if the child never was).
ARGV[2] JSON array of [owed field, sha1] to clear in this queue's owed hash (the children that
live on this queue), as owed_done does.
A parent whose last child is done goes to waiting (or delayed, if it has a delay: its delay
and ttl count from now). Returns how many parents were released.
Events: "waiting" (or "delayed") with reason "children" for each released parent; "failed"
for one failed.
]]
-- @include queue
-- @include finished
-- @include workflow

local now, released = now_ms(), 0
for _, item in ipairs(cjson.decode(ARGV[1])) do
  local pid, ref, outcome, value, on_failure = item[1], item[2], item[3], item[4], item[5]
  local pkey = job_key(pid)
  if redis.call("HDEL", pkey, "p:" .. ref) == 1 then
    local state = redis.call("HGET", pkey, "state")
    local fail_parent = false
    if outcome == "completed" then
      redis.call("HSET", pkey, "r:" .. ref, value)
    elseif outcome == "failed" then
      if on_failure == "ignore" then
        redis.call("HSET", pkey, "x:" .. ref, value)
      elseif on_failure ~= "remove" then
        fail_parent = true
      end
    end
    local left = redis.call("HINCRBY", pkey, "pending", -1)
    if state == "waiting-children" and (fail_parent or left <= 0) then
      redis.call("ZREM", WAITING_CHILDREN, pid)
      local f = redis.call("HMGET", pkey, "delay_ms", "ttl_ms")
      local delay, ttl = tonumber(f[1]), tonumber(f[2])
      if f[1] or f[2] then redis.call("HDEL", pkey, "delay_ms", "ttl_ms") end
      if fail_parent then
        move_to_failed(pid, pkey, now, "child " .. ref .. " failed: " .. cjson.decode(value))
      elseif delay then  -- its delay counts from now, when it may run
        redis.call("HSET", pkey, "state", "delayed", "run_at", now + delay)
        redis.call("ZADD", DELAYED, now + delay, pid)
        if ttl then redis.call("HSET", pkey, "expire_at", now + delay + ttl) end
        emit("delayed", pid, "reason", "children", "delay", delay)
        released = released + 1
      elseif move_to_wait(pid, pkey, now) then
        if ttl then redis.call("HSET", pkey, "expire_at", now + ttl) end
        emit("waiting", pid, "reason", "children")
        released = released + 1
      end
    end
  end
end
for _, item in ipairs(cjson.decode(ARGV[2])) do
  local value = redis.call("HGET", OWED, item[1])
  if value and redis.sha1hex(value) == item[2] then redis.call("HDEL", OWED, item[1]) end
end
if released > 0 then wake_workers() end
flush_metrics(now)
return released
