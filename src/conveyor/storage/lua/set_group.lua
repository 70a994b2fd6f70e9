--[[ set_group: flow control, one group's own settings (overriding the group defaults).

KEYS and settings: see includes/queue.lua; flow control's keys: see includes/groups.lua.
ARGV[1] group, then pairs of field, value: fields conc, rate (value "N/PER ms"), weight, max;
        a value "" drops the override (the default applies again), "0" means no limit
Returns CODE_OK.
Events: "group_set" with "group".
]]
-- @include queue
-- @include groups

local g = ARGV[1]
local key = BASE .. "g:" .. g
for i = 2, #ARGV, 2 do
  local field, value = ARGV[i], ARGV[i + 1]
  if field == "rate" then
    if value == "" then
      redis.call("HDEL", key, "rate_n", "rate_ms")
    else
      local n, per = string.match(value, "^(%d+)/(%d+)$")
      redis.call("HSET", key, "rate_n", n, "rate_ms", per)
    end
  elseif value == "" then
    redis.call("HDEL", key, field)
  else
    redis.call("HSET", key, field, value)
  end
end
emit("group_set", "", "group", g)
local now = now_ms()
if (tonumber(redis.call("HGET", key, "hold")) or 0) <= now then
  redis.call("ZREM", BASE .. "gsleep", g)  -- asleep under the old rate limit: look again
end
group_ready(g, now)
if redis.call("EXISTS", key) == 1 then redis.call("ZINCRBY", BASE .. "gindex", 0, g) end
group_tidy(g)
return CODE_OK
