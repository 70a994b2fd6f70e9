--[[ search: read one slice of a state's set, from a cursor, and keep the jobs that match.

KEYS and settings: see includes/queue.lua. Changes nothing (a read the dashboard's search
repeats, slice after slice, so that no single call holds Redis for long).
ARGV: the state (waiting, active, delayed, completed, failed or waiting-children), the cursor's
score (as Redis prints it, or "+inf"/"-inf"), how many members at exactly that score were read
already, how many members to read at most, "1" for newest first (else oldest first), a job name
to keep only ("" for any), a lower-cased text the id, name or data must hold ("" for any), how
many matches are enough, and for waiting (flow control: past the jobs without a group come the
groups' waiting jobs, group after group, most waiting first, see includes/group_walk.lua) the
cursor's group ("" before them) and its place in the walk over the groups (a waiting count and
a skip). The jobs without a group are the wait set with the wait list at WAIT_LIST_SCORE
(includes/waiting.lua): a cursor at that score stands in the list, its skip then the score by
creation of the last listed job read (0: none yet).
Text matching is plain (no patterns) and case-insensitive for ASCII letters only (Lua's lower).
Returns {members read, 1 when the end was reached else 0, the cursor's score, the count read at
that score, its group, the group's place (count, skip), matching id, ...}: the cursor stands right after the last
member read, so a call that stopped at enough matches resumes exactly after the last one.
]]
-- @include queue
-- @include waiting
-- @include group_walk

local sets = {waiting = WAIT, active = ACTIVE, delayed = DELAYED, completed = COMPLETED,
              failed = FAILED, ["waiting-children"] = WAITING_CHILDREN}
local set = sets[ARGV[1]]
if not set then return redis.error_reply("ERR search: unknown state " .. tostring(ARGV[1])) end
local score, skip, count = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local newest, name, needle, enough = ARGV[5] == "1", ARGV[6], ARGV[7], tonumber(ARGV[8])
local group, gcount, gskip = ARGV[9] or "", tonumber(ARGV[10]) or 0, tonumber(ARGV[11]) or 0
local reply = {0, 0, score, skip, group, gcount, gskip}
local read, steps = 0, 0

-- Keeps the job if it matches; true when the matches are enough.
local function look(id)
  local fields = redis.call("HMGET", job_key(id), "name", "data")
  local keep = name == "" or fields[1] == name
  if keep and needle ~= "" then
    local text = id .. "\n" .. (fields[1] or "") .. "\n" .. (fields[2] or "")
    keep = string.find(string.lower(text), needle, 1, true) ~= nil
  end
  if keep then reply[#reply + 1] = id end
  return #reply - 7 >= enough
end

-- Reads one sorted set from the cursor on (or from score `from`, skipping nothing) up to score
-- `to` (default: its end); true when that end was reached.
local function read_set(key, from, to)
  local want = count - read
  local entries
  if from then skip = 0 end
  if newest then
    entries = redis.call("ZREVRANGEBYSCORE", key, from or score, to or "-inf", "WITHSCORES",
      "LIMIT", skip, want)
  else
    entries = redis.call("ZRANGEBYSCORE", key, from or score, to or "+inf", "WITHSCORES",
      "LIMIT", skip, want)
  end
  local used = 0
  for i = 1, #entries, 2 do
    local id, at = entries[i], entries[i + 1]
    used, read = used + 1, read + 1
    if at == score then skip = skip + 1 else score, skip = at, 1 end
    if look(id) then break end
  end
  local ended = #entries < 2 * want and used * 2 == #entries
  return ended
end

-- A listed job's score by its creation (its id, or its "score" field when the id is not its
-- sequence number): the list is in that order, so a cursor at one stays put while jobs join
-- the tail or leave the head. (finished.lua's job_wait_score for priority 0; that include would
-- define its metrics and groups helpers in every search call.)
local function listed_score(id)
  local score = tonumber(redis.call("HGET", job_key(id), "score"))
  if not score then score = wait_score(0, tonumber(id) or 0) end
  return score
end

-- Reads the wait list from the cursor on: past the listed job whose score the skip holds (0:
-- from the list's start); true when its end was reached.
local function read_list()
  local want, length = count - read, redis.call("LLEN", WAIT_LIST)
  -- The first place whose job's score is past the cursor's (newest first: the last before it).
  local lo, hi = 0, length
  if skip == 0 then
    lo = newest and length or 0
  else
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      local at = listed_score(redis.call("LINDEX", WAIT_LIST, mid))
      if at > skip or (newest and at == skip) then hi = mid else lo = mid + 1 end
    end
  end
  local entries = {}
  if newest then
    if lo > 0 then
      local part = redis.call("LRANGE", WAIT_LIST, math.max(lo - want, 0), lo - 1)
      for i = #part, 1, -1 do entries[#entries + 1] = part[i] end
    end
  else
    entries = redis.call("LRANGE", WAIT_LIST, lo, lo + want - 1)
  end
  local used = 0
  for i = 1, #entries do
    used, read = used + 1, read + 1
    if look(entries[i]) then break end
  end
  if used > 0 then skip = listed_score(entries[used]) end
  local ended = #entries < want and used == #entries
  return ended
end

-- The jobs waiting without a group, in three parts (the set's members on the cursor's side of
-- the list, the list, the set's members past it); true when the last part's end was reached.
local function read_waiting()
  local at, beyond = tonumber(score), "(" .. WAIT_LIST_AT
  local before_list = (newest and at > WAIT_LIST_SCORE) or (not newest and at < WAIT_LIST_SCORE)
  if before_list then
    if not read_set(WAIT, nil, beyond) then return false end
    score, skip = WAIT_LIST_AT, 0
  elseif at ~= WAIT_LIST_SCORE then
    return read_set(WAIT)
  end
  if read >= count or #reply - 7 >= enough then return false end
  if not read_list() then return false end
  if read >= count or #reply - 7 >= enough then return false end
  local listed = skip
  local ended = read_set(WAIT, beyond)
  if score == WAIT_LIST_AT then skip = listed end  -- (nothing read past the list)
  return ended
end

-- On to the group at a place of the walk (its first member); false when there is none.
local function next_group(count, at)
  local g, c, k = group_at(count, at, true)
  if not g then return false end
  group, gcount, gskip, skip = g, c, k, 0
  score = newest and "+inf" or "-inf"
  return true
end

local at_end
if group == "" then
  if set == WAIT then at_end = read_waiting() else at_end = read_set(set) end
  if at_end and ARGV[1] == "waiting" and next_group("+inf", 0) then at_end = false end
end
-- (each group visited counts as a step, so a walk over many empty groups is bounded too)
while group ~= "" and #reply - 7 < enough and read + steps < count do
  steps = steps + 1
  at_end = read_set(BASE .. "gw:" .. group)
  if not at_end then break end
  if not next_group(group_next(group, gcount, gskip)) then break end
  at_end = false
end
reply[1] = read
reply[2] = at_end and 1 or 0
reply[3], reply[4], reply[5], reply[6], reply[7] = score, skip, group, gcount, gskip
return reply
