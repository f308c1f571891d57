-- seed.lua: rebuild the budget counters of each unseeded scope from the ledger, then mark it
-- seeded.
-- KEYS: 1 the tenant's heads
-- ARGV: 1 day (YYYYMMDD), 2 month (YYYYMM), 3 the key's heads field, 4-6 key usage (day,
--   month, total), 7-9 tenant usage
-- Each counter of an unseeded scope becomes max(existing, given); a seeded scope is left alone,
-- so concurrent seeders cannot double count. Returns the number of scopes seeded (0, 1 or 2).
local h, raw = heads(KEYS[1], ARGV[3])
local seeded = 0
for s = 1, 2 do
  local x, b = h[s], 3 + (s - 1) * 3
  if x[S] == 0 then
    merge(x, D, tonumber(ARGV[1]), tonumber(ARGV[b + 1]), math.max)
    merge(x, M, tonumber(ARGV[2]), tonumber(ARGV[b + 2]), math.max)
    x[TOT], x[S] = math.max(x[TOT], tonumber(ARGV[b + 3])), 1
    seeded = seeded + 1
  end
end
store_heads(KEYS[1], ARGV[3], h, raw, {})
return seeded
