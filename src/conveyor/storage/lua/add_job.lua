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
-- @include add

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
  -- entry if the clock stepped back): it serves as the creation time and saves a call. (Kept as
  -- the entry's digits: a number would cost a conversion here and a formatting in HSET.)
  local now = string.match(emit("added", id, "state", "waiting"), "^%d+")
  -- (A score is stored only for an id of its own: the list needs none, a retry reads it.)
  local stored = id ~= tostring(seq) and wait_score(0, seq) or nil
  write_job(job_key(id), ARGV[2], ARGV[3], stored, now, "waiting", "{}", 1, 0)
  redis.call("RPUSH", WAIT_LIST, id)  -- (waits in the list: see includes/waiting.lua)
  wake_workers()
  return {id, CODE_OK}
end

-- (Flow control's helpers and the placement of many jobs are defined only past the single-job
-- path, which never needs them: each function a script defines costs it time on every call.)
-- @include groups
-- @include placement

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
  local full = groups_full(adding)
  if full then return full end
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
local out = {}
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
    add_new_job(id, key, name, data, seq, now, opts, attempts, priority, delay, ttl, group)
  end
end
placed()
return out
