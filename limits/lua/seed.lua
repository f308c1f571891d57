-- seed.lua: rebuild the budget counters of each unseeded scope from the ledger, then mark it seeded.
-- KEYS: 4 per scope, key scope (1-4) then tenant scope (5-8):
--   seeded marker, day counter, month counter, total counter
-- ARGV: 1-3 key usage (day, month, total), 4-6 tenant usage (day, month, total),
--   7 day counter ttl s, 8 month counter ttl s
-- Each counter of an unseeded scope becomes max(existing, given); a seeded scope is left alone,
-- so concurrent seeders cannot double count.
-- Returns the number of scopes seeded by this call (0, 1 or 2).
local seeded = 0
for s = 1, 2 do
  local b = (s - 1) * 4
  if redis.call('EXISTS', KEYS[b + 1]) == 0 then
    for i = 1, 3 do
      local given = tonumber(ARGV[(s - 1) * 3 + i])
      local have = tonumber(redis.call('GET', KEYS[b + 1 + i])) or 0
      if given > have then redis.call('SET', KEYS[b + 1 + i], ARGV[(s - 1) * 3 + i]) end
    end
    redis.call('EXPIRE', KEYS[b + 2], ARGV[7])
    redis.call('EXPIRE', KEYS[b + 3], ARGV[8])
    redis.call('SET', KEYS[b + 1], '1')
    seeded = seeded + 1
  end
end
return seeded
