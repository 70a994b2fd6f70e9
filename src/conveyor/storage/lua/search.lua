--[[ search: read one slice of a state's set, from a cursor, and keep the jobs that match.

KEYS and settings: see includes/queue.lua. Changes nothing (a read the dashboard's search
repeats, slice after slice, so that no single call holds Redis for long).
ARGV: the state (waiting, active, delayed, completed, failed or waiting-children), the cursor's
score (as Redis prints it, or "+inf"/"-inf"), how many members at exactly that score were read
already, how many members to read at most, "1" for newest first (else oldest first), a job name
to keep only ("" for any), a lower-cased text the id, name or data must hold ("" for any), how
many matches are enough, and for waiting (flow control: past the wait set come the groups'
waiting jobs, group after group, most waiting first, see includes/group_walk.lua) the
cursor's group ("" while in the wait set) and its place in the walk over the groups (a
waiting count and a skip).
Text matching is plain (no patterns) and case-insensitive for ASCII letters only (Lua's lower).
Returns {members read, 1 when the end was reached else 0, the cursor's score, the count read at
that score, its group, the group's place (count, skip), matching id, ...}: the cursor stands right after the last
member read, so a call that stopped at enough matches resumes exactly after the last one.
]]
-- @include queue
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

-- Reads from the cursor on in one sorted set; true when its end was reached.
local function read_set(key)
  local want = count - read
  local entries
  if newest then
    entries = redis.call("ZREVRANGEBYSCORE", key, score, "-inf", "WITHSCORES", "LIMIT", skip, want)
  else
    entries = redis.call("ZRANGEBYSCORE", key, score, "+inf", "WITHSCORES", "LIMIT", skip, want)
  end
  local used = 0
  for i = 1, #entries, 2 do
    local id, at = entries[i], entries[i + 1]
    used, read = used + 1, read + 1
    if at == score then skip = skip + 1 else score, skip = at, 1 end
    local fields = redis.call("HMGET", job_key(id), "name", "data")
    local keep = name == "" or fields[1] == name
    if keep and needle ~= "" then
      local text = id .. "\n" .. (fields[1] or "") .. "\n" .. (fields[2] or "")
      keep = string.find(string.lower(text), needle, 1, true) ~= nil
    end
    if keep then
      reply[#reply + 1] = id
      if #reply - 7 >= enough then break end
    end
  end
  local ended = #entries < 2 * want and used * 2 == #entries
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
  at_end = read_set(set)
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
