--[[ release: a stopping worker hands unfinished jobs back to waiting, exactly once.

KEYS and settings: see includes/queue.lua.
ARGV[1] number of jobs N, then N pairs: id, lease token
Returns the number of jobs handed back (jobs whose lease was already lost are skipped).
The attempt is not counted: the job did not fail, its worker stopped.
Events: "released" for each job.
]]
-- @include queue
-- @include leases
-- @include finished

local now = now_ms()

local count, released = tonumber(ARGV[1]), 0
for i = 0, count - 1 do
  local id, token = ARGV[2 + i * 2], ARGV[3 + i * 2]
  if owns(id, token) then
    end_leases({id})
    if move_to_wait(id, job_key(id), now) then
      emit("released", id)
      released = released + 1
    end
  end
end
if released > 0 then wake_workers() end
return released
