--[[ extend_leases: renew the leases of a worker's running jobs in one call.

KEYS and settings: see includes/queue.lua.
ARGV[1] number of jobs N, then N pairs: id, lease token
Returns {lost ids, ids to cancel}: lost leases (expired and taken over, or the job was
removed), and jobs someone asked to cancel (cancel.lua), which the worker stops.
Events: none (a renewal is not a transition).
]]
-- @include queue
-- @include leases

local count = tonumber(ARGV[1])
local deadline = now_ms() + LEASE_MS
local lost, cancel = {}, {}
for i = 0, count - 1 do
  local id, token = ARGV[2 + i * 2], ARGV[3 + i * 2]
  if owns(id, token) then
    redis.call("ZADD", ACTIVE, "XX", deadline, id)
    if redis.call("HGET", job_key(id), "cancel") then cancel[#cancel + 1] = id end
  else
    lost[#lost + 1] = id
  end
end
return {lost, cancel}
