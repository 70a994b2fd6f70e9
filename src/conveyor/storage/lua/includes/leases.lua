-- Lease checks and ends (needs the queue include).
-- @include groups
-- The lease token of a delivery is a per-queue counter (HINCRBY META "lease") drawn once per
-- fetch, so every later delivery of a job carries a larger token and an older owner's token can
-- never match again (a fencing token).
-- Returns token, start time (ms), worker, and the start time's digits as stored (for writing
-- it on: a number argument is formatted again by each call).
local function parse_lease(value)
  if not value then return nil end
  local token, started, worker = string.match(value, "^([^|]*)|([^|]*)|(.*)$")
  return token, tonumber(started), worker, started
end

local function owns(id, token)
  local held = parse_lease(redis.call("HGET", LEASES, id))
  return held ~= nil and held == token
end

-- Take jobs out of "active"; their hashes get the worker and start time of the ended delivery.
local function end_leases(ids)
  if #ids == 0 then return end
  local leases = redis.call("HMGET", LEASES, unpack(ids))
  for i, id in ipairs(ids) do
    local _, started, worker = parse_lease(leases[i])
    if started then redis.call("HSET", job_key(id), "started", started, "worker", worker) end
  end
  call_chunked("HDEL", LEASES, ids)
  call_chunked("ZREM", ACTIVE, ids)
  group_slots_free(ids)  -- flow control: the slots of their groups come back
end
