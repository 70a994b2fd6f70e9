--[[ list_waiting: a page of the waiting jobs, those in groups included (a read: changes
nothing).

KEYS and settings: see includes/queue.lua. Flow control's keys: see includes/groups.lua.
ARGV: first rank, last rank (inclusive; negative counts from the end, as ZRANGE's), "1" for
newest first (else oldest first).
The listing: the jobs waiting without a group (the wait set and list, see includes/waiting.lua),
then each group's waiting jobs, the group with the most first (ties by name, last first: the
index's order). Within each part, oldest first is the order they run in; newest first is its
reverse. Its length is counts()'s "waiting": the jobs without a group plus the flow hash's
"waiting". Pages are stable while the queue does not change; a deep page steps over the groups
before it by the counts the index holds, a run of equal counts at a time, never reading a
group's jobs before the page.
Returns the ids of the page.
]]
-- @include queue
-- @include waiting

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

local offset = count_waiting()  -- the listing's rank of the next part's first job
local grouped = tonumber(redis.call("HGET", BASE .. "flow", "waiting")) or 0
if start < 0 or stop < 0 then
  local total = offset + math.max(grouped, 0)
  if start < 0 then start = math.max(total + start, 0) end
  if stop < 0 then stop = total + stop end
end
if start > stop then return out end
if start < offset then out = range_waiting(start, math.min(stop, offset - 1), newest) end
if stop < offset or grouped <= 0 then return out end
-- The groups come in runs of equal counts (most first): a run before the page is stepped over
-- whole and the page entered at its group, by rank and ZCOUNT, each found in log time (a
-- queue's groups have few distinct counts: their sum is at most the jobs waiting in groups).
local GINDEX = BASE .. "gindex"
local seen = 0  -- the rank of the next group
while offset <= stop do
  local head = redis.call("ZREVRANGE", GINDEX, seen, seen, "WITHSCORES")
  local count = tonumber(head[2] or 0)
  if count < 1 then break end  -- (groups with nothing waiting rank last)
  local run_end = redis.call("ZCOUNT", GINDEX, count, "+inf")  -- past this count's run
  local left = run_end - seen
  if offset + count * left <= start then
    offset, seen = offset + count * left, run_end
  else
    local skip = math.max(math.floor((start - offset) / count), 0)
    offset, seen = offset + count * skip, seen + skip
    local needed = math.min(left - skip, math.floor((stop - offset) / count) + 1)
    local groups = redis.call("ZREVRANGE", GINDEX, seen, seen + needed - 1)
    for i = 1, #groups do
      take(BASE .. "gw:" .. groups[i], math.max(start - offset, 0),
        math.min(stop - offset, count - 1))
      offset = offset + count
    end
    seen = seen + #groups
    if #groups < needed then break end
  end
end
return out
