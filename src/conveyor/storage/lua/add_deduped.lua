--[[ add_deduped: add one job under a dedup key (Dedupe.until_finished / throttle / debounce),
or return the job the key already holds.

KEYS and settings: see includes/queue.lua. The key's record: <base>dedupe:<key> (string: the
job id, with a TTL).
ARGV: id ("" = assign one), name, data (JSON text), opts (JSON text), attempts, priority,
      delay (ms), ttl (ms), mode ("until_finished", "throttle" or "debounce"), key,
      window (ms: debounce's delay; the key's lifetime for the others), key ttl (ms)[, group]
  (flow control: a new job with a group waits in its group, as add_job.lua places it; a job
  found is found whatever its group)
  until_finished: the key's job, while it waits, is delayed or runs, is returned;
  throttle: the key's job is returned as long as the record lives (the window);
  debounce: while the key's job is still delayed, its data is replaced and its run-at moved to
            now + window (the timer restarts); the job returned. A new job is delayed by window.
Returns {id, CODE_OK} (added), {id, CODE_DEDUPLICATED} (the existing job), {id, CODE_EXISTS}
(a job with the id given exists) or {CODE_GROUP_FULL, group, max size} (nothing added).
Events: "added" (with "dedupe"), "deduplicated" (with "key" and "mode"; debounce: "run_at").
]]
-- @include queue
-- @include add
-- @include groups
-- @include placement

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

local group, delay = ARGV[13], tonumber(ARGV[7])
if group == "" then group = nil end
if group and delay == 0 then
  local full = groups_full({[group] = 1})
  if full then return full end
end
local now = now_ms()
local seq = redis.call("INCR", SEQ)
local id = ARGV[1]
if id == "" then
  id = free_id(seq, true, nil)
elseif redis.call("EXISTS", job_key(id)) == 1 then
  return {id, CODE_EXISTS}
end
local key = job_key(id)
add_new_job(id, key, ARGV[2], ARGV[3], seq, now, ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]),
  delay, tonumber(ARGV[8]), group)
redis.call("HSET", key, "dedupe", dedupe_key)
redis.call("SET", record, id, "PX", ARGV[12])
placed("dedupe", dedupe_key)
return {id, CODE_OK}
