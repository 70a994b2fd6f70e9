-- Handing back jobs whose delivery stalled (the lease expired, or its worker died): shared by
-- recover_stalled and reclaim_worker (needs the queue, leases and finished includes first).
-- Each stall is counted on the job; past MAX_STALLS the job fails with reason
-- "stalled: <what happened> <n> times (<why>)".
-- Ends the leases, so the old owner can no longer complete the jobs (its token is refused).
-- Returns recovered, failed.
local function stall_jobs(ids, now, what, why)
  local recovered, failed = 0, 0
  for _, id in ipairs(ids) do
    local key = job_key(id)
    if redis.call("EXISTS", key) == 0 then  -- deleted by hand while running: forget it
      redis.call("HDEL", LEASES, id)
      redis.call("ZREM", ACTIVE, id)
    else
      end_leases({id})
      local stalls = redis.call("HINCRBY", key, "stalls", 1)
      if stalls > MAX_STALLS then
        move_to_failed(id, key, now, "stalled: " .. what .. " " .. stalls .. " times (" .. why .. ")")
        failed = failed + 1
      elseif move_to_wait(id, key, now) then
        emit("stalled", id, "stalls", stalls)
        recovered = recovered + 1
      else
        failed = failed + 1
      end
    end
  end
  if recovered > 0 then wake_workers() end
  return recovered, failed
end
