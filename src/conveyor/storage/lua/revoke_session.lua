--[[ revoke_session: a dashboard session was logged out; every dashboard process that shares this
Redis and prefix refuses its cookie from now on, across restarts (web/sessions.py).

KEYS[1] <prefix>:dashboard:revoked:<sha256 of the session id> (storage/keys.py)
ARGV[1] ms until the session would have expired: the mark lives as long as the cookie could
Returns nothing.
Events: none.
]]
-- @protocol
redis.call("SET", KEYS[1], "1", "PX", ARGV[1])
