--[[ Flow control's part of fetch.lua: which waiting jobs may be handed out now, under the
queue's rate limit or hold and the groups' concurrency, rate limits, holds and pauses, with
the groups served round robin weighted by deficit (deficit round robin: each turn a group may
have `weight` jobs handed out; a turn cut short by the fetch's size resumes at the next fetch).
Jobs without a group take part as one more member of the round robin (named "").
Needs the queue, waiting and groups includes. Keys: see includes/groups.lua. ]]

-- A sliding window of starts: how many more it allows now, and how many it holds.
local function window_room(key, n, per_ms, now)
  redis.call("ZREMRANGEBYSCORE", key, "-inf", now - per_ms)
  local used = redis.call("ZCARD", key)
  local room = n > used and n - used or 0
  return room, used
end

-- When the oldest start leaves the window (ms, Redis time); now + per_ms when it is empty.
local function window_frees_at(key, per_ms, now)
  local oldest = tonumber(redis.call("ZRANGE", key, 0, 0, "WITHSCORES")[2]) or now
  return oldest + per_ms
end

local function record_starts(key, ids, token, per_ms, now)
  local args = {}
  for i, id in ipairs(ids) do
    args[#args + 1] = now
    args[#args + 1] = token .. ":" .. id
  end
  call_chunked("ZADD", key, args)
  redis.call("PEXPIRE", key, per_ms)
end

-- Up to n of a group's waiting jobs (ids), and whether it has more. (One more than n is popped
-- and put back: that tells whether the group has more without another call, and a group of
-- one job, the commonest case with many groups, then costs one call here.)
local function pop_group(key, n)
  local jobs = redis.call("ZPOPMIN", key, n + 1)
  local more = #jobs > 2 * n
  if more then redis.call("ZADD", key, jobs[#jobs], jobs[#jobs - 1]) end
  local ids = {}
  for i = 1, math.min(#jobs / 2, n) do ids[i] = jobs[2 * i - 1] end
  return ids, more
end

--[[ Takes up to `want` jobs. Returns popped (their ids), the group
of each grouped one (or nil when none), the queue's limit (rate_n, rate_ms or nil) and when
the next group held back may run (ms, or nil). `tell` adds a reply header field. ]]
local function flow_take(want, now, tell)
  local FLOW, GREADY, GSLEEP = BASE .. "flow", BASE .. "gready", BASE .. "gsleep"
  local GINDEX = BASE .. "gindex"
  local q = redis.call("HMGET", FLOW, "hold", "rate_n", "rate_ms", "d_weight", "u_deficit")
  -- A RateLimited hold of the jobs without a group (rate_limited.lua) is kept by their member
  -- of the round robin ("") sleeping until it ends, as a held group does: the groups keep their
  -- turns, and the reply's next_due_ms tells the worker when the sleeper is due. The field
  -- stays until then for the readers (flow_state's held_until).
  local hold = tonumber(q[1])
  if hold and hold <= now then
    redis.call("HDEL", FLOW, "hold")
    hold = nil
  elseif hold and redis.call("ZADD", GSLEEP, "NX", hold, "") == 1 then
    redis.call("ZREM", GREADY, "")  -- (a hold written before it was kept this way)
  end
  local rate_n, rate_ms = tonumber(q[2]), tonumber(q[3])
  local queue_room = nil
  if rate_n then
    queue_room = window_room(BASE .. "rate", rate_n, rate_ms, now)
    if queue_room == 0 then
      tell("limited_ms", math.max(window_frees_at(BASE .. "rate", rate_ms, now) - now, 1))
      return {}, nil, nil, nil
    end
    if queue_room < want then want = queue_room end
  end
  local due = redis.call("ZRANGEBYSCORE", GSLEEP, "-inf", now, "LIMIT", 0, 1000)
  for _, g in ipairs(due) do
    redis.call("ZREM", GSLEEP, g)
    if g ~= "" then group_ready(g, now) end  -- (the jobs without a group: just below)
  end
  if not hold and count_waiting() > 0 and not redis.call("ZSCORE", GREADY, "") then
    redis.call("ZADD", GREADY, redis.call("HINCRBY", FLOW, "turn", 1), "")
  end

  -- taken: jobs handed out per group in this fetch (its counts are written after leasing).
  -- The front of the round robin is read a batch at a time: a group served goes to the back
  -- (a later turn than every group in the batch) or out, so the batch stays in ring order.
  local popped, group_of, asked, taken, confs = {}, {}, want, {}, {}
  local emptied, handed = {}, 0
  local visits = want + 100  -- a guard: every visit hands out a job or takes a group out
  local batch, at, alone = {}, 1, false
  -- Turns handed out in this fetch are counted here and written once, after the loop.
  local turn0 = tonumber(redis.call("HGET", FLOW, "turn")) or 0
  local turn = turn0
  while want > 0 and visits > 0 do
    visits = visits - 1
    if at > #batch then
      batch, at = redis.call("ZRANGE", GREADY, 0, want - 1), 1
      if #batch == 0 then break end
      -- The only member of the round robin: no one to be fair to, so its turn is not cut
      -- at its weight (a queue with a rate limit and no groups takes the whole fetch at once).
      alone = #batch == 1
    end
    local g = batch[at]
    at = at + 1
    local conf, src, dkey, dfield
    if g == "" then
      conf = {active = 0, paused = false, conc = 0, rate_n = 0, weight = tonumber(q[4]) or 1,
        deficit = tonumber(q[5])}
      dkey, dfield = FLOW, "u_deficit"
    else
      conf = confs[g] or group_conf(g)
      confs[g] = conf
      src, dkey, dfield = BASE .. "gw:" .. g, BASE .. "g:" .. g, "deficit"
    end
    local had_deficit = conf.deficit
    local deficit = had_deficit or conf.weight
    if alone then deficit = math.max(deficit, want) end
    local room = math.min(want, deficit)
    local before = taken[g] or 0
    local active = conf.active + before
    if conf.paused then room = 0 end
    if conf.conc > 0 then room = math.min(room, math.max(conf.conc - active, 0)) end
    local rate_key, used = nil, 0
    if conf.rate_n > 0 then
      rate_key = BASE .. "gr:" .. g
      used = before + select(2, window_room(rate_key, conf.rate_n, conf.rate_ms, now))
      room = math.min(room, math.max(conf.rate_n - used, 0))
    end
    local got, more = 0, nil
    if room > 0 then
      local ids
      if g == "" then
        ids = pop_waiting(room)
        more = #ids == room and count_waiting() > 0
      else
        ids, more = pop_group(src, room)
      end
      got = #ids
      for i = 1, got do
        popped[#popped + 1] = ids[i]
        if g ~= "" then group_of[ids[i]] = g end
      end
      if g ~= "" and got > 0 then
        redis.call("ZINCRBY", GINDEX, -got, g)
        handed = handed + got
      end
    end
    want, deficit = want - got, deficit - got
    taken[g] = before + got
    conf.deficit = nil
    if got < room or (room > 0 and not more)
        or (room == 0 and (g == "" and count_waiting() or redis.call("EXISTS", src)) == 0) then
      -- Nothing left: out of the round robin (it comes back with its next job).
      emptied[#emptied + 1] = g
      if had_deficit then redis.call("HDEL", dkey, dfield) end
      if g ~= "" and got == 0 then group_tidy(g) end
    elseif conf.paused or (conf.conc > 0 and active + got >= conf.conc) then
      -- Back when resumed, or when one of its leases ends.
      emptied[#emptied + 1] = g
      if had_deficit then redis.call("HDEL", dkey, dfield) end
    elseif conf.rate_n > 0 and used + got >= conf.rate_n then
      -- Asleep until its window frees (fetch wakes it).
      emptied[#emptied + 1] = g
      if had_deficit then redis.call("HDEL", dkey, dfield) end
      local wake = now + conf.rate_ms
      if got == 0 then wake = window_frees_at(rate_key, conf.rate_ms, now) end
      redis.call("ZADD", GSLEEP, wake, g)
    elseif deficit <= 0 then
      -- Its turn is over: to the back of the round robin.
      if had_deficit then redis.call("HDEL", dkey, dfield) end
      turn = turn + 1
      redis.call("ZADD", GREADY, "XX", turn, g)
    else
      -- The fetch is full mid-turn: the group keeps its place and the rest of its turn.
      redis.call("HSET", dkey, dfield, deficit)
      conf.deficit = deficit
    end
  end
  if turn > turn0 then redis.call("HSET", FLOW, "turn", turn) end
  if #emptied > 0 then call_chunked("ZREM", GREADY, emptied) end
  if handed > 0 then redis.call("HINCRBY", FLOW, "waiting", -handed) end

  if queue_room and asked - want >= queue_room then
    -- This fetch filled the queue's window: say how long it stays full.
    tell("limited_ms", math.max(window_frees_at(BASE .. "rate", rate_ms, now) - now, 1))
  end
  local sleeper = redis.call("ZRANGE", GSLEEP, 0, 0, "WITHSCORES")[2]
  if not hold and not rate_n and not sleeper and redis.call("EXISTS", GREADY) == 0 then
    redis.call("HDEL", META, "flow")  -- nothing can hold a job back now (see groups.lua)
  end
  local flow = nil
  if next(group_of) ~= nil then flow = {group_of = group_of, taken = taken, confs = confs} end
  return popped, flow, rate_n and {rate_n, rate_ms} or nil,
    sleeper and math.max(tonumber(sleeper) - now, 0) or nil
end

-- After leasing: record the starts in the rate windows and count the groups' active jobs.
-- `flow`: what flow_take says of the groups it took jobs from (or nil when none).
local function flow_started(leased, flow, queue_limit, token, now)
  if queue_limit and #leased > 0 then
    record_starts(BASE .. "rate", leased, token, queue_limit[2], now)
  end
  if not flow then return end
  local group_of = flow.group_of
  local by_group, pairs_ = {}, {}
  for _, id in ipairs(leased) do
    local g = group_of[id]
    if g then
      local ids = by_group[g]
      if not ids then
        ids = {}
        by_group[g] = ids
      end
      ids[#ids + 1] = id
      pairs_[#pairs_ + 1] = id
      pairs_[#pairs_ + 1] = g
    end
  end
  if #pairs_ > 0 then call_chunked("HSET", BASE .. "gactive", pairs_) end
  flow.taken[""] = nil  -- (jobs without a group: nothing to count)
  for g, count in pairs(flow.taken) do
    local ids = by_group[g]
    local conf = flow.confs[g]
    if ids then
      redis.call("HINCRBY", BASE .. "g:" .. g, "active", #ids)
      if conf.rate_n > 0 then record_starts(BASE .. "gr:" .. g, ids, token, conf.rate_ms, now) end
    end
    if count > 0 and (not ids or #ids < count) then
      -- Jobs popped but not started (expired) must not leave the group out of the round
      -- robin, nor leave its keys behind.
      conf.active = conf.active + (ids and #ids or 0)
      group_ready(g, now, conf)
      group_tidy(g)
    end
  end
end
