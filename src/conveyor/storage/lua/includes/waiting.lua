--[[ The jobs waiting without a group: the wait set (KEYS[2]) with the wait list spliced in at
WAIT_LIST_SCORE (needs the queue include).
A new job of priority 0 without a group, by far the commonest job, goes to the tail of the list
(WAIT_LIST): a list holds a job in a few bytes where a sorted set takes about a hundred (a
skiplist node, a dict entry and the member), and a push costs Redis less than a sorted insert.
Every other job waiting without a group is in the set, scored by priority and creation, jobs
of priority 0 back from a retry, a delay, a stall or a release included. The list's score is
the last of priority 0's band, so the waiting jobs run, and every reader sees them, in one
order: the set's members below that score (higher priorities, then priority 0's jobs that
came back), the list from its head, then the set's members above it (negative priorities). ]]

local WAIT_LIST_AT = string.format("%d", WAIT_LIST_SCORE)  -- (the digits Redis prints)

local function count_waiting()
  return redis.call("ZCARD", WAIT) + redis.call("LLEN", WAIT_LIST)
end

-- A new job waits: in the list if it can (see above), else in the set at `score`.
local function wait_new(id, priority, score)
  if priority == 0 then
    redis.call("RPUSH", WAIT_LIST, id)
  else
    redis.call("ZADD", WAIT, score, id)
  end
end

-- Takes up to n waiting jobs, in the order they run; returns their ids.
local function pop_waiting(n)
  local ids, from_set = {}, redis.call("ZPOPMIN", WAIT, n)
  local later  -- the index in from_set of the first job that runs after the list's
  for i = 1, #from_set, 2 do
    if tonumber(from_set[i + 1]) > WAIT_LIST_SCORE then
      later = i
      break
    end
    ids[#ids + 1] = from_set[i]
  end
  if #ids < n then
    local listed = redis.call("LPOP", WAIT_LIST, n - #ids)
    if listed then
      for i = 1, #listed do ids[#ids + 1] = listed[i] end
    end
  end
  if later then
    local back = {}  -- popped from the set but behind the list's jobs: back in the set
    for i = later, #from_set, 2 do
      if #ids < n then
        ids[#ids + 1] = from_set[i]
      else
        back[#back + 1] = from_set[i + 1]
        back[#back + 1] = from_set[i]
      end
    end
    if #back > 0 then call_chunked("ZADD", WAIT, back) end
  end
  return ids
end

-- Takes waiting jobs out of the set or the list. In the list, jobs that are its head (clean's
-- victims, oldest first) go by one LTRIM; a few others by LREM each, O(n) in the list a job
-- (read from the tail, where the newest are); more in one pass over the list instead.
local function unwait(ids)
  local listed = {}
  for _, id in ipairs(ids) do
    if redis.call("ZREM", WAIT, id) == 0 then listed[#listed + 1] = id end
  end
  if #listed == 0 then return end
  local head = redis.call("LRANGE", WAIT_LIST, 0, #listed - 1)
  local at_head = #head == #listed
  for i = 1, #head do
    if head[i] ~= listed[i] then
      at_head = false
      break
    end
  end
  if at_head then
    redis.call("LTRIM", WAIT_LIST, #listed, -1)
  elseif #listed <= 8 then
    for _, id in ipairs(listed) do redis.call("LREM", WAIT_LIST, -1, id) end
  else
    -- Round the list once, a chunk at a time from its head onto its tail (its order kept),
    -- leaving the jobs out.
    local drop = {}
    for _, id in ipairs(listed) do drop[id] = true end
    local left = redis.call("LLEN", WAIT_LIST)
    while left > 0 do
      local chunk = redis.call("LPOP", WAIT_LIST, math.min(left, 1000))
      left = left - #chunk
      local keep = {}
      for _, id in ipairs(chunk) do
        if not drop[id] then keep[#keep + 1] = id end
      end
      if #keep > 0 then redis.call("RPUSH", WAIT_LIST, unpack(keep)) end
    end
  end
end

-- The waiting jobs at ranks first..last (0-based, inclusive) of the order above, or with
-- `newest` of its reverse; and how many jobs wait. Each part is read by rank: a skiplist finds
-- a rank in log time, a list (a chain of packed nodes) in about n / 128 steps.
local function range_waiting(first, last, newest)
  local below = redis.call("ZCOUNT", WAIT, "-inf", "(" .. WAIT_LIST_AT)
  local listed = redis.call("LLEN", WAIT_LIST)
  local above = redis.call("ZCARD", WAIT) - below
  local total = below + listed + above
  local out, at = {}, 0
  local function part(length, read)
    local from, to = math.max(first - at, 0), math.min(last - at, length - 1)
    if from <= to then
      local ids = read(from, to)
      for i = 1, #ids do out[#out + 1] = ids[i] end
    end
    at = at + length
  end
  local function set_part(length, offset)
    part(length, function(from, to)
      return redis.call(newest and "ZREVRANGE" or "ZRANGE", WAIT, offset + from, offset + to)
    end)
  end
  local function list_part()
    part(listed, function(from, to)
      if not newest then return redis.call("LRANGE", WAIT_LIST, from, to) end
      local ids = redis.call("LRANGE", WAIT_LIST, listed - 1 - to, listed - 1 - from)
      local reversed = {}
      for i = #ids, 1, -1 do reversed[#reversed + 1] = ids[i] end
      return reversed
    end)
  end
  if newest then
    set_part(above, 0)
    list_part()
    set_part(below, above)
  else
    set_part(below, 0)
    list_part()
    set_part(above, below)
  end
  return out, total
end
