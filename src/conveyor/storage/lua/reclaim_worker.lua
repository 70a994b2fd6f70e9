--[[ reclaim_worker: a worker is dead; hand every job it holds back to waiting (or fail it as
stalled), in one step.

KEYS and settings: see includes/queue.lua.
ARGV[1] worker id
ARGV[2] how long its beats must have been silent (ms), checked here again: ALIVE_GRACE_MS when
        the caller saw none of its connections left, ALIVE_TTL_MS otherwise
Returns {CODE_OK, recovered, failed}; or {CODE_NOT_FOUND} (and nothing changed) when the
worker beat again meanwhile or is not listed (another worker reclaimed it first), so two
workers reclaiming at once hand each job back once.
Each job counts a stall, as in recover_stalled; the ended leases fence the dead worker off (a
late completion of its token is refused with LEASE_LOST); BASE.."reclaimed:"..id (kept a
lease period, or until the worker beats again) makes fetch.lua lease it nothing. META
"reclaimed_workers" counts the reclaims.
Events: "stalled" for each job handed back, "failed" for each job failed as stalled.
]]
-- @include queue
-- @include leases
-- @include finished
-- @include stall

local worker, silent_ms = ARGV[1], tonumber(ARGV[2])
local alive = BASE .. "alive"
local now = now_ms()
local last = tonumber(redis.call("ZSCORE", alive, worker))
if not last or now - last < silent_ms then
  return {CODE_NOT_FOUND}
end
redis.call("ZREM", alive, worker)
-- Until it beats again (keep_alive), fetches it sent before it froze lease it nothing.
redis.call("SET", BASE .. "reclaimed:" .. worker, now, "PX", LEASE_MS)
redis.call("HINCRBY", META, "reclaimed_workers", 1)
-- Only a dead worker's reclaim walks the leases: a rare event, and atomic this way.
local entries = redis.call("HGETALL", LEASES)
local held = {}
for i = 1, #entries, 2 do
  local _, _, owner = parse_lease(entries[i + 1])
  if owner == worker then held[#held + 1] = entries[i] end
end
local recovered, failed = stall_jobs(held, now, "its worker died",
  "killed, frozen or cut off")
flush_metrics(now)
return {CODE_OK, recovered, failed}
