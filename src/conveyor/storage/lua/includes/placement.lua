--[[ Where a call's new jobs go (needs the queue, add and groups includes): add_job.lua's many
jobs and add_deduped.lua's one. A job delayed goes to the delayed set, a job with a group
(flow control) to its group's waiting jobs, any other to the wait set; then one "added" event
for the call's waiting jobs and one for its delayed ones, and idle workers are woken when a job
is runnable now or due before every delayed job they sleep until. ]]

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

-- (Counters rather than the length operator, and the commonest case, a job waiting without
-- a group, first: this runs once per job of a bulk add.)
local function placement()
  local p = {waiting = {}, wait_args = {}, delayed = nil, delay_args = nil, woke = false,
             earliest = nil}
  p.n_wait, p.n_args = 0, 0
  return p
end

local function place(p, id, score, run_at, group, now)
  if not run_at then
    local n = p.n_wait + 1
    p.n_wait = n
    p.waiting[n] = id
    if not group then
      local args, k = p.wait_args, p.n_args
      args[k + 1] = score
      args[k + 2] = id
      p.n_args = k + 2
    else  -- flow control: waits in its group, not in the wait set
      group_push(group, id, score, now)
    end
    return
  end
  if not p.delayed then p.delayed, p.delay_args = {}, {} end
  p.delayed[#p.delayed + 1] = id
  local args = p.delay_args
  args[#args + 1] = run_at
  args[#args + 1] = id
  -- Idle workers sleep until the earliest due job; wake them if this one is earlier.
  if p.earliest == nil then
    p.earliest = tonumber(redis.call("ZRANGE", DELAYED, 0, 0, "WITHSCORES")[2] or run_at + 1)
  end
  if run_at < p.earliest then
    p.earliest = run_at
    p.woke = true
  end
end

-- A new job: its hash (write_job writes the commonest fields), then its place. The ttl counts
-- from when the job becomes runnable (its run-at for a delayed job).
local function add_new_job(p, id, key, name, data, seq, now, opts, attempts, priority, delay,
                           ttl, group)
  local score, state, run_at = wait_score(priority, seq), "waiting", nil
  if delay > 0 then state, run_at = "delayed", now + delay end
  write_job(key, name, data, score, now, state, opts, attempts, priority)
  if ttl > 0 then redis.call("HSET", key, "expire_at", (run_at or now) + ttl) end
  if group then redis.call("HSET", key, "group", group) end
  if run_at then redis.call("HSET", key, "run_at", run_at) end
  place(p, id, score, run_at, group, now)
end

-- The sets' writes, the events (with `...`: more fields for them) and the wake-up.
local function placed(p, ...)
  if p.n_wait > 0 then
    if p.n_args > 0 then call_chunked("ZADD", WAIT, p.wait_args) end
    emit_many("added", p.waiting, "state", "waiting", ...)
    p.woke = true
  end
  if p.delayed then
    call_chunked("ZADD", DELAYED, p.delay_args)
    emit_many("added", p.delayed, "state", "delayed", ...)
  end
  if p.woke then wake_workers() end
end
