--[[ keep_alive: a worker's liveness beat, sent from a thread of its own (worker/liveness.py) so
that a handler blocking the event loop cannot stop it; and the workers whose beats are late.

KEYS and settings: see includes/queue.lua.
ARGV[1] worker id
ARGV[2] "first": the worker's first beat; "again": a later one (its entry must still be there:
        a missing one means another worker reclaimed it while it lived, or Redis lost data);
        "stop": the worker is leaving (remove its entry)
Returns {revived, late, gap}: revived is true when ARGV[2] is "again" and the entry was gone
(counted in META "revived_workers"); late is a flat list of worker id, ms since its last beat, for the
workers whose last beat is more than ALIVE_GRACE_MS older than this worker's previous beat
(less half a beat, ALIVE_BEAT_MS / 2); gap is the ms since this worker's previous beat (false when
it had none): a caller whose own beats were held up does not judge others by their connections.
Measuring against the caller's own previous beat, not against now, keeps a stall everybody
shared (Redis busy or paused, the caller itself frozen) from making every other worker late.
The entries live in the zset BASE.."alive" (worker id -> last beat, ms Redis time).
Events: none.
]]
-- @include queue

local id, state = ARGV[1], ARGV[2]
local alive = BASE .. "alive"
if state == "stop" then
  redis.call("ZREM", alive, id)
  return {false, {}, false}
end
local now = now_ms()
local previous = tonumber(redis.call("ZSCORE", alive, id))
redis.call("ZADD", alive, now, id)
if not previous then redis.call("DEL", BASE .. "reclaimed:" .. id) end  -- it may fetch again
local revived = false
if state == "again" and not previous then
  revived = true
  redis.call("HINCRBY", META, "revived_workers", 1)
end
local late = {}
if previous then
  -- Half a beat of the caller's own lateness is forgiven: a worker that died is noticed
  -- sooner, and a stall everybody shared still leaves a quarter-beat of margin.
  local cutoff = previous + ALIVE_BEAT_MS / 2 - ALIVE_GRACE_MS
  local found = redis.call("ZRANGEBYSCORE", alive, "-inf", "(" .. cutoff,
    "WITHSCORES", "LIMIT", 0, 100)
  for i = 1, #found, 2 do
    late[#late + 1] = found[i]
    late[#late + 1] = now - tonumber(found[i + 1])
  end
end
return {revived, late, previous and now - previous or false}
