--[[ fetch: promote due delayed jobs, then lease up to N waiting jobs to a worker.

KEYS and settings: see includes/queue.lua.
ARGV[1] worker id   ARGV[2] max jobs N
Returns {header, then 11 fields per job:
         id, token, name, data, opts, attempts, made, stalls, priority, created, progress}
  header   name, value pairs of the fields not at their default (FetchReply in
           storage/protocol.py, which parses this reply, names them and their defaults):
    paused       true (1 in the reply): the queue is paused (nothing handed out)
    next_due_ms  ms until the earliest delayed job is due when fewer than N jobs were handed
                 out (the worker sleeps until then); flow control: or until the earliest group
                 held back (or the jobs without a group, held by a RateLimited) may run
    reclaimed    true: this worker was taken for dead (reclaim_worker); nothing handed out
    limited_ms   flow control: the queue's rate limit lets no job out for this many ms (the
                 worker leaves the queue alone until then)
All jobs of one fetch share one lease token ("<n>@<worker>", n from the queue's lease
counter); the lease
("<token>|<now>|<worker>") goes to the leases hash and the deadline to "active".
Jobs whose ttl passed before they started are failed with reason "expired" instead; waiting
ids without a job hash (deleted under the queue's feet) are dropped.
Events: "waiting" for the promoted jobs, "active" for the leased ones (one entry per fetch),
"failed" for expired ones.
]]
-- @include queue
-- @include finished
-- @include waiting
-- @include flow_fetch

local worker, want = ARGV[1], tonumber(ARGV[2])
local now = now_ms()

-- A worker taken for dead may still have a fetch in flight (sent before it froze, queued
-- behind its idle wait): it leases nothing, and the wake-up its wait took goes to the others.
if redis.call("EXISTS", BASE .. "reclaimed:" .. worker) == 1 then
  if count_waiting() > 0 then wake_workers() end
  return {{"reclaimed", true}}
end

-- The earliest delayed job first: when it is not due yet (the common case), nothing is promoted
-- and its due time is already known for the reply.
local earliest = redis.call("ZRANGE", DELAYED, 0, 0, "WITHSCORES")[2]
local due = {}
if earliest and tonumber(earliest) <= now then
  due = redis.call("ZRANGEBYSCORE", DELAYED, "-inf", now, "LIMIT", 0, 1000)
  earliest = nil  -- read again below, after the promotion
end
if #due > 0 then
  call_chunked("ZREM", DELAYED, due)
  local promoted = {}
  for _, id in ipairs(due) do
    if move_to_wait(id, job_key(id), now) then promoted[#promoted + 1] = id end
  end
  emit_many("waiting", promoted)
end

local flags = redis.call("HMGET", META, "paused", "flow")
if flags[1] == "1" then
  return {{"paused", true}}
end

local header = {}
local function tell(name, value)
  header[#header + 1] = name
  header[#header + 1] = value
end
local out = {header}
-- Flow control (rate limits, groups: see includes/flow_fetch.lua) only where it is in use.
local popped, flow, queue_limit, sleeper_ms
if flags[2] then
  popped, flow, queue_limit, sleeper_ms = flow_take(want, now, tell)
else
  popped = pop_waiting(want)
end
local leased, deadlines, leases = {}, {}, {}
if #popped > 0 then
  -- The worker id in the token keeps it unique even if a failover rolled the counter back.
  local token = redis.call("HINCRBY", META, "lease", 1) .. "@" .. worker
  local lease = token .. "|" .. now .. "|" .. worker
  local deadline = tostring(now + LEASE_MS)  -- (formatted once, not by each job's ZADD)
  for _, id in ipairs(popped) do
    local key = job_key(id)
    local f = redis.call("HMGET", key, "name", "data", "opts", "attempts", "made", "stalls",
      "priority", "created", "progress", "expire_at", "queued")
    local expire_at = tonumber(f[10])
    if not f[1] and not f[2] and not f[8] then
      -- no job hash: nothing to run, nothing to record
    elseif expire_at and expire_at < now then
      move_to_failed(id, key, now, "expired: not started within its ttl")
    else
      -- The ttl is about starting in time: once started, retries and hand-backs keep the job.
      if expire_at then redis.call("HDEL", key, "expire_at") end
      leased[#leased + 1] = id
      leases[#leases + 1] = id
      leases[#leases + 1] = lease
      deadlines[#deadlines + 1] = deadline
      deadlines[#deadlines + 1] = id
      record_duration("wait", now - (tonumber(f[11]) or tonumber(f[8]) or now))
      local n = #out
      out[n + 1] = id
      out[n + 2] = token
      for j = 1, 9 do out[n + 2 + j] = f[j] end
    end
  end
  if #leased > 0 then
    call_chunked("ZADD", ACTIVE, deadlines)
    call_chunked("HSET", LEASES, leases)
    emit_many("active", leased, "worker", worker)
  end
  if flags[2] then flow_started(leased, flow, queue_limit, token, now) end
end

-- Popping fewer than asked took every waiting job; otherwise more may be waiting (beyond this
-- fetch): make sure a worker wakes for it, this one included.
if #popped >= want
    and (flags[2] and redis.call("ZCARD", BASE .. "gready") or count_waiting()) > 0 then
  wake_workers()
elseif #leased < want then
  if #due > 0 then earliest = redis.call("ZRANGE", DELAYED, 0, 0, "WITHSCORES")[2] end
  local next_due = earliest and math.max(tonumber(earliest) - now, 0)
  if sleeper_ms and (not next_due or sleeper_ms < next_due) then next_due = sleeper_ms end
  if next_due then tell("next_due_ms", next_due) end
end
flush_metrics(now)
return out
