--[[ search: read one slice of a state's set, from a cursor, and keep the jobs that match.

KEYS and settings: see includes/queue.lua. Changes nothing (a read the dashboard's search
repeats, slice after slice, so that no single call holds Redis for long).
ARGV: the state (waiting, active, delayed, completed, failed or waiting-children), the cursor's score (as Redis prints it, or
"+inf"/"-inf"), how many members at exactly that score were read already, how many members to
read at most, "1" for newest first (else oldest first), a job name to keep only ("" for any), a
lower-cased text the id, name or data must hold ("" for any), and how many matches are enough.
Text matching is plain (no patterns) and case-insensitive for ASCII letters only (Lua's lower).
Returns {members read, 1 when the set's end was reached else 0, the cursor's score, the count
read at that score, matching id, ...}: the cursor stands right after the last member read, so a
call that stopped at enough matches resumes exactly after the last one.
]]
-- @include queue

local sets = {waiting = WAIT, active = ACTIVE, delayed = DELAYED, completed = COMPLETED,
              failed = FAILED, ["waiting-children"] = WAITING_CHILDREN}
local set = sets[ARGV[1]]
if not set then return redis.error_reply("ERR search: unknown state " .. tostring(ARGV[1])) end
local score, skip, count = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local name, needle, enough = ARGV[6], ARGV[7], tonumber(ARGV[8])
local entries
if ARGV[5] == "1" then
  entries = redis.call("ZREVRANGEBYSCORE", set, score, "-inf", "WITHSCORES", "LIMIT", skip, count)
else
  entries = redis.call("ZRANGEBYSCORE", set, score, "+inf", "WITHSCORES", "LIMIT", skip, count)
end
local reply = {0, 0, score, skip}
local read = 0
for i = 1, #entries, 2 do
  local id, at = entries[i], entries[i + 1]
  read = read + 1
  if at == score then skip = skip + 1 else score, skip = at, 1 end
  local fields = redis.call("HMGET", job_key(id), "name", "data")
  local keep = name == "" or fields[1] == name
  if keep and needle ~= "" then
    local text = id .. "\n" .. (fields[1] or "") .. "\n" .. (fields[2] or "")
    keep = string.find(string.lower(text), needle, 1, true) ~= nil
  end
  if keep then
    reply[#reply + 1] = id
    if #reply - 4 >= enough then break end
  end
end
reply[1] = read
reply[2] = (#entries < 2 * count and read * 2 == #entries) and 1 or 0
reply[3], reply[4] = score, skip
return reply
