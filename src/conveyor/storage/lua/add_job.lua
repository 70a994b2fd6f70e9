--[[ add_job: enqueue one or more jobs (add and add_bulk both use it).

KEYS and settings: see includes/queue.lua.
ARGV, one of two forms (one job as plain arguments spares Redis a JSON decode on every single
add; many jobs as one JSON document spare the client packing thousands of arguments):
  one job:   id ("" = assign one), name, data (JSON text)[, opts (JSON text), attempts,
             priority, delay (ms, 0 = none), ttl (ms, 0 = none)[, group] ]
  many jobs: a JSON array with one such array per job (then "groups" if any has a group)
Left out, opts is "{}", attempts 1 and priority, delay and ttl 0 (one job with all of them
left out, the commonest call, takes a shorter path).
Returns a flat array, two entries per job: id, CODE_OK if added or CODE_EXISTS if a job with
that id existed (then nothing was enqueued). Flow control: a job with a group waits in its
group (includes/groups.lua); {CODE_GROUP_FULL, group, max size} when the call would take a group
past its max size (then nothing was added).
Events: "added" (one entry for the waiting jobs of the call, one for the delayed ones, with
"state").
]]
-- @include queue

-- A job's hash. Fields at their defaults are left out (readers take a missing opts as "{}",
-- attempts as 1, priority, made and stalls as 0, and a missing score as the one its id gives,
-- see job_wait_score): most jobs need four fields, and a bulk add is largely the cost of these
-- writes. `score` is nil for a job whose id is its sequence number.
local function write_job(key, name, data, score, now, state, opts, attempts, priority)
  if score then
    redis.call("HSET", key, "name", name, "data", data, "score", score, "created", now,
      "state", state)
  else
    redis.call("HSET", key, "name", name, "data", data, "created", now, "state", state)
  end
  if opts ~= "{}" or attempts ~= 1 or priority ~= 0 then
    redis.call("HSET", key, "opts", opts, "attempts", attempts, "priority", priority)
  end
end

-- The id of a job the producer left unnamed: its sequence number, unless that is taken (a
-- producer may choose an id that looks like one, or have named it earlier in this call).
local function free_id(seq, check, seen)
  local id = tostring(seq)
  while (seen and seen[id]) or (check and redis.call("EXISTS", job_key(id)) == 1) do
    id = tostring(redis.call("INCR", SEQ))
  end
  return id
end

if #ARGV == 3 then
  -- The commonest call: one job with every option at its default, so a waiting one. The same
  -- steps as below without the many-jobs bookkeeping (tables, loops, chunked calls), which was
  -- about an eighth of this script's time on a single add.
  local seq = redis.call("INCR", SEQ)
  local id = ARGV[1]
  if id == "" then
    id = free_id(seq, true, nil)
  elseif redis.call("EXISTS", job_key(id)) == 1 then
    return {id, CODE_EXISTS}
  end
  -- The event's entry id is Redis's clock in ms, the same as TIME's (held at the stream's last
  -- entry if the clock stepped back): it serves as the creation time and saves a call.
  local now = tonumber(string.match(emit("added", id, "state", "waiting"), "^%d+"))
  local score = wait_score(0, seq)
  write_job(job_key(id), ARGV[2], ARGV[3], id ~= tostring(seq) and score or nil, now, "waiting",
    "{}", 1, 0)
  redis.call("ZADD", WAIT, score, id)
  wake_workers()
  return {id, CODE_OK}
end

-- (Flow control's helpers are defined only past the single-job path, which never needs them:
-- each function a script defines costs it time on every call.)
-- @include groups

local jobs
if #ARGV <= 2 then jobs = cjson.decode(ARGV[1]) else jobs = {ARGV} end
local n = #jobs

