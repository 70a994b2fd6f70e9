--[[ Flow control: the groups of a queue (needs the queue include). Keys, all in the queue's slot:
  BASE.."flow"      hash  queue-wide flow control: rate_n, rate_ms (the queue's rate limit),
                          hold (ms: the jobs without a group are held by RateLimited
                          until then; "" sleeps in gsleep until then), d_conc, d_rate_n,
                          d_rate_ms, d_weight, d_max (the group defaults), waiting (grouped
                          jobs waiting, all groups), turn (round-robin counter)
  BASE.."rate"      zset  start times of the queue's sliding rate window (PEXPIRE'd)
  BASE.."gready"    zset  groups that may have a job handed out, scored by turn (round robin)
  BASE.."gsleep"    zset  groups held back by their rate limit or a hold, scored by wake time
                          ("": the jobs without a group, held by a RateLimited)
  BASE.."gindex"    zset  every group with jobs, active jobs or settings, scored by waiting
  BASE.."gactive"   hash  id of each active grouped job -> its group
  BASE.."g:"..g     hash  a group: active, deficit, hold and its overrides conc, rate_n,
                          rate_ms, weight, max, paused (gone when the group is idle and has
                          no overrides)
  BASE.."gw:"..g    zset  a group's waiting jobs, scored like the wait set
  BASE.."gr:"..g    zset  start times of a group's sliding rate window (PEXPIRE'd)
META "flow" is set while any of this can hold a job back: fetch.lua takes its flow-control
path only then, so a queue that uses none of it pays one HMGET field per fetch. ]]

local group_defaults  -- the defaults, read once per script call (by the first group_conf)

local function group_conf(g)
  local f = redis.call("HMGET", BASE .. "g:" .. g, "active", "paused", "hold", "conc", "rate_n",
    "rate_ms", "weight", "max", "deficit")
  local d = group_defaults
  if not d then
    d = redis.call("HMGET", BASE .. "flow", "d_conc", "d_rate_n", "d_rate_ms", "d_weight",
      "d_max")
    group_defaults = d
  end
  return {
    active = tonumber(f[1]) or 0, paused = f[2] == "1", hold = tonumber(f[3]) or 0,
    conc = tonumber(f[4] or d[1]) or 0, rate_n = tonumber(f[5] or d[2]) or 0,
    rate_ms = tonumber(f[6] or d[3]) or 0, weight = tonumber(f[7] or d[4]) or 1,
    max = tonumber(f[8] or d[5]) or 0, deficit = tonumber(f[9]),
  }
end

-- Put a group in the round robin (at the back) if it may have a job handed out now; a group
-- held back by its rate limit stays asleep (fetch.lua wakes it), one at its concurrency limit
-- comes back when a lease ends.
local function group_ready(g, now, conf)
  if redis.call("ZSCORE", BASE .. "gready", g) then return end  -- in it already
  conf = conf or group_conf(g)
  if conf.paused or redis.call("ZSCORE", BASE .. "gsleep", g) then return end
  if conf.hold > now then
    redis.call("ZADD", BASE .. "gsleep", conf.hold, g)
  elseif conf.conc == 0 or conf.active < conf.conc then
    if redis.call("ZCARD", BASE .. "gw:" .. g) == 0 then return end
    local turn = redis.call("HINCRBY", BASE .. "flow", "turn", 1)
    if redis.call("ZADD", BASE .. "gready", "NX", turn, g) == 1 then wake_workers() end
  else
    return
  end
  redis.call("HSET", META, "flow", "1")
end

-- A group with nothing waiting and nothing active leaves no key behind (its overrides stay).
-- `idle`: the caller knows it is (then an entry it may still have in the round robin or among
-- the sleepers is left to fetch.lua, which drops it when it comes round).
local function group_tidy(g, idle)
  local key = BASE .. "g:" .. g
  if not idle then
    if redis.call("EXISTS", BASE .. "gw:" .. g) == 1 then return end
    if (tonumber(redis.call("HGET", key, "active")) or 0) > 0 then return end
    redis.call("ZREM", BASE .. "gready", g)
    redis.call("ZREM", BASE .. "gsleep", g)
  end
  redis.call("HDEL", key, "active", "deficit", "hold")
  if redis.call("EXISTS", key) == 0 then
    redis.call("ZREM", BASE .. "gindex", g)
  else
    redis.call("ZADD", BASE .. "gindex", 0, g)
  end
end

-- A job joins its group's waiting jobs.
local function group_push(g, id, score, now)
  if redis.call("ZADD", BASE .. "gw:" .. g, score, id) == 1 then
    redis.call("ZINCRBY", BASE .. "gindex", 1, g)
    redis.call("HINCRBY", BASE .. "flow", "waiting", 1)
  end
  group_ready(g, now)
end

-- Waiting jobs leave their group (cancelled or removed, or handed out: n of them at once).
local function group_pop_count(g, n)
  if n <= 0 then return end
  redis.call("ZINCRBY", BASE .. "gindex", -n, g)
  redis.call("HINCRBY", BASE .. "flow", "waiting", -n)
end

local function group_unpush(g, id)
  if redis.call("ZREM", BASE .. "gw:" .. g, id) == 1 then
    group_pop_count(g, 1)
    group_tidy(g)
  end
end

-- Leases ended (completed, failed, retried, released, stalled, reclaimed, held): the slots of
-- their groups come back. One EXISTS when no grouped job is active.
local function group_slots_free(ids, now)
  if #ids == 0 or redis.call("EXISTS", BASE .. "gactive") == 0 then return end
  now = now or now_ms()
  local gactive = BASE .. "gactive"
  local groups = redis.call("HMGET", gactive, unpack(ids))
  local touched = {}
  local ended = {}
  for i, g in ipairs(groups) do
    if g then
      ended[#ended + 1] = ids[i]
      touched[g] = (touched[g] or 0) + 1
    end
  end
  if #ended == 0 then return end
  call_chunked("HDEL", gactive, ended)
  for g, count in pairs(touched) do
    local active = redis.call("HINCRBY", BASE .. "g:" .. g, "active", -count)
    if redis.call("EXISTS", BASE .. "gw:" .. g) == 1 then
      group_ready(g, now)  -- a slot is free: back in the round robin
    elseif active <= 0 then
      group_tidy(g, true)
    end
  end
end
