-- admit.lua: all-or-nothing admission of one request at key scope and tenant scope.
-- KEYS: 9 per scope, key scope (1-9) then tenant scope (10-18), in this order:
--   rpm (zset request_id -> ms), tpm (hash second -> tokens), leases (zset request_id -> expiry ms),
--   resv (hash request_id -> reserved tokens), resx (zset request_id -> expiry ms),
--   day counter, month counter, total counter, seeded marker
-- ARGV: 1 request_id, 2 now in ms ('' = Redis TIME), 3 prompt tokens, 4 max_output (-1 none),
--   5 default output reserve (-1 none), 6 lease ttl ms,
--   7-12 key limits, 13-18 tenant limits: rpm, tpm, max_concurrent, daily, monthly, total (-1 none)
-- Returns 13 integers (-1 = none): code (1 admitted, 0 denied, 2 needs seed), scope (1 key,
--   2 tenant), limit (1 requests .. 6 total, ARGV order), retry ms (rpm/tpm/concurrency),
--   output cap, reserved, now ms, rpm limit, rpm remaining, rpm reset ms,
--   tpm limit, tpm remaining, tpm reset ms.
-- Deny order: total, monthly, daily, requests, tokens, concurrency; key before tenant.
local WINDOW = 60000
local id = ARGV[1]
local now
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[2])
end
local prompt = tonumber(ARGV[3])
local max_output = tonumber(ARGV[4])
local default_reserve = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local sec = math.floor(now / 1000)

