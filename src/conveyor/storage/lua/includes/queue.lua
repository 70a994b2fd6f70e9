--[[ Shared by every script (inlined by the loader where a script says "-- @include queue").
The other includes (metrics, leases, finished, requeue) hold helpers only some scripts need:
each helper a script defines costs it time on every call, so a script includes only its own.

Every script receives the same KEYS, built by storage/keys.py:
  KEYS[1]  queue base "<prefix>:{<queue>}:" (a job is base.."job:"..id, its log
                   base.."logs:"..id and its attempt history base.."errors:"..id)
  KEYS[2]  wait        zset  score = (PRIORITY_OFFSET - priority) * PRIORITY_BAND + sequence:
                             higher priority first, FIFO within one priority; new jobs of
                             priority 0 without a group wait in a list beside it instead
                             (BASE.."wait_list", see includes/waiting.lua)
  KEYS[3]  active      zset  score = lease deadline (ms, Redis time)
  KEYS[4]  delayed     zset  score = run-at (ms)
  KEYS[5]  completed   zset  score = finish time (ms)
  KEYS[6]  failed      zset  score = finish time (ms)
  KEYS[7]  meta        hash  paused flag and queue-level facts
  KEYS[8]  events      stream of transitions (capped)
  KEYS[9]  marker      zset  popped by idle workers (BZPOPMIN) to wake without polling
  KEYS[10] seq         counter for job ids and FIFO order
  KEYS[11] workers     zset  worker id -> last heartbeat (ms)
  KEYS[12] leases      hash  id of each active job -> "<token>|<started ms>|<worker id>"; a job
                             has an entry exactly while it is in "active" (its hash keeps the
                             state it had before: readers take "active" from here)
The client's settings are not arguments: the loader (storage/scripts.py) writes them into the
script as constants where "-- @settings" stands (EVENTS_MAX: events stream length;
KEEP_COMPLETED / KEEP_FAILED: how many finished jobs to keep, and _MS: for how long;
MAX_LOG_LINES; METRICS_TTL in seconds; LEASE_MS; MAX_STALLS; ALIVE_TTL_MS, ALIVE_GRACE_MS and
ALIVE_BEAT_MS: when a worker's silence means it is dead, see keep_alive.lua; EVENTS_MAX, only
ever a command's argument, is written as a string, see scripts.py). Each set of
settings is then its own script in Redis's cache, and a call carries only its own arguments
(ARGV): every argument and every decode costs Redis time on each call, and a single add is a
few dozen microseconds.
Where "-- @protocol" stands, the loader writes the return codes (CODE_OK, CODE_NOT_FOUND,
CODE_LEASE_LOST, ...) and the numbers Lua and Python share (PRIORITY_BAND, PRIORITY_OFFSET,
DATA_LOSS_TTL_SECONDS), all defined once in storage/protocol.py: a script returns a code by
its name, never as a bare number.
]]
local K = KEYS  -- (a global: read once)
local BASE, WAIT, ACTIVE, DELAYED = K[1], K[2], K[3], K[4]
local COMPLETED, FAILED, META, EVENTS = K[5], K[6], K[7], K[8]
local MARKER, SEQ, WORKERS, LEASES = K[9], K[10], K[11], K[12]
-- A flow's parents waiting for their children (zset, score = creation ms): a key of the queue's
-- slot that not every script needs, so it is named here rather than passed in KEYS.
local WAITING_CHILDREN = BASE .. "waiting_children"
local WAIT_LIST = BASE .. "wait_list"
-- @settings
-- @protocol

local function job_key(id) return BASE .. "job:" .. id end

-- A job's score in the wait set (KEYS[2]): higher priority first, FIFO within one priority.
local function wait_score(priority, seq)
  return (PRIORITY_OFFSET - priority) * PRIORITY_BAND + seq
end

local function now_ms()
  local t = redis.call("TIME")
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Returns the entry's id ("<ms>-<n>").
local function emit(event, id, ...)
  return redis.call("XADD", EVENTS, "MAXLEN", "~", EVENTS_MAX, "*", "event", event, "id", id, ...)
end

-- One stream entry for the same transition of many jobs (the jobs of one fetch, a bulk add): the
-- field "ids" holds a JSON array of job ids. Readers expand it into one event per job.
local function emit_many(event, ids, ...)
  if #ids == 1 then
    emit(event, ids[1], ...)
  elseif #ids > 1 then
    redis.call("XADD", EVENTS, "MAXLEN", "~", EVENTS_MAX, "*", "event", event,
      "ids", cjson.encode(ids), ...)
  end
end

-- (Arguments of redis.call as strings where they can be: Redis formats a number argument on
-- every call, about a microsecond each, a twentieth of a single add.)
local function wake_workers()
  redis.call("ZADD", MARKER, "0", "1")
end

-- Variadic commands take their arguments in chunks that stay well under Lua's stack limit.
local function call_chunked(command, key, values)
  for i = 1, #values, 4000 do
    if key then
      redis.call(command, key, unpack(values, i, math.min(i + 3999, #values)))
    else
      redis.call(command, unpack(values, i, math.min(i + 3999, #values)))
    end
  end
end

local function logs_key(id) return BASE .. "logs:" .. id end
local function errors_key(id) return BASE .. "errors:" .. id end
