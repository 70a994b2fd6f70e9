--[[ heartbeat: record that a worker is alive, with what it is doing; forget silent workers.

KEYS and settings: see includes/queue.lua.
ARGV[1] worker id  ARGV[2] worker info (JSON)  ARGV[3] seconds after which a silent worker is gone
  ("0" = this worker is stopping: remove it now)  ARGV[4] the queue epoch this worker saw last
  ("" = none yet)
Returns {live workers, queue epoch}. The epoch (META "epoch") is set once, the first time a
worker beats; if it changes under a running worker, Redis lost the queue's data (a restart
without persistence, FLUSHALL, failover to an empty replica, or obliterate). Then the loss is
also recorded in BASE.."data_lost" (JSON, kept DATA_LOSS_TTL_SECONDS) for the API's health
check and the CLI.
Events: none.
]]
-- @include queue

local id, info, ttl, known = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4] or ""
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
local epoch = redis.call("HGET", META, "epoch")
if known ~= "" and known ~= epoch then
  redis.call("SET", BASE .. "data_lost", cjson.encode({
    noticed_at = now, previous_epoch = known, epoch = epoch, noticed_by = id,
  }), "EX", DATA_LOSS_TTL_SECONDS)
end
return {redis.call("ZCARD", WORKERS), epoch}
