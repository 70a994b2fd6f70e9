--[[ heartbeat: record that a worker is alive, with what it is doing; forget silent workers.

KEYS, ARGV[1..9]: see includes/queue.lua.
arg(1) worker id  arg(2) worker info (JSON)  arg(3) seconds after which a silent worker is gone
  ("0" = this worker is stopping: remove it now)
Returns {live workers, queue epoch}. The epoch (META "epoch") is set once, the first time a
worker beats; if it changes under a running worker, Redis lost the queue's data (a restart
without persistence, FLUSHALL, failover to an empty replica, or obliterate).
Events: none.
]]
-- @include queue

local id, info, ttl = arg(1), arg(2), tonumber(arg(3))
local now = now_ms()
local key = BASE .. "worker:" .. id
if ttl == 0 then
  redis.call("ZREM", WORKERS, id)
  redis.call("UNLINK", key)
else
  redis.call("ZADD", WORKERS, now, id)
  redis.call("SET", key, info, "EX", math.ceil(ttl))
  redis.call("ZREMRANGEBYSCORE", WORKERS, "-inf", now - ttl * 1000)
end
redis.call("HSETNX", META, "epoch", now)
return {redis.call("ZCARD", WORKERS), redis.call("HGET", META, "epoch")}
