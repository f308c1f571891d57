-- admit.lua: all-or-nothing admission of one request at key scope and tenant scope.
-- KEYS: 1 the tenant's heads, 2 the key's ring, 3 the tenant's ring, 4 the byte counter of
--   the tenant's audit stream
-- ARGV: 1 request id, 2 now ms ('' = Redis TIME), 3 prompt tokens, 4 max_output (-1 none),
--   5 output kind (0 none, 1 single, 2 stream), 6 output step, 7 non-stream cap,
--   8 lease ttl ms, 9 lapse grace ms, 10 audit byte bound (-1 none), 11 day (YYYYMMDD),
--   12 month (YYYYMM), 13 the key's heads field, 14-19 key limits, 20-25 tenant limits:
--   rpm, tpm, max_concurrent, daily, monthly, total (-1 none)
-- Returns 14 integers (-1 = none): code (1 admitted, 0 denied, 2 needs seed), scope (1 key,
--   2 tenant), limit (1 requests .. 6 total in ARGV order, 7 audit queue), retry ms,
--   output cap, reserved, now ms, stepped (1/0), rpm limit, rpm remaining, rpm reset ms,
--   tpm limit, tpm remaining, tpm reset ms. An id already open is an error.
-- Deny order: audit queue; total, monthly, daily, requests, tokens, concurrency; key before
--   tenant.
local id = ARGV[1]
local now = clock(ARGV[2])
local prompt, max_output, kind = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local step, single_cap = tonumber(ARGV[6]), tonumber(ARGV[7])
local ttl, grace, bound = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local day, month, kf = tonumber(ARGV[11]), tonumber(ARGV[12]), ARGV[13]
local hk, ring = KEYS[1], {KEYS[2], KEYS[3]}
local sec = math.floor(now / 1000)

if bound >= 0 and num(redis.call('GET', KEYS[4])) > bound then
  return {0, -1, 7, 1000, -1, -1, now, 0, -1, -1, -1, -1, -1, -1}
end

local lim = limits(13, 6)
local h, raw = heads(hk, kf, '=' .. id)
if raw[3] then return redis.error_reply('request id already in flight') end
for s = 1, 2 do
  if (lim[s][4] >= 0 or lim[s][5] >= 0 or lim[s][6] >= 0) and h[s][S] == 0 then
    return {2, -1, -1, -1, -1, -1, now, 0, -1, -1, -1, -1, -1, -1}
  end
end
local nx = h[2][NX]
if nx >= 0 and now >= nx then -- something lapsed: release it
  purge(hk, now, grace, {[kf] = h[1], t = h[2]})
end

-- read (rolling the minutes forward)
local used = {}
for s = 1, 2 do
  local l, x = lim[s], h[s]
  if l[1] >= 0 then roll(x, RPM, ring[s], 'r', sec) end
  if l[2] >= 0 then roll(x, TPM, ring[s], 't', sec) end
  local held = x[H]
  used[s] = {x[RPM], x[TPM], x[N], held + (x[D] == day and x[DV] or 0),
    held + (x[M] == month and x[MV] or 0), held + x[TOT]}
end

-- decide: a generation needs room for its prompt and one output token, "none" for its prompt
local need = prompt + (kind == 0 and 0 or 1)
local allowance, deny_s, deny_i, retry = nil, -1, -1, -1
for _, i in ipairs({6, 5, 4, 1, 2, 3}) do
  for s = 1, 2 do
    local l = lim[s][i]
    if deny_s < 0 and l >= 0 then
      if i == 1 then
        if used[s][1] >= l then
          deny_s, deny_i = s, 1
          retry = wait(h[s], RPM, ring[s], 'r', used[s][1] - l + 1, now)
        end
      elseif i == 3 then
        if used[s][3] >= l then deny_s, deny_i, retry = s, 3, 1000 end
      else
        local left = l - used[s][i]
        if need > 0 and left < need then
          deny_s, deny_i = s, i
          if i == 2 then
            retry = wait(h[s], TPM, ring[s], 't', need - left, now)
          elseif left + h[s][H] >= need then
            retry = 1000 -- not spent: held by requests in flight, which settle soon
          end
        elseif allowance == nil or left - prompt < allowance then
          allowance = left - prompt
        end
      end
    end
  end
end
local admitted = deny_s < 0

-- what to reserve; allowance is set iff a token limit applies
local cap, out, stepped = -1, 0, 0
if kind == 1 then
  if allowance ~= nil then
    cap = single_cap
    if max_output >= 0 then cap = max_output end
    if allowance < cap then cap = allowance end
    out = cap
  else
    cap, out = max_output, step
    if max_output >= 0 then out = max_output end
  end
elseif kind == 2 then
  cap = max_output
  if allowance ~= nil and (cap < 0 or allowance < cap) then cap = allowance end
  out = step
  if cap >= 0 and cap < out then out = cap end
  if allowance ~= nil and out < cap then stepped = 1 end
end
local reserved = prompt + out

-- rate info from the tightest scope
local rl, rr, rreset, tl, tr, treset = -1, -1, -1, -1, -1, -1
for s = 1, 2 do
  local l = lim[s]
  if l[1] >= 0 then
    local rem = l[1] - used[s][1]
    if admitted then rem = rem - 1 end
    rem = math.max(rem, 0)
    if rr < 0 or rem < rr then
      rl, rr, rreset = l[1], rem, reset(h[s], RPM, now, WINDOW)
    end
  end
  if l[2] >= 0 then
    local rem = l[2] - used[s][2]
    if admitted then rem = rem - reserved end
    rem = math.max(rem, 0)
    if tr < 0 or rem < tr then
      tl, tr, treset = l[2], rem, reset(h[s], TPM, now, (sec + 60) * 1000 - now)
    end
  end
end

-- write: the heads in any case (windows rolled, lapses released), the reservation if admitted
if not admitted then
  store_heads(hk, kf, h, raw, {})
  return {0, deny_s, deny_i, retry, -1, -1, now, 0, rl, rr, rreset, tl, tr, treset}
end
for s = 1, 2 do
  local x = h[s]
  if lim[s][1] >= 0 then add(x, RPM, 1) end
  if lim[s][2] >= 0 then add(x, TPM, reserved) end
  x[H], x[N] = x[H] + reserved, x[N] + 1
end
if h[2][NX] < 0 or now + ttl < h[2][NX] then h[2][NX] = now + ttl end
store_heads(hk, kf, h, raw, {'=' .. id, int(reserved) .. ' ' .. int(now + ttl) .. ' ' .. kf})
return {1, -1, -1, -1, cap, reserved, now, stepped, rl, rr, rreset, tl, tr, treset}
