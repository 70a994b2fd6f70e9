--[[ promote: move delayed jobs to waiting now, ahead of their run-at time.

KEYS and settings: see includes/queue.lua. Arguments and return values: see includes/requeue.lua.
Events: "waiting" with reason "promoted" for each job.
]]
-- @include queue
-- @include requeue

return requeue(DELAYED, "promoted", function() end)