-- Flow control: refuse the whole call when it would take a group past its max size (many
-- jobs with a group come as {JSON, "groups"}).
if #ARGV == 9 or ARGV[2] == "groups" then
  local adding = {}
  for i = 1, n do
    local g = jobs[i][9]
    if g and g ~= "" and tonumber(jobs[i][7]) == 0 then adding[g] = (adding[g] or 0) + 1 end
  end
  for g, count in pairs(adding) do
    local max = group_conf(g).max
    if max > 0 and redis.call("ZCARD", BASE .. "gw:" .. g) + count > max then
      return {CODE_GROUP_FULL, g, max}
    end
  end
end
local now = now_ms()
-- Draw every sequence number of the call at once; FIFO order follows the array order.
local first_seq = redis.call("INCRBY", SEQ, n) - n

-- One EXISTS over every id the call would use (a sequence number where none was chosen)
-- instead of one per job: only when some job already exists does each job get its own check.
local keys, clash = {}, 0
for i = 1, n do
  local id = jobs[i][1]
  if id == "" then id = first_seq + i end
  keys[i] = job_key(id)
end
if n == 1 then
  clash = redis.call("EXISTS", keys[1])
else
  for i = 1, n, 4000 do
    clash = clash + redis.call("EXISTS", unpack(keys, i, math.min(i + 3999, n)))
  end
end

-- (Numeric loops and tables made only when needed: this runs on every single add, where
-- the many-jobs bookkeeping would otherwise be a measurable share of the script's time.)
local seen = n > 1 and {} or nil  -- ids added earlier in this call (one id named twice)
local out, waiting, wait_args, delayed, delay_args = {}, {}, {}, nil, nil
local n_wait, n_plain, woke, earliest = 0, 0, false, nil
for i = 1, n do
  local job = jobs[i]
  local id, name, data = job[1], job[2], job[3]
  local opts, attempts, priority, delay, ttl, group = "{}", 1, 0, 0, 0, nil
  if job[4] then
    opts, attempts, priority = job[4], tonumber(job[5]), tonumber(job[6])
    delay, ttl = tonumber(job[7]), tonumber(job[8])
    if job[9] and job[9] ~= "" then group = job[9] end
  end
  local seq, exists, key = first_seq + i, false, keys[i]
  if id == "" then
    id = free_id(seq, clash > 0, seen)
    key = job_key(id)
  elseif (seen and seen[id]) or (clash > 0 and redis.call("EXISTS", key) == 1) then
    exists = true
  end
  if seen then seen[id] = true end
  out[2 * i - 1] = id
  out[2 * i] = exists and CODE_EXISTS or CODE_OK
  if not exists then
    local score = wait_score(priority, seq)
    local state, run_at = "waiting", nil
    if delay > 0 then
      state, run_at = "delayed", now + delay
    end
    write_job(key, name, data, id ~= tostring(seq) and score or nil, now, state, opts, attempts,
      priority)
    -- The ttl counts from when the job becomes runnable (its run-at for a delayed job).
    if ttl > 0 then redis.call("HSET", key, "expire_at", (run_at or now) + ttl) end
    if group then redis.call("HSET", key, "group", group) end
    if run_at then
      redis.call("HSET", key, "run_at", run_at)
      if not delayed then delayed, delay_args = {}, {} end
      delayed[#delayed + 1] = id
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
    elseif group then  -- flow control: waits in its group, not in the wait set
      group_push(group, id, score, now)
      n_wait = n_wait + 1
      waiting[n_wait] = id
    else
      n_wait = n_wait + 1
      waiting[n_wait] = id
      n_plain = n_plain + 1
      wait_args[2 * n_plain - 1] = score
      wait_args[2 * n_plain] = id
    end
  end
end
if n_wait > 0 then
  if n_plain > 0 then call_chunked("ZADD", WAIT, wait_args) end
  emit_many("added", waiting, "state", "waiting")
  woke = true
end
if delayed then
  call_chunked("ZADD", DELAYED, delay_args)
  emit_many("added", delayed, "state", "delayed")
end
if woke then wake_workers() end
return out
