-- usage.lua: settled usage plus live reservations in the current windows, at key and tenant scope.
-- KEYS: 5 per scope, key scope (1-5) then tenant scope (6-10):
--   resv (hash request_id -> reserved), resx (zset request_id -> expiry ms),
--   day counter, month counter, total counter
-- ARGV: 1 now ms ('' = Redis TIME)
-- Returns {key day, key month, key total, tenant day, tenant month, tenant total}. Read only.
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[1])
end
local out = {}
for s = 1, 2 do
  local b = (s - 1) * 5
  local reserved = 0
  local live = redis.call('ZRANGEBYSCORE', KEYS[b + 2], '(' .. string.format('%d', now), '+inf')
  for j = 1, #live, 1000 do
    local values = redis.call('HMGET', KEYS[b + 1], unpack(live, j, math.min(j + 999, #live)))
    for _, v in ipairs(values) do reserved = reserved + (tonumber(v) or 0) end
  end
  for i = 3, 5 do out[#out + 1] = reserved + (tonumber(redis.call('GET', KEYS[b + i])) or 0) end
end
return out