local function int(x) return string.format('%d', x) end
local function key(s, i) return KEYS[(s - 1) * 9 + i] end
local function del_fields(k, fields)
  for j = 1, #fields, 1000 do
    redis.call('HDEL', k, unpack(fields, j, math.min(j + 999, #fields)))
  end
end

local lim = {}
for s = 1, 2 do
  lim[s] = {}
  for i = 1, 6 do lim[s][i] = tonumber(ARGV[6 + (s - 1) * 6 + i]) end
  local budget = lim[s][4] >= 0 or lim[s][5] >= 0 or lim[s][6] >= 0
  if budget and redis.call('EXISTS', key(s, 9)) == 0 then
    return {2, -1, -1, -1, -1, -1, now, -1, -1, -1, -1, -1, -1}
  end
end

-- read (and purge what has expired)
local held = {0, 0}  -- tokens reserved by requests still in flight, per scope
local used, oldest, buckets = {}, {}, {}
for s = 1, 2 do
  local l, u = lim[s], {0, 0, 0, 0, 0, 0}
  local expired = redis.call('ZRANGEBYSCORE', key(s, 5), '-inf', now)
  if #expired > 0 then
    del_fields(key(s, 4), expired)
    redis.call('ZREMRANGEBYSCORE', key(s, 5), '-inf', now)
  end
  if l[1] >= 0 then
    redis.call('ZREMRANGEBYSCORE', key(s, 1), '-inf', now - WINDOW)
    u[1] = redis.call('ZCARD', key(s, 1))
    local first = redis.call('ZRANGE', key(s, 1), 0, 0, 'WITHSCORES')
    if #first > 0 then oldest[s] = tonumber(first[2]) end
  end
  if l[2] >= 0 then
    local h, stale, live = redis.call('HGETALL', key(s, 2)), {}, {}
    for j = 1, #h, 2 do
      local b = tonumber(h[j])
      if b <= sec - 60 then
        stale[#stale + 1] = h[j]
      else
        live[#live + 1] = {b, tonumber(h[j + 1])}
        u[2] = u[2] + tonumber(h[j + 1])
      end
    end
    if #stale > 0 then del_fields(key(s, 2), stale) end
    table.sort(live, function(a, b) return a[1] < b[1] end)
    buckets[s] = live
  end
  if l[3] >= 0 then
    redis.call('ZREMRANGEBYSCORE', key(s, 3), '-inf', now)
    u[3] = redis.call('ZCARD', key(s, 3))
  end
  if l[4] >= 0 or l[5] >= 0 or l[6] >= 0 then
    local reserved = 0
    for _, v in ipairs(redis.call('HVALS', key(s, 4))) do reserved = reserved + tonumber(v) end
    held[s] = reserved
    for i = 4, 6 do
      if l[i] >= 0 then u[i] = reserved + (tonumber(redis.call('GET', key(s, i + 2))) or 0) end
    end
  end
  used[s] = u
end

-- ms until enough tokens leave the tpm window of scope s to leave room for `need` more
local function tpm_wait(s, need)
  local freed = 0
  for _, b in ipairs(buckets[s]) do
    freed = freed + b[2]
    if freed >= need then return (b[1] + 60) * 1000 - now end
  end
  return WINDOW
end

-- decide
local allowance = nil
local deny_s, deny_i, retry = -1, -1, -1
for _, i in ipairs({6, 5, 4, 1, 2, 3}) do
  for s = 1, 2 do
    local l = lim[s][i]
    if deny_s < 0 and l >= 0 then
      if i == 1 then
        if used[s][1] >= l then
          deny_s, deny_i, retry = s, i, WINDOW
          local nth = redis.call('ZRANGE', key(s, 1), used[s][1] - l, used[s][1] - l, 'WITHSCORES')
          if #nth > 0 then retry = tonumber(nth[2]) + WINDOW - now end
        end
      elseif i == 3 then
        if used[s][3] >= l then deny_s, deny_i, retry = s, i, 1000 end
      else
        local avail = l - used[s][i] - prompt
        if avail <= 0 then
          deny_s, deny_i = s, i
          if i == 2 then
            retry = tpm_wait(s, 1 - avail)
          elseif avail + held[s] > 0 then
            retry = 1000  -- not spent: held by requests in flight, which settle soon
          end
        elseif allowance == nil or avail < allowance then
          allowance = avail
        end
      end
    end
  end
end

local cap, reserved = -1, prompt + math.max(max_output, 0)
if deny_s < 0 and allowance ~= nil then
  cap = allowance
  local want = allowance
  if max_output >= 0 then want = max_output elseif default_reserve >= 0 then want = default_reserve end
  if want < cap then cap = want end
  reserved = prompt + cap
end

-- rate info from the tightest scope
local admitted = deny_s < 0
local rl, rr, rreset, tl, tr, treset = -1, -1, -1, -1, -1, -1
for s = 1, 2 do
  local l = lim[s]
  if l[1] >= 0 then
    local rem = l[1] - used[s][1]
    if admitted then rem = rem - 1 end
    rem = math.max(rem, 0)
    if rr < 0 or rem < rr then
      rl, rr = l[1], rem
      rreset = WINDOW
      if oldest[s] then rreset = oldest[s] + WINDOW - now end
    end
  end
  if l[2] >= 0 then
    local rem = l[2] - used[s][2]
    if admitted then rem = rem - reserved end
    rem = math.max(rem, 0)
    if tr < 0 or rem < tr then
      tl, tr = l[2], rem
      treset = (sec + 60) * 1000 - now
      if #buckets[s] > 0 then treset = (buckets[s][1][1] + 60) * 1000 - now end
    end
  end
end

if not admitted then
  return {0, deny_s, deny_i, retry, -1, -1, now, rl, rr, rreset, tl, tr, treset}
end

-- reserve everywhere
for s = 1, 2 do
  local l = lim[s]
  if l[1] >= 0 then
    redis.call('ZADD', key(s, 1), int(now), id)
    redis.call('PEXPIRE', key(s, 1), WINDOW + 1000)
  end
  if l[2] >= 0 then
    redis.call('HINCRBY', key(s, 2), int(sec), int(reserved))
    redis.call('PEXPIRE', key(s, 2), WINDOW + 2000)
  end
  if l[3] >= 0 then
    redis.call('ZADD', key(s, 3), int(now + ttl), id)
    redis.call('PEXPIRE', key(s, 3), int(ttl + 1000))
  end
  redis.call('HSET', key(s, 4), id, int(reserved))
  redis.call('ZADD', key(s, 5), int(now + ttl), id)
  redis.call('PEXPIRE', key(s, 4), int(ttl + WINDOW))
  redis.call('PEXPIRE', key(s, 5), int(ttl + WINDOW))
end
return {1, -1, -1, -1, cap, reserved, now, rl, rr, rreset, tl, tr, treset}
