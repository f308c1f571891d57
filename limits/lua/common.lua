-- common.lua: helpers put in front of every script of this folder (redis_backend.py joins them).
-- Times are in ms; rate buckets are whole seconds. A tenant's keys (limits/keyspace.py):
--   heads  hash: field "t" (the tenant scope) and "k:<key>" (each key scope) -> the scope's
--          head, 17 doubles packed with struct (HEAD below), absent = ZERO;
--          "=<id>" -> "<tokens> <expiry ms> <heads field of its key>": an open reservation,
--          also its lease; "~<id>" -> expiry ms of the tombstone of a reservation that lapsed
--          unsettled
--   ring   hash, one per scope: r<sec> / t<sec> -> requests / tokens counted in second <sec>
--          (the seconds of the rolling minute before the head's current one)
local WINDOW = 60000
local HEAD = '<ddddddddddddddddd'
-- the head's fields: seeded (0/1), tokens held in flight, requests open, day (YYYYMMDD) and
-- its tokens, month (YYYYMM) and its tokens, total; rpm: sum over the minute, oldest second
-- that may count (-1 none), current second, its count; tpm: the same; nx (tenant scope):
-- a time at or before the earliest expiry of an entry (-1 none)
local S, H, N, D, DV, M, MV, TOT = 1, 2, 3, 4, 5, 6, 7, 8
local RPM, TPM, NX = 9, 13, 17
local ZERO = {0, 0, 0, 0, 0, 0, 0, 0, 0, -1, -1, 0, 0, -1, -1, 0, -1}

-- the clock: the caller's ms, or Redis TIME when the argument is ''
local function clock(arg)
  if arg == '' then
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return tonumber(arg)
end

local function int(x) return string.format('%d', x) end
local function num(v) return tonumber(v) or 0 end

local function decode(v)
  if not v then return {unpack(ZERO)} end
  return {struct.unpack(HEAD, v)}
end

local function encode(h) return struct.pack(HEAD, unpack(h, 1, 17)) end

-- the heads of the key scope (field kf) and the tenant scope, decoded, and the values as
-- read, followed by those of the fields in `...`
local function heads(hk, kf, ...)
  local raw = redis.call('HMGET', hk, kf, 't', ...)
  return {decode(raw[1]), decode(raw[2])}, raw
end

-- write the heads that changed since they were read, and the name, value pairs in `args`
local function store_heads(hk, kf, h, raw, args)
  for s, f in ipairs({kf, 't'}) do
    local v = encode(h[s])
    if v ~= raw[s] then
      args[#args + 1] = f
      args[#args + 1] = v
    end
  end
  if #args > 0 then redis.call('HSET', hk, unpack(args)) end
end

-- the limits of both scopes from ARGV[first + 1 ..]: {key limits, tenant limits}, -1 = none
local function limits(first, count)
  local lim = {{}, {}}
  for s = 1, 2 do
    for i = 1, count do lim[s][i] = tonumber(ARGV[first + (s - 1) * count + i]) end
  end
  return lim
end

-- cmd(key, items...) 1000 items at a time (unpack's stack limit)
local function chunked(cmd, key, items)
  for j = 1, #items, 1000 do
    redis.call(cmd, key, unpack(items, j, math.min(j + 999, #items)))
  end
end

-- charge v tokens to a day or month counter at h[i] (window id) / h[i + 1] (tokens), with f;
-- a charge to an older window than the stored one is dropped (that window is over)
local function merge(h, i, id, v, f)
  if h[i] == id then
    h[i + 1] = f(h[i + 1], v)
  elseif id > h[i] then
    h[i], h[i + 1] = id, v
  end
end

-- an open entry: tokens, expiry ms, the heads field of its key
local function entry(v)
  local tok, exp, k = string.match(v, '^(%d+) (%d+) (.*)$')
  return tonumber(tok), tonumber(exp), k
end

-- Once now >= nx: release the tenant's reservations whose expiry is <= now (their tokens and
-- slots at the tenant and at their key), keep a tombstone of each for `grace` ms, drop the
-- tombstones that expired and set nx to the earliest expiry left. `known` maps the heads
-- fields already decoded (the caller's) to their tables; others are read and written here.
local function purge(hk, now, grace, known)
  local all = redis.call('HGETALL', hk)
  local dead, tomb, nx, gone = {}, {}, -1, {}
  local function keep(e) if nx < 0 or e < nx then nx = e end end
  for i = 1, #all, 2 do
    local f, v = all[i], all[i + 1]
    if string.sub(f, 1, 1) == '=' then
      local tok, exp, k = entry(v)
      if exp <= now then
        dead[#dead + 1] = f
        tomb[#tomb + 1] = '~' .. string.sub(f, 2)
        tomb[#tomb + 1] = int(now + grace)
        for _, s in ipairs({k, 't'}) do
          local g = gone[s] or {0, 0}
          gone[s] = {g[1] + tok, g[2] + 1}
        end
      else
        keep(exp)
      end
    elseif string.sub(f, 1, 1) == '~' then
      if tonumber(v) <= now then
        dead[#dead + 1] = f
      else
        keep(tonumber(v))
      end
    end
  end
  if #tomb > 0 then keep(now + grace) end
  local others = {}
  for k in pairs(gone) do
    if not known[k] then others[#others + 1] = k end
  end
  if #others > 0 then
    for i, v in ipairs(redis.call('HMGET', hk, unpack(others))) do known[others[i]] = decode(v) end
  end
  for k, g in pairs(gone) do
    local h = known[k]
    h[H], h[N] = math.max(h[H] - g[1], 0), math.max(h[N] - g[2], 0)
  end
  known.t[NX] = nx
  for _, k in ipairs(others) do
    tomb[#tomb + 1] = k
    tomb[#tomb + 1] = encode(known[k])
  end
  if #dead > 0 then chunked('HDEL', hk, dead) end
  if #tomb > 0 then chunked('HSET', hk, tomb) end
end

-- A rolling minute of per-second buckets: the head holds at h[o .. o + 3] its sum, the oldest
-- second that may count (lo), the current second (cur) and cur's count; the ring holds the
-- seconds in [lo, cur), positive values only (a bucket brought to 0 is deleted), under
-- k .. <sec> (k = 'r' or 't'). roll() makes `sec` the current second (unless the clock went
-- back: then it counts in cur), moves cur's count into the ring and expires what left the
-- minute.
local function keep_bucket(ring, k, cur, val)
  if val > 0 then
    redis.call('HSET', ring, k .. cur, int(val))
    redis.call('PEXPIRE', ring, 2 * WINDOW)
  end
end

local function roll(h, o, ring, k, sec)
  local sum, lo, cur, val = h[o], h[o + 1], h[o + 2], h[o + 3]
  if lo < 0 then
    h[o], h[o + 1], h[o + 2], h[o + 3] = 0, sec, sec, 0
    return
  end
  if sec <= cur then return end
  h[o + 2], h[o + 3] = sec, 0
  if lo > sec - 60 then
    keep_bucket(ring, k, cur, val)
    return
  end
  local fields = {}
  if lo + 59 <= sec - 60 then -- everything has left the minute
    for t = lo, lo + 59 do fields[#fields + 1] = k .. t end
    redis.call('HDEL', ring, unpack(fields))
    h[o], h[o + 1] = 0, sec
    return
  end
  for t = lo, sec - 1 do fields[#fields + 1] = k .. t end
  local vals = redis.call('HMGET', ring, unpack(fields))
  local dead, expired, first = {}, 0, nil
  for i = 1, #fields do
    local t = lo + i - 1
    local v = num(vals[i])
    if t == cur then v = val end
    if t <= sec - 60 then
      expired = expired + v
      if vals[i] then dead[#dead + 1] = fields[i] end
    elseif first == nil and v > 0 then
      first = t
    end
  end
  if #dead > 0 then redis.call('HDEL', ring, unpack(dead)) end
  if cur > sec - 60 then keep_bucket(ring, k, cur, val) end
  h[o], h[o + 1] = sum - expired, first or sec
end

-- count n more in the window's current second
local function add(h, o, n)
  if n <= 0 then return end
  if h[o] <= 0 then h[o + 1] = h[o + 2] end -- the first thing in the minute: lo moves to it
  h[o], h[o + 3] = h[o] + n, h[o + 3] + n
end

-- ms from now until `need` units have left the window (the minute if they never do)
local function wait(h, o, ring, k, need, now)
  local lo, cur = h[o + 1], h[o + 2]
  local vals = {}
  if cur > lo then
    local fields = {}
    for t = lo, cur - 1 do fields[#fields + 1] = k .. t end
    vals = redis.call('HMGET', ring, unpack(fields))
  end
  local freed = 0
  for t = lo, cur do
    freed = freed + (t == cur and h[o + 3] or num(vals[t - lo + 1]))
    if freed >= need then return (t + 60) * 1000 - now end
  end
  return WINDOW
end

-- ms until the window's oldest bucket leaves it (`empty` when nothing is in it)
local function reset(h, o, now, empty)
  if h[o] > 0 then return (h[o + 1] + 60) * 1000 - now end
  return empty
end
