--[[ Where a call's new jobs go (needs the queue, add and groups includes): add_job.lua's many
jobs and add_deduped.lua's one. A job delayed goes to the delayed set, a job with a group
(flow control) to its group's waiting jobs, one of priority 0 to the wait list and any other to
the wait set (includes/waiting.lua says why); then one "added" event for the call's waiting jobs
and one for its delayed ones, and idle workers are woken when a job is runnable now or due
before every delayed job they sleep until. ]]

-- Flow control: nil if the groups have room for `adding` (group -> jobs to go straight into
-- it), else the reply that refuses the call: {CODE_GROUP_FULL, group, its max size}.
local function groups_full(adding)
  for g, count in pairs(adding) do
    local max = group_conf(g).max
    if max > 0 and redis.call("ZCARD", BASE .. "gw:" .. g) + count > max then
      return {CODE_GROUP_FULL, g, max}
    end
  end
  return nil
end

-- The call's placement, as locals of the script (a script places one call's jobs): the wait
-- list's and the wait set's arguments and the events' ids. (Locals and counters rather than a
-- table's fields and the length operator, and the commonest case, a job waiting without a
-- group, first: this runs once per job of a bulk add.)
local placed_waiting, wait_args, n_waiting, n_wait_args = {}, {}, 0, 0
local list_args, n_list_args = {}, 0
local placed_delayed, delay_args, earliest, woke = nil, nil, nil, false
-- The creation time's digits, written into every job of the call: formatted once, not by each
-- HSET (a call's jobs share their `now`; Redis formats a number argument on every call).
local created, created_at = nil, nil

-- A new job: its hash (write_job writes the commonest fields), then its place. The ttl counts
-- from when the job becomes runnable (its run-at for a delayed job).
local function add_new_job(id, key, name, data, seq, now, opts, attempts, priority, delay, ttl,
                           group)
  local score = wait_score(priority, seq)
  local stored = id ~= tostring(seq) and score or nil  -- (see write_job)
  if created_at ~= now then created, created_at = tostring(now), now end
  if delay <= 0 then
    write_job(key, name, data, stored, created, "waiting", opts, attempts, priority)
    if ttl > 0 then redis.call("HSET", key, "expire_at", now + ttl) end
    n_waiting = n_waiting + 1
    placed_waiting[n_waiting] = id
    if not group and priority == 0 then
      n_list_args = n_list_args + 1
      list_args[n_list_args] = id
    elseif not group then
      wait_args[n_wait_args + 1] = score
      wait_args[n_wait_args + 2] = id
      n_wait_args = n_wait_args + 2
    else  -- flow control: waits in its group, not in the wait set
      redis.call("HSET", key, "group", group)
      group_push(group, id, score, now)
    end
    return
  end
  local run_at = now + delay
  write_job(key, name, data, stored, created, "delayed", opts, attempts, priority)
  if ttl > 0 then redis.call("HSET", key, "expire_at", run_at + ttl) end
  if group then redis.call("HSET", key, "group", group) end
  redis.call("HSET", key, "run_at", run_at)
  if not placed_delayed then placed_delayed, delay_args = {}, {} end
  placed_delayed[#placed_delayed + 1] = id
  delay_args[#delay_args + 1] = run_at
  delay_args[#delay_args + 1] = id
  -- Idle workers sleep until the earliest due job; wake them if this one is earlier.
  if earliest == nil then
    earliest = tonumber(redis.call("ZRANGE", DELAYED, 0, 0, "WITHSCORES")[2] or run_at + 1)
  end
  if run_at < earliest then
    earliest = run_at
    woke = true
  end
end

-- The sets' writes, the events (with `...`: more fields for them) and the wake-up.
local function placed(...)
  if n_waiting > 0 then
    if n_list_args > 0 then call_chunked("RPUSH", WAIT_LIST, list_args) end
    if n_wait_args > 0 then call_chunked("ZADD", WAIT, wait_args) end
    emit_many("added", placed_waiting, "state", "waiting", ...)
    woke = true
  end
  if placed_delayed then
    call_chunked("ZADD", DELAYED, delay_args)
    emit_many("added", placed_delayed, "state", "delayed", ...)
  end
  if woke then wake_workers() end
end
