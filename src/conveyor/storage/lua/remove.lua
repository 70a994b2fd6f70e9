--[[ remove: delete jobs that are not running.

KEYS and settings: see includes/queue.lua.
ARGV[1] number of ids N, then N ids
Returns one code per id: CODE_OK (removed), CODE_NOT_FOUND or CODE_IS_ACTIVE (cancel it, or
wait until it ends).
Events: "removed" for each removed job.
]]
-- @include queue
-- @include finished
-- @include waiting

local count, out, waiting = tonumber(ARGV[1]), {}, {}
for i = 1, count do
  local id = ARGV[1 + i]
  local key = job_key(id)
  local state = redis.call("HGET", key, "state")
  if redis.call("ZSCORE", ACTIVE, id) then
    out[i] = CODE_IS_ACTIVE
  elseif not state and redis.call("EXISTS", key) == 0 then
    out[i] = CODE_NOT_FOUND
  else
    local group = redis.call("HGET", key, "group")  -- flow control: a grouped job waits there
    if group then
      group_unpush(group, id)
    elseif state == "waiting" or not state then
      waiting[#waiting + 1] = id
    end
    redis.call("ZREM", DELAYED, id)
    redis.call("ZREM", COMPLETED, id)
    redis.call("ZREM", FAILED, id)
    -- workflows: a flow parent leaves its set; a flow child or batch job is reported removed
    if state == "waiting-children" then  -- its children that have not run go too
      redis.call("ZREM", WAITING_CHILDREN, id)
      local kids = redis.call("HGET", key, "kids")
      if kids then redis.call("HSET", BASE .. "owed", "k:" .. id, kids) end
    end
    local wf = redis.call("HGET", key, "wf")
    if wf and state ~= "completed" and state ~= "failed" then
      redis.call("HSET", BASE .. "owed", "o:" .. id, '["removed",null,' .. wf .. "]")
    end
    delete_job(id)
    emit("removed", id)
    out[i] = CODE_OK
  end
end
unwait(waiting)  -- (all at once: one pass over the wait list however many there are)
return out
