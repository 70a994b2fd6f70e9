--[[ Shared by the schedule scripts (job schedulers, see src/conveyor/schedules.py).

Keys, derived from KEYS[1] (so in the queue's slot):
  <base>schedules      zset  schedule id -> its next run (ms); +inf while paused or ended, so
                             the due ones are a ZRANGEBYSCORE -inf <now> LIMIT away however many
                             schedules there are
  <base>schedule:<id>  hash  def (JSON the client reads: timetable, misfire, add options),
                             the job template (name, data, opts, attempts, priority, ttl),
                             overlap ("0": skip a tick while the last job is not finished),
                             gen (changes with every upsert and resume: a client's plan made
                             from another definition is refused), paused, next_run, last_tick
                             (the last tick handled), last_run, last_job, runs, created, updated
]]
-- @include waiting
local SCHEDULES = BASE .. "schedules"
local function schedule_key(id) return BASE .. "schedule:" .. id end

-- Whether a schedule's previous job is still to run or running.
local function unfinished(job_id)
  if not job_id then return false end
  if redis.call("HEXISTS", LEASES, job_id) == 1 then return true end
  local state = redis.call("HGET", job_key(job_id), "state")
  return state == "waiting" or state == "delayed"
end

-- Adds the job of one run of a schedule, as add_job does for a job with these options
-- (fields at their defaults are left out of the hash). CODE_EXISTS if the job exists.
local function add_scheduled_job(key, schedule_id, job_id, now)
  local jkey = job_key(job_id)
  if redis.call("EXISTS", jkey) == 1 then return CODE_EXISTS end
  local t = redis.call("HMGET", key, "name", "data", "opts", "attempts", "priority", "ttl")
  local priority, ttl = tonumber(t[5]) or 0, tonumber(t[6]) or 0
  local seq = redis.call("INCR", SEQ)
  local score = wait_score(priority, seq)
  redis.call("HSET", jkey, "name", t[1], "data", t[2], "score", score, "created", now,
    "state", "waiting", "schedule", schedule_id)
  if t[3] ~= "{}" or t[4] ~= "1" or priority ~= 0 then
    redis.call("HSET", jkey, "opts", t[3], "attempts", t[4], "priority", priority)
  end
  if ttl > 0 then redis.call("HSET", jkey, "expire_at", now + ttl) end
  wait_new(job_id, priority, score)
  emit("added", job_id, "state", "waiting", "schedule", schedule_id)
  wake_workers()
  return CODE_OK
end

-- Stores the next run ("" = none: paused or ended).
local function set_next_run(key, id, next_run)
  if next_run == "" then
    redis.call("ZADD", SCHEDULES, "+inf", id)
  else
    redis.call("ZADD", SCHEDULES, next_run, id)
  end
  redis.call("HSET", key, "next_run", next_run)
end
