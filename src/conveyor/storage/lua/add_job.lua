--[[ add_job: enqueue one or more jobs (add and add_bulk both use it).

KEYS, ARGV[1]: see includes/queue.lua.
arg(1) JSON array with one entry per job:
       [id ("" = assign one), name, data (JSON text), opts (JSON text), attempts, priority,
        delay (ms, 0 = none), ttl (ms, 0 = none)]
Returns a flat array, two entries per job: id, 1 if added or 0 if a job with that id existed
(then nothing was enqueued).
Events: "added" (one entry for the waiting jobs of the call, one for the delayed ones, with
"state").
]]
-- @include queue

local jobs = cjson.decode(arg(1))
local now = now_ms()
local out, waiting, delayed, wait_args, delay_args = {}, {}, {}, {}, {}
local woke, earliest = false, nil
-- Draw every sequence number of the call at once; FIFO order follows the array order.
local first_seq = redis.call("INCRBY", SEQ, #jobs) - #jobs
local seq = first_seq

-- One EXISTS over every id the call would use (a sequence number where none was chosen)
-- instead of one per job: only when some job already exists does each job get its own check.
local candidates, clash = {}, 0
for i, job in ipairs(jobs) do
  local id = job[1]
  if id == "" then id = tostring(first_seq + i) end
  candidates[i] = job_key(id)
end
for i = 1, #candidates, 4000 do
  clash = clash + redis.call("EXISTS", unpack(candidates, i, math.min(i + 3999, #candidates)))
end

local seen = {}  -- ids added earlier in this call (a bulk add may name one id twice)
local n_out, n_wait = 0, 0  -- (counters: "#t" searches the table on every append)
for i, job in ipairs(jobs) do
  local id, name, data, opts = job[1], job[2], job[3], job[4]
  local attempts, priority, delay, ttl = job[5], job[6], job[7], job[8]
  seq = seq + 1
  local exists, key = 0, candidates[i]
  if id == "" then
    id = tostring(seq)
    -- A producer may have chosen an id that looks like a sequence number; skip past it.
    while seen[id] or (clash > 0 and redis.call("EXISTS", job_key(id)) == 1) do
      id = tostring(redis.call("INCR", SEQ))
      key = job_key(id)
    end
  elseif seen[id] or (clash > 0 and redis.call("EXISTS", job_key(id)) == 1) then
    exists = 1
  end
  seen[id] = true
  out[n_out + 1] = id
  out[n_out + 2] = 1 - exists
  n_out = n_out + 2
  if exists == 0 then
    local score = (1000 - priority) * 1099511627776 + seq
    local state, run_at = "waiting", nil
    if delay > 0 then
      state, run_at = "delayed", now + delay
    end
    -- Fields at their defaults are left out (readers take a missing opts as "{}", attempts as
    -- 1, priority, made and stalls as 0): most jobs need five fields, and a bulk add is
    -- largely the cost of these writes.
    redis.call("HSET", key, "name", name, "data", data, "score", score, "created", now,
      "state", state)
    if opts ~= "{}" or attempts ~= 1 or priority ~= 0 then
      redis.call("HSET", key, "opts", opts, "attempts", attempts, "priority", priority)
    end
    -- The ttl counts from when the job becomes runnable (its run-at for a delayed job).
    if ttl > 0 then redis.call("HSET", key, "expire_at", (run_at or now) + ttl) end
    if run_at then
      redis.call("HSET", key, "run_at", run_at)
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
    else
      n_wait = n_wait + 1
      waiting[n_wait] = id
      wait_args[2 * n_wait - 1] = score
      wait_args[2 * n_wait] = id
    end
  end
end
if #wait_args > 0 then
  call_chunked("ZADD", WAIT, wait_args)
  emit_many("added", waiting, "state", "waiting")
  woke = true
end
if #delay_args > 0 then
  call_chunked("ZADD", DELAYED, delay_args)
  emit_many("added", delayed, "state", "delayed")
end
if woke then wake_workers() end
return out
