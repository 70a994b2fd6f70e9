--[[ add_deduped: add one job under a dedup key (Dedupe.until_finished / throttle / debounce),
or return the job the key already holds.

KEYS and settings: see includes/queue.lua. The key's record: <base>dedupe:<key> (string: the
job id, with a TTL).
ARGV: id ("" = assign one), name, data (JSON text), opts (JSON text), attempts, priority,
      delay (ms), ttl (ms), mode ("until_finished", "throttle" or "debounce"), key,
      window (ms: debounce's delay; the key's lifetime for the others), key ttl (ms)
  until_finished: the key's job, while it waits, is delayed or runs, is returned;
  throttle: the key's job is returned as long as the record lives (the window);
  debounce: while the key's job is still delayed, its data is replaced and its run-at moved to
            now + window (the timer restarts); the job returned. A new job is delayed by window.
Returns {id, CODE_OK} (added), {id, CODE_DEDUPLICATED} (the existing job) or {id, CODE_EXISTS}
(a job with the id given exists).
Events: "added" (with "dedupe"), "deduplicated" (with "key" and "mode"; debounce: "run_at").
]]
-- @include queue

local mode, dedupe_key, window = ARGV[9], ARGV[10], tonumber(ARGV[11])
local record = BASE .. "dedupe:" .. dedupe_key
local existing = redis.call("GET", record)
if existing then
  local found = false
  if mode == "throttle" then
    found = true
  elseif mode == "until_finished" then
    if redis.call("HEXISTS", LEASES, existing) == 1 then
      found = true
    else
      local state = redis.call("HGET", job_key(existing), "state")
      found = state == "waiting" or state == "delayed"
    end
    if found then redis.call("PEXPIRE", record, ARGV[12]) end
  elseif redis.call("ZSCORE", DELAYED, existing) and redis.call("HEXISTS", LEASES, existing) == 0
  then
    -- debounce: the job has not started; the last add wins and the timer restarts.
    local run_at = now_ms() + window
    local jkey = job_key(existing)
    local before = redis.call("HMGET", jkey, "run_at", "expire_at")
    redis.call("HSET", jkey, "data", ARGV[3], "run_at", run_at)
    if before[1] and before[2] then  -- a ttl counts from the run-at: it moves with it
      redis.call("HSET", jkey, "expire_at", tonumber(before[2]) + run_at - tonumber(before[1]))
    end
    redis.call("ZADD", DELAYED, run_at, existing)
    redis.call("PEXPIRE", record, ARGV[12])
    emit("deduplicated", existing, "key", dedupe_key, "mode", mode, "run_at", run_at)
    return {existing, CODE_DEDUPLICATED}
  end
  if found then
    emit("deduplicated", existing, "key", dedupe_key, "mode", mode)
    return {existing, CODE_DEDUPLICATED}
  end
end

local now = now_ms()
local seq = redis.call("INCR", SEQ)
local id = ARGV[1]
if id == "" then
  id = tostring(seq)
  while redis.call("EXISTS", job_key(id)) == 1 do id = tostring(redis.call("INCR", SEQ)) end
elseif redis.call("EXISTS", job_key(id)) == 1 then
  return {id, CODE_EXISTS}
end
local key = job_key(id)
local attempts, priority = tonumber(ARGV[5]), tonumber(ARGV[6])
local delay, ttl = tonumber(ARGV[7]), tonumber(ARGV[8])
local score = wait_score(priority, seq)
local state, run_at = "waiting", nil
if delay > 0 then state, run_at = "delayed", now + delay end
redis.call("HSET", key, "name", ARGV[2], "data", ARGV[3], "score", score, "created", now,
  "state", state, "dedupe", dedupe_key)
if ARGV[4] ~= "{}" or attempts ~= 1 or priority ~= 0 then
  redis.call("HSET", key, "opts", ARGV[4], "attempts", attempts, "priority", priority)
end
if ttl > 0 then redis.call("HSET", key, "expire_at", (run_at or now) + ttl) end
if run_at then
  redis.call("HSET", key, "run_at", run_at)
  -- Idle workers sleep until the earliest due job; wake them if this one is earlier.
  local first = redis.call("ZRANGE", DELAYED, 0, 0, "WITHSCORES")[2]
  redis.call("ZADD", DELAYED, run_at, id)
  if not first or run_at < tonumber(first) then wake_workers() end
else
  redis.call("ZADD", WAIT, score, id)
  wake_workers()
end
redis.call("SET", record, id, "PX", ARGV[12])
emit("added", id, "state", state, "dedupe", dedupe_key)
return {id, CODE_OK}
