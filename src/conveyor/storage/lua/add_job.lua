--[[ add_job: enqueue one or more jobs (add and add_bulk both use it).

KEYS, ARGV[1..9]: see includes/queue.lua.
arg(1)  number of jobs N, then N groups of 8 arguments:
        id ("" = assign one), name, data (JSON), opts (JSON), attempts, priority,
        delay (ms, 0 = none; or run-at when arg 8 > 0), ttl (ms, 0 = none)
Returns a flat array, two entries per job: id, 1 if added or 0 if a job with that id existed
(then nothing was enqueued).
Events: "added" with the job's state (waiting or delayed).
]]
-- @include queue

local count = tonumber(arg(1))
local now = now_ms()
local out = {}
local woke, earliest = false, nil
local first_delayed = redis.call("ZRANGE", DELAYED, 0, 0, "WITHSCORES")[2]
if first_delayed then earliest = tonumber(first_delayed) end

for i = 0, count - 1 do
  local o = 1 + i * 8
  local id, name, data, opts = arg(o + 1), arg(o + 2), arg(o + 3), arg(o + 4)
  local attempts, priority = arg(o + 5), tonumber(arg(o + 6))
  local delay, ttl = tonumber(arg(o + 7)), tonumber(arg(o + 8))
  local seq = redis.call("INCR", SEQ)
  if id == "" then
    -- A producer may have chosen an id that looks like a sequence number; skip past it.
    id = tostring(seq)
    while redis.call("EXISTS", job_key(id)) == 1 do
      seq = redis.call("INCR", SEQ)
      id = tostring(seq)
    end
  end
  local key = job_key(id)
  if redis.call("EXISTS", key) == 1 then
    out[#out + 1] = id
    out[#out + 1] = 0
  else
    local score = (1000 - priority) * 1099511627776 + seq
    redis.call("HSET", key, "name", name, "data", data, "opts", opts, "attempts", attempts,
      "priority", priority, "score", score, "made", 0, "stalls", 0, "lease", 0, "created", now)
    if ttl > 0 then redis.call("HSET", key, "expire_at", now + ttl) end
    if delay > 0 then
      local run_at = now + delay
      redis.call("HSET", key, "state", "delayed", "run_at", run_at)
      redis.call("ZADD", DELAYED, run_at, id)
      emit("added", id, "name", name, "state", "delayed", "run_at", run_at)
      -- Idle workers sleep until the earliest due job; wake them if this one is earlier.
      if earliest == nil or run_at < earliest then
        earliest = run_at
        woke = true
      end
    else
      redis.call("HSET", key, "state", "waiting")
      redis.call("ZADD", WAIT, score, id)
      emit("added", id, "name", name, "state", "waiting")
      woke = true
    end
    out[#out + 1] = id
    out[#out + 1] = 1
  end
end
if woke then wake_workers() end
return out
