--[[ add_flow: add the jobs of a flow that live on this queue (one call per queue and depth:
every job is added after its parent). See conveyor/workflows.

KEYS and settings: see includes/queue.lua.
ARGV[1] JSON array of jobs, each {"a": [id, name, data(, options...)] as add_job takes one
        (id always given), "wf": its place in the flow (JSON text) or absent for the root,
        "k": the refs "queue|id" of its children, or absent for a job without any}
ARGV[2] "first" for the call that adds the root (nothing is added if the root exists), or
        "more" (a job that exists is left as it is: a repeat after a crash adds only the rest)
ARGV[3] the flow's adds still to make after this call (JSON text, owed by the root until
        the producer, or a worker after a crash, has made them), or "" for none
A job with children waits in "waiting-children" with "pending" = their number and a field
"p:<ref>" per child (release_parent removes them), and "kids" listing them.
Returns {CODE_OK, jobs added}, or {CODE_EXISTS, id} when ("first") a job of the call exists:
then nothing was added.
Events: "added" per job.
]]
-- @include queue
-- @include workflow

local jobs = cjson.decode(ARGV[1])
local root = jobs[1].a[1]
if ARGV[2] == "first" then
  -- nothing is added if a job of this call exists (one that exists already would never report
  -- to its parent); the producer checked the other calls' chosen ids
  for i = 1, #jobs do
    if redis.call("EXISTS", job_key(jobs[i].a[1])) == 1 then return {CODE_EXISTS, jobs[i].a[1]} end
  end
end
local now = now_ms()
local n = #jobs
local first_seq = redis.call("INCRBY", SEQ, n) - n
local added = 0
for i = 1, n do
  local job = jobs[i]
  local id = job.a[1]
  local key = job_key(id)
  if redis.call("EXISTS", key) == 0 then
    local kids = job.k
    local wf = job.wf
    if wf == cjson.null then wf = nil end
    if kids and kids ~= cjson.null and #kids > 0 then
      wf_write_job(id, job.a, first_seq + i, now, "waiting-children", wf)
      local fields = {}
      for _, ref in ipairs(kids) do
        fields[#fields + 1] = "p:" .. ref
        fields[#fields + 1] = 1
      end
      call_chunked("HSET", key, fields)
      redis.call("HSET", key, "pending", #kids, "kids", cjson.encode(kids))
    else
      wf_write_job(id, job.a, first_seq + i, now, "waiting", wf)
    end
    added = added + 1
  end
end
if ARGV[3] ~= "" then redis.call("HSET", OWED, "a:" .. root, ARGV[3]) end
if added > 0 then wake_workers() end
return {CODE_OK, added}
