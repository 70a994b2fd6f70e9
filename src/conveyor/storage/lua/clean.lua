--[[ clean: delete jobs of one state that are older than a cut-off, a bounded chunk per call.

KEYS and settings: see includes/queue.lua.
ARGV[1] state: completed, failed, delayed or waiting
ARGV[2] age in ms: only jobs older than this go (finish time for completed/failed, creation
       time otherwise)
ARGV[3] at most this many jobs deleted per call
ARGV[4] cursor: for waiting/delayed, the rank to resume the scan from (0 at first)
Returns {deleted, next cursor (-1 when done)}.
Events: "removed" for each job.
]]
-- @include queue
-- @include finished

local state, age, limit, cursor = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local cutoff = now_ms() - age
local sets = {completed = COMPLETED, failed = FAILED, delayed = DELAYED, waiting = WAIT,
  ["waiting-children"] = WAITING_CHILDREN}  -- (workflows)
local set = sets[state]
if not set then return redis.error_reply("ERR clean: unknown state " .. tostring(state)) end

local victims, next_cursor = {}, -1
if state == "completed" or state == "failed" then
  victims = redis.call("ZRANGEBYSCORE", set, "-inf", cutoff, "LIMIT", 0, limit)
  if #victims == limit then next_cursor = 0 end
else
  -- Scored by priority or run-at, not age: look at a window and check each creation time.
  local window = redis.call("ZRANGE", set, cursor, cursor + limit - 1)
  for _, id in ipairs(window) do
    local created = tonumber(redis.call("HGET", job_key(id), "created")) or 0
    if created <= cutoff then victims[#victims + 1] = id end
  end
  if #window == limit then next_cursor = cursor + limit - #victims end
end
for _, id in ipairs(victims) do
  redis.call("ZREM", set, id)
  if state ~= "completed" and state ~= "failed" then
    -- workflows: a job of a flow or batch that never ran is reported removed; a parent's
    -- children that have not run go too (as remove.lua does)
    local f = redis.call("HMGET", job_key(id), "wf", "kids")
    if f[1] then
      redis.call("HSET", BASE .. "owed", "o:" .. id, '["removed",null,' .. f[1] .. "]")
    end
    if f[2] then redis.call("HSET", BASE .. "owed", "k:" .. id, f[2]) end
  end
  delete_job(id)
  emit("removed", id)
end
return {#victims, next_cursor}
