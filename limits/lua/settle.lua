-- settle.lua: replace a request's reservation by the tokens it used, at key and tenant scope,
-- and append its audit event, once.
-- KEYS: 1 the tenant's heads, 2 the key's ring, 3 the tenant's ring, 4 the audit stream,
--   5 its byte counter
-- ARGV: 1 request id, 2 used tokens, 3 now ms ('' = Redis TIME), 4 day (YYYYMMDD),
--   5 month (YYYYMM), 6 the key's heads field, 7 tpm at key scope (1/0), 8 tpm at tenant
--   scope (1/0), 9 tokens reserved (the ticket's), 10 admission second, 11 tokens reserved at
--   admission, 12 second of the latest extension (-1 none), 13 tokens granted in that second,
--   14 the event (absent: none)
-- Charges iff the reservation is still open (even past its expiry) or its tombstone is;
-- removes it. Returns 1 if charged now, 0 if not (a repeat: a no-op).
local id, used = ARGV[1], tonumber(ARGV[2])
local day, month, kf = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local hk, ring = KEYS[1], {KEYS[2], KEYS[3]}
local reserved = tonumber(ARGV[9])
local parts = {{tonumber(ARGV[12]), tonumber(ARGV[13])}, {tonumber(ARGV[10]), tonumber(ARGV[11])}}
local function plus(a, b) return a + b end
local now = nil -- the clock is read only when needed
local function clock_now()
  if now == nil then now = clock(ARGV[3]) end
  return now
end

local h, raw = heads(hk, kf, '=' .. id, '~' .. id)
local tok = nil
if raw[3] then
  tok = entry(raw[3])
elseif not (raw[4] and tonumber(raw[4]) > clock_now()) then
  return 0
end
redis.call('HDEL', hk, '=' .. id, '~' .. id)

-- tpm: a refund comes out of the latest extension's bucket, then the admission's bucket (never
-- more than each got from this request); tokens beyond the reservation count now
local function correct(x, r)
  local delta = used - reserved
  if delta == 0 then return end
  local sec = math.floor(clock_now() / 1000)
  if delta > 0 then
    roll(x, TPM, r, 't', sec)
    add(x, TPM, delta)
    return
  end
  local lo, cur = x[TPM + 1], x[TPM + 2]
  if lo < 0 then return end
  local have, fields = {}, {}
  for _, p in ipairs(parts) do
    local b = p[1]
    if b >= lo and b > sec - 60 and b ~= cur and not have[b] then
      have[b] = 0
      fields[#fields + 1] = b
    end
  end
  if #fields > 0 then
    local names = {}
    for i, b in ipairs(fields) do names[i] = 't' .. b end
    for i, v in ipairs(redis.call('HMGET', r, unpack(names))) do have[fields[i]] = num(v) end
  end
  have[cur] = x[TPM + 3]
  local left, changed = -delta, {}
  for _, p in ipairs(parts) do
    local b, n = p[1], p[2]
    if b >= lo and b > sec - 60 and have[b] > 0 then
      local g = math.min(left, n, have[b])
      have[b], left, changed[b] = have[b] - g, left - g, true
    end
  end
  x[TPM] = math.max(x[TPM] - (-delta - left), 0)
  x[TPM + 3] = have[cur]
  local dead, set = {}, {}
  for b in pairs(changed) do
    if b ~= cur and have[b] == 0 then
      dead[#dead + 1] = 't' .. b
    elseif b ~= cur then
      set[#set + 1] = 't' .. b
      set[#set + 1] = int(have[b])
    end
  end
  if #dead > 0 then redis.call('HDEL', r, unpack(dead)) end
  if #set > 0 then redis.call('HSET', r, unpack(set)) end
end

for s = 1, 2 do
  local x = h[s]
  if tok then x[H], x[N] = math.max(x[H] - tok, 0), math.max(x[N] - 1, 0) end
  if used > 0 then
    merge(x, D, day, used, plus)
    merge(x, M, month, used, plus)
    x[TOT] = x[TOT] + used
  end
  if ARGV[6 + s] == '1' then correct(x, ring[s]) end
end
store_heads(hk, kf, h, raw, {})

if #ARGV >= 14 then
  redis.call('XADD', KEYS[4], '*', 'e', ARGV[14])
  redis.call('INCRBY', KEYS[5], #ARGV[14])
end
return 1
