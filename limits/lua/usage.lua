-- usage.lua: settled usage in the current windows and tokens held in flight, at both scopes.
-- KEYS: 1 the tenant's heads
-- ARGV: 1 now ms ('' = Redis TIME), 2 day (YYYYMMDD), 3 month (YYYYMM), 4 the key's heads field
-- Returns {key day, key month, key total, key reserved, then the same for the tenant}.
-- Read only: reservations past their expiry are left out but not released.
local now = clock(ARGV[1])
local day, month, kf = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local h = heads(KEYS[1], kf)
local gone = {0, 0}
if h[2][NX] >= 0 and now >= h[2][NX] then
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 1) == '=' then
      local tok, exp, k = entry(all[i + 1])
      if exp <= now then
        gone[2] = gone[2] + tok
        if k == kf then gone[1] = gone[1] + tok end
      end
    end
  end
end
local out = {}
for s = 1, 2 do
  local x = h[s]
  out[#out + 1] = x[D] == day and int(x[DV]) or 0
  out[#out + 1] = x[M] == month and int(x[MV]) or 0
  out[#out + 1] = int(x[TOT])
  out[#out + 1] = int(math.max(x[H] - gone[s], 0))
end
return out
