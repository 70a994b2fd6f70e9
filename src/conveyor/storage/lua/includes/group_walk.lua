--[[ A walk over the groups that have waiting jobs, one group at a time, for the reads and the
clean that page through every waiting job in bounded steps (needs the queue include). The index
(BASE.."gindex") is scored by waiting count, which changes as jobs come and go, so a plain rank
in it is no place to resume from: a place is (a waiting count, how many groups with exactly that
count come before it), the way search.lua's cursor stands in a state's set. A walk that deletes
jobs (clean) goes up by count, so a group it shrank falls behind it; one that reads (search) goes
down, in the listing's order. A group no other client changes during the walk is visited once;
one that changes meanwhile may be visited twice or missed. ]]

-- The group at a place of the walk, with its own place: (group, count, skip), or nil when the
-- walk is over. Groups with nothing waiting are not visited. (The place becomes a rank, by
-- ZCOUNT: a skiplist finds both in log time, where an offset into a score range is walked.)
local function group_at(count, skip, down)
  local key, rank, block, r = BASE .. "gindex", 0, 0, nil
  if down then
    if count ~= "+inf" then rank = redis.call("ZCOUNT", key, "(" .. count, "+inf") end
    if skip > 0 then block = redis.call("ZCOUNT", key, count, count) end
    rank = rank + math.min(skip, block)  -- (fewer there now: the next count's first)
    r = redis.call("ZREVRANGE", key, rank, rank, "WITHSCORES")
  else
    count = math.max(count, 1)
    rank = redis.call("ZCOUNT", key, "-inf", "(" .. count)
    if skip > 0 then block = redis.call("ZCOUNT", key, count, count) end
    rank = rank + math.min(skip, block)
    r = redis.call("ZRANGE", key, rank, rank, "WITHSCORES")
  end
  if #r == 0 or tonumber(r[2]) < 1 then return nil end
  local at = tonumber(r[2])
  if at ~= count then skip = 0 end  -- the first group with its count
  return r[1], at, skip
end

-- The place after group `g`, which was at (count, skip): past it if it still has that count.
local function group_next(g, count, skip)
  if tonumber(redis.call("ZSCORE", BASE .. "gindex", g)) == count then skip = skip + 1 end
  return count, skip
end
