-- record.lua: append the audit event of a request that was never admitted.
-- KEYS: 1 the audit stream, 2 its byte counter
-- ARGV: 1 the event, 2 the stream's byte bound (-1 none)
-- Returns 1 if appended, 0 if the stream holds more bytes than the bound (nothing appended).
local bound = tonumber(ARGV[2])
if bound >= 0 and num(redis.call('GET', KEYS[2])) > bound then return 0 end
redis.call('XADD', KEYS[1], '*', 'e', ARGV[1])
redis.call('INCRBY', KEYS[2], #ARGV[1])
return 1
