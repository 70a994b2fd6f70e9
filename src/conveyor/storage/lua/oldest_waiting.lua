--[[ oldest_waiting: when the waiting job that has waited longest became runnable (a read:
changes nothing), those in groups included.

KEYS and settings: see includes/queue.lua. Flow control's keys: see includes/groups.lua.
ARGV: the most priority bands of the wait set to look at, the most groups to look at.
The wait set is ordered by priority band, then FIFO: the head of each band is that band's
oldest job, so one ZRANGEBYSCORE per band finds them without a scan; the wait list's head is
its oldest (includes/waiting.lua). A group's waiting jobs are scored alike; its first job
stands for the group (one ZRANGE each: a group's lower bands are left out, they run after its
first job anyway). The groups looked at are those with the
most waiting (gindex's order), up to the cap, so the read stays bounded with any number of
groups.
Returns { now ms, the earliest "queued" (else "created") ms of those heads } (Redis time),
or an empty table when nothing waits.
]]
-- @include queue

local max_bands, max_groups = tonumber(ARGV[1]), tonumber(ARGV[2])
local earliest

local function consider(id)
  local f = redis.call("HMGET", job_key(id), "queued", "created")
  local t = tonumber(f[1]) or tonumber(f[2])
  if t and (not earliest or t < earliest) then earliest = t end
end

local listed = redis.call("LINDEX", WAIT_LIST, 0)
if listed then consider(listed) end
local head = redis.call("ZRANGE", WAIT, 0, 0, "WITHSCORES")
local bands = 0
while head[1] and bands < max_bands do
  consider(head[1])
  bands = bands + 1
  local next_band = (math.floor(tonumber(head[2]) / PRIORITY_BAND) + 1) * PRIORITY_BAND
  head = redis.call("ZRANGEBYSCORE", WAIT, next_band, "+inf", "WITHSCORES", "LIMIT", 0, 1)
end

if (tonumber(redis.call("HGET", BASE .. "flow", "waiting")) or 0) > 0 then
  local groups = redis.call("ZREVRANGEBYSCORE", BASE .. "gindex", "+inf", 1, "LIMIT", 0,
    max_groups)
  for i = 1, #groups do
    local first = redis.call("ZRANGE", BASE .. "gw:" .. groups[i], 0, 0)[1]
    if first then consider(first) end
  end
end

if not earliest then return {} end
return { now_ms(), earliest }
