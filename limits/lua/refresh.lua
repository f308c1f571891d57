-- refresh.lua: heartbeat of a request in flight: its lease and reservation (one entry for both
-- scopes) expire at now + lease ttl, if still open.
-- KEYS: 1 the tenant's heads
-- ARGV: 1 request id, 2 now ms ('' = Redis TIME), 3 lease ttl ms
-- Returns 1 if renewed, 0 if the reservation is not open (lapsed or settled): nothing changes.
local now = clock(ARGV[2])
local field = '=' .. ARGV[1]
local e = redis.call('HGET', KEYS[1], field)
if not e then return 0 end
local tok, exp, k = entry(e)
if exp <= now then return 0 end
redis.call('HSET', KEYS[1], field, int(tok) .. ' ' .. int(now + tonumber(ARGV[3])) .. ' ' .. k)
return 1
