--[[ list_waiting: a page of the waiting jobs, those in groups included (a read: changes
nothing).

KEYS and settings: see includes/queue.lua. Flow control's keys: see includes/groups.lua.
ARGV: first rank, last rank (inclusive; negative counts from the end, as ZRANGE's), "1" for
newest first (else oldest first).
The listing: the jobs of the wait set, then each group's waiting jobs, the group with the most
first (ties by name, last first: the index's order). Within each part, oldest first is the order
they run in; newest first is its reverse. Its length is counts()'s "waiting": the wait set's
size plus the flow hash's "waiting". Pages are stable while the queue does not change; a deep
page walks the group index to its offset (by the counts the index holds, a chunk at a time),
never a group's jobs before the page.
Returns the ids of the page.
]]
-- @include queue

local start, stop, newest = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3] == "1"
local out = {}

local function take(key, from, to)
  local part
  if newest then
    part = redis.call("ZREVRANGE", key, from, to)
  else
    part = redis.call("ZRANGE", key, from, to)
  end
  for i = 1, #part do out[#out + 1] = part[i] end
end

local offset = redis.call("ZCARD", WAIT)  -- the listing's rank of the next part's first job
local grouped = tonumber(redis.call("HGET", BASE .. "flow", "waiting")) or 0
if start < 0 or stop < 0 then
  local total = offset + math.max(grouped, 0)
  if start < 0 then start = math.max(total + start, 0) end
  if stop < 0 then stop = total + stop end
end
if start > stop then return out end
if start < offset then take(WAIT, start, math.min(stop, offset - 1)) end
if stop < offset or grouped <= 0 then return out end
local chunk, seen = 500, 0
while offset <= stop do
  local groups = redis.call("ZREVRANGEBYSCORE", BASE .. "gindex", "+inf", 1, "WITHSCORES",
    "LIMIT", seen, chunk)
  for i = 1, #groups, 2 do
    local waiting = tonumber(groups[i + 1])
    if offset + waiting > start then
      take(BASE .. "gw:" .. groups[i], math.max(start - offset, 0),
        math.min(stop - offset, waiting - 1))
    end
    offset = offset + waiting
    if offset > stop then break end
  end
  if #groups < 2 * chunk then break end
  seen = seen + chunk
end
return out
