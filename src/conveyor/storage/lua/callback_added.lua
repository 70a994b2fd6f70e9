--[[ callback_added: a batch callback owed was added as a job (its id is derived from the
batch id and the kind, so adding it again after a crash finds it there). See
conveyor/workflows.

KEYS and settings: see includes/queue.lua.
ARGV[1] batch id  ARGV[2] kind ("complete", "success" or "death")  ARGV[3] the callback job's
id, "queue|id"
Returns CODE_OK, or CODE_NOT_FOUND when that callback was not owed (already cleared).
]]
-- @include queue
-- @include workflow
-- @include batch

local batch_id, kind = ARGV[1], ARGV[2]
local bkey = BASE .. "batch:" .. batch_id
if redis.call("HDEL", bkey, "fire:" .. kind) == 0 then return CODE_NOT_FOUND end
redis.call("HSET", bkey, "job:" .. kind, ARGV[3])
local f = redis.call("HMGET", bkey, "fire:complete", "fire:success", "fire:death")
if not (f[1] or f[2] or f[3]) then redis.call("HDEL", OWED, "c:" .. batch_id) end
batch_expire_if_settled(bkey)
return CODE_OK
