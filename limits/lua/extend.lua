-- extend.lua: add up to `tokens` output tokens to an open reservation at both scopes, against
-- tpm (the current minute) and every budget; an extension also renews the lease.
-- KEYS: 1 the tenant's heads, 2 the key's ring, 3 the tenant's ring
-- ARGV: 1 request id, 2 now ms ('' = Redis TIME), 3 tokens wanted (>= 1), 4 lease ttl ms,
--   5 day (YYYYMMDD), 6 month (YYYYMM), 7 the key's heads field, 8-11 key limits,
--   12-15 tenant limits: tpm, daily, monthly, total (-1 none)
-- Returns {granted, now ms, scope, limit}: granted -1 if the reservation is not open (lapsed or
--   settled); scope and limit (-1 none) name the counter that left less than asked (limit in
--   admit.lua's numbering: 2 tokens, 4 daily, 5 monthly, 6 total; ties go by deny order).
-- Lapsed reservations of others still count in held until an admission releases them.
local id = ARGV[1]
local now = clock(ARGV[2])
local want, ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
local day, month, kf = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local hk, ring = KEYS[1], {KEYS[2], KEYS[3]}
local sec = math.floor(now / 1000)

local h, raw = heads(hk, kf, '=' .. id)
if not raw[3] then return {-1, now, -1, -1} end
local tok, exp = entry(raw[3])
if exp <= now then return {-1, now, -1, -1} end
local lim = limits(7, 4)

-- what every counter has left; ARGV order tpm, daily, monthly, total = limits 2, 4, 5, 6
local grant, by_s, by_i = want, -1, -1
for _, i in ipairs({6, 5, 4, 2}) do
  for s = 1, 2 do
    local l, x = lim[s][i == 2 and 1 or i - 2], h[s]
    if l >= 0 then
      local spent
      if i == 2 then
        roll(x, TPM, ring[s], 't', sec)
        spent = x[TPM]
      elseif i == 4 then
        spent = x[H] + (x[D] == day and x[DV] or 0)
      elseif i == 5 then
        spent = x[H] + (x[M] == month and x[MV] or 0)
      else
        spent = x[H] + x[TOT]
      end
      if l - spent < grant then grant, by_s, by_i = l - spent, s, i end
    end
  end
end
grant = math.max(grant, 0)

local args = {}
if grant > 0 then
  args = {'=' .. id, int(tok + grant) .. ' ' .. int(now + ttl) .. ' ' .. kf}
  for s = 1, 2 do
    h[s][H] = h[s][H] + grant
    if lim[s][1] >= 0 then add(h[s], TPM, grant) end
  end
end
store_heads(hk, kf, h, raw, args)
return {grant, now, by_s, by_i}
