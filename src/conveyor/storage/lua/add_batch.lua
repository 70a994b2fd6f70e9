--[[ add_batch: create a batch and add its jobs, atomically; or add jobs to a batch that exists
(job.add_to_batch). See conveyor/workflows.

KEYS and settings: see includes/queue.lua.
ARGV[1] batch id  ARGV[2] "new" or "grow"
ARGV[3] callbacks (JSON object kind -> [queue, name, data JSON text, options JSON]; "new" only)
ARGV[4] JSON array of jobs, each as add_job takes one ([id, name, data(, options...)])
The batch hash (keys.batch): total, pending, completed, failed, state ("running", then
"complete" or "success" when every job ran, "success" when none failed for good), "cb:<kind>"
its callbacks, "p:<job id>" each job still pending. An empty new batch is complete at once
(its callbacks are owed at once).
Returns {CODE_OK, ids...}; CODE_EXISTS when the batch or one of the job ids exists (new; when
growing, jobs whose ids exist are skipped);
CODE_NOT_FOUND when the batch to grow does not exist; CODE_WRONG_STATE when it has finished.
Events: "added" per job.
]]
-- @include queue
-- @include workflow
-- @include batch

local batch_id, mode = ARGV[1], ARGV[2]
local bkey = BASE .. "batch:" .. batch_id
local jobs = cjson.decode(ARGV[4])
local n = #jobs
if mode == "new" then
  if redis.call("EXISTS", bkey) == 1 then return {CODE_EXISTS} end
else
  local state = redis.call("HGET", bkey, "state")
  if not state then return {CODE_NOT_FOUND} end
  if state ~= "running" then return {CODE_WRONG_STATE} end
end
-- A new batch refuses ids that exist; growing skips them (a handler run again after a crash
-- or a retry adds the same ids, and must not add its jobs twice).
local skip = {}
for i = 1, n do
  if jobs[i][1] ~= "" and redis.call("EXISTS", job_key(jobs[i][1])) == 1 then
    if mode == "new" then return {CODE_EXISTS, jobs[i][1]} end
    skip[i] = true
  end
end
local now = now_ms()
local first_seq = redis.call("INCRBY", SEQ, n) - n
local wf = cjson.encode({b = batch_id})
local out, pending, added = {CODE_OK}, {}, 0
for i = 1, n do
  local id = jobs[i][1]
  if not skip[i] then
    id = wf_job_id(id, first_seq + i)
    wf_write_job(id, jobs[i], first_seq + i, now, "waiting", wf)
    pending[#pending + 1] = "p:" .. id
    pending[#pending + 1] = 1
    added = added + 1
  end
  out[#out + 1] = id
end
n = added
if mode == "new" then
  redis.call("HSET", bkey, "total", 0, "pending", 0, "completed", 0, "failed", 0,
    "state", "running", "created", now)
  for kind, spec in pairs(cjson.decode(ARGV[3])) do
    redis.call("HSET", bkey, "cb:" .. kind, cjson.encode(spec))
  end
end
if n > 0 then
  call_chunked("HSET", bkey, pending)
  redis.call("HINCRBY", bkey, "total", n)
  redis.call("HINCRBY", bkey, "pending", n)
  wake_workers()
elseif mode == "new" then
  batch_check_done(batch_id, bkey)
end
return out
