-- settle.lua: replace a request's reservation by the tokens it used, at key and tenant scope.
-- KEYS: 7 per scope, key scope (1-7) then tenant scope (8-14): tpm (hash second -> tokens),
--   leases (zset), resv (hash request_id -> reserved), resx (zset request_id -> expiry ms),
--   day counter, month counter, total counter; then 15: done (zset request_id -> expiry ms,
--   the settled requests of this key, kept for done ttl so a second settle is a no-op)
-- ARGV: 1 request_id, 2 used tokens, 3 reserved tokens, 4 admission time ms (names the tpm bucket),
--   5 tpm charged at key scope (1/0), 6 tpm charged at tenant scope (1/0),
--   7 now ms ('' = Redis TIME), 8 done ttl ms, 9 day counter ttl s, 10 month counter ttl s
-- Returns 1 if settled now, 0 if this request had already been settled.
local id = ARGV[1]
local used = tonumber(ARGV[2])
local reserved = tonumber(ARGV[3])
local bucket = math.floor(tonumber(ARGV[4]) / 1000)
local now
if ARGV[7] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[7])
end
local done = KEYS[15]
local function int(x) return string.format('%d', x) end

redis.call('ZREMRANGEBYSCORE', done, '-inf', now)
if redis.call('ZSCORE', done, id) then return 0 end

for s = 1, 2 do
  local b = (s - 1) * 7
  redis.call('ZREM', KEYS[b + 2], id)
  redis.call('HDEL', KEYS[b + 3], id)
  redis.call('ZREM', KEYS[b + 4], id)
  if used > 0 then
    redis.call('INCRBY', KEYS[b + 5], int(used))
    redis.call('EXPIRE', KEYS[b + 5], ARGV[9])
    redis.call('INCRBY', KEYS[b + 6], int(used))
    redis.call('EXPIRE', KEYS[b + 6], ARGV[10])
    redis.call('INCRBY', KEYS[b + 7], int(used))
  end
  -- correct the admission's tpm bucket while it is still inside the rolling minute
  if ARGV[4 + s] == '1' and used ~= reserved and bucket > math.floor(now / 1000) - 60 then
    if redis.call('EXISTS', KEYS[b + 1]) == 1 then
      redis.call('HINCRBY', KEYS[b + 1], int(bucket), int(used - reserved))
    end
  end
end
redis.call('ZADD', done, int(now + tonumber(ARGV[8])), id)
redis.call('PEXPIRE', done, ARGV[8])
return 1
