--[[ clean: delete jobs of one state that are older than a cut-off, a bounded chunk per call.

KEYS and settings: see includes/queue.lua.
ARGV[1] state: completed, failed, delayed or waiting
ARGV[2] age in ms: only jobs older than this go (finish time for completed/failed, creation
       time otherwise)
ARGV[3] at most this many jobs looked at (so deleted) per call
ARGV[4] cursor: "0" at first; for waiting/delayed, the rank to resume the scan from (waiting:
       in the order includes/waiting.lua gives the jobs without a group), and for waiting
       past those, "<rank>:<count>:<skip>:<group>": the rank in a group's
       waiting jobs, and that group's place in the walk over the groups
       (includes/group_walk.lua)
Returns {deleted, next cursor ("-1" when done)}.
Events: "removed" for each job.
]]
-- @include queue
-- @include finished
-- @include waiting
-- @include group_walk

local state, age, limit, cursor = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local cutoff = now_ms() - age
local sets = {completed = COMPLETED, failed = FAILED, delayed = DELAYED, waiting = WAIT,
  ["waiting-children"] = WAITING_CHILDREN}  -- (workflows)
local set = sets[state]
if not set then return redis.error_reply("ERR clean: unknown state " .. tostring(state)) end

local deleted = 0
local AGAIN, DONE = "0", "-1"  -- the cursors that start a scan over, and that end the clean

local function delete(id, group)
  if group then  -- flow control: the group's count, round robin and keys follow
    group_unpush(group, id)
  elseif set ~= WAIT then  -- (jobs waiting without a group: sweep unwaits them at once)
    redis.call("ZREM", set, id)
  end
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
  deleted = deleted + 1
end

-- Scored by priority or run-at, not age: look at a window and check each creation time.
-- Returns how many jobs the window held and how many of them went.
local function sweep(key, rank, count, group)
  local window
  if key == WAIT then
    window = range_waiting(rank, rank + count - 1, false)
  else
    window = redis.call("ZRANGE", key, rank, rank + count - 1)
  end
  local victims = {}
  for _, id in ipairs(window) do
    local created = tonumber(redis.call("HGET", job_key(id), "created")) or 0
    if created <= cutoff then victims[#victims + 1] = id end
  end
  if key == WAIT then unwait(victims) end
  for _, id in ipairs(victims) do delete(id, group) end
  return #window, #victims
end

if state == "completed" or state == "failed" then
  local victims = redis.call("ZRANGEBYSCORE", set, "-inf", cutoff, "LIMIT", 0, limit)
  for _, id in ipairs(victims) do delete(id) end
  return {deleted, #victims == limit and AGAIN or DONE}
end

local rank, count, skip, group = string.match(cursor, "^(%d+):(%d+):(%d+):(.*)$")
rank, count, skip = tonumber(rank or cursor) or 0, tonumber(count), tonumber(skip)
local budget = limit
if not group then
  local seen, gone = sweep(set, rank, limit)
  if seen == limit then return {deleted, tostring(rank + limit - gone)} end
  if state ~= "waiting" then return {deleted, DONE} end
  -- Flow control: the waiting jobs of the groups are next, group after group.
  budget = limit - seen
  group, count, skip = group_at(1, 0, false)
  rank = 0
end
while group and budget > 0 do
  local seen, gone = sweep(BASE .. "gw:" .. group, rank, budget, group)
  if seen == budget then
    return {deleted, (rank + seen - gone) .. ":" .. count .. ":" .. skip .. ":" .. group}
  end
  budget = budget - math.max(seen, 1)  -- (an emptied group costs a step too)
  group, count, skip = group_at(group_next(group, count, skip))
  rank = 0
end
if not group then return {deleted, DONE} end
return {deleted, AGAIN .. ":" .. count .. ":" .. skip .. ":" .. group}
