"""The Lua scripts of the inventory gate: each change to a variant is one script, one round trip.

Keys of one variant share the hash tag ``inv:{variant_id}:`` so every script touches one
cluster slot. Times come from the Redis server clock (``TIME``), never from the caller.

Per variant (prefix ``P = inv:{V}:``):

- ``P stock``  hash: avail, held, sold, listed, epoch   (avail + held + sold = listed)
- ``P exp``    sorted set: hold id -> expiry (ms, server clock)
- ``P h:ID``   hash of one hold: buyer, show, qty, state (held|paying), exp, deal, dealid, epoch
- ``P deal``   hash of a running deal: id, show, price, units, left, ends, limit
- ``P dealbuy`` hash: buyer -> units taken at the deal price (held or bought)
- ``P idem:BUYER:KEY`` hash: fp, state (pending|done|failed), order, reason
- ``P notify`` sorted set: viewer -> subscription time (oldest first)
"""

from __future__ import annotations

PRELUDE = r"""
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function num(v)
  if v == false or v == nil then return 0 end
  return tonumber(v)
end

-- Give a hold's units back; returns the hold's fields (or nil when it is gone).
local function release_hold(prefix, stock, hid)
  local hk = prefix .. 'h:' .. hid
  local h = redis.call('HMGET', hk, 'qty', 'buyer', 'deal', 'dealid', 'show', 'state')
  redis.call('ZREM', prefix .. 'exp', hid)
  if not h[1] then return nil end
  local q = tonumber(h[1])
  redis.call('HINCRBY', stock, 'avail', q)
  redis.call('HINCRBY', stock, 'held', -q)
  local d = num(h[3])
  if d > 0 then
    local dk = prefix .. 'deal'
    if redis.call('HGET', dk, 'id') == h[4] then
      redis.call('HINCRBY', dk, 'left', d)
      redis.call('HINCRBY', prefix .. 'dealbuy', h[2], -d)
    end
  end
  redis.call('DEL', hk)
  return h
end

-- Release every hold whose time is up (at most `limit`); returns {hid, buyer, show, ...}
-- and the units it gave back.
local function sweep(prefix, stock, now, limit)
  local out, freed = {}, 0
  local due = redis.call('ZRANGEBYSCORE', prefix .. 'exp', '-inf', now, 'LIMIT', 0, limit)
  for _, hid in ipairs(due) do
    local h = release_hold(prefix, stock, hid)
    if h then
      table.insert(out, hid)
      table.insert(out, h[2])
      table.insert(out, h[5] or '')
      freed = freed + tonumber(h[1])
    end
  end
  return out, freed
end

local function deal_running(dk, now)
  local ends = redis.call('HGET', dk, 'ends')
  return ends and tonumber(ends) > now
end
"""

# KEYS: stock, exp, hold, deal, dealbuy, idem
# ARGV: prefix, hold id, buyer, show, qty, ttl_ms, state, idem fp ('' = none), idem ttl ms
# Sets the hold to `qty` units (0 removes it), all or nothing.
# -> {'ok', avail, qty, deal_units, deal_price, exp_ms, epoch, was_zero, deal_left_zero,
#     released...}
#  | {'noload'} | {'short', avail, ...} | {'deal_limit', room, ...} | {'deal_short', left, ...}
#  | {'paying', 0, ...}: a refusal after the lazy sweep ends with (avail, back_in_stock,
#    released...) so that the holds it released are announced like any other release
#  | {'paying'} | {'idem_mismatch'} | {'idem', state, order, reason}
RESERVE = (
    PRELUDE
    + r"""
local stock, exp, hk, dk, dbk, ik = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local prefix, hid, buyer, show = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local qty, ttl, state, fp = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8]
if redis.call('EXISTS', stock) == 0 then return {'noload'} end
if fp ~= '' then
  local cur = redis.call('HMGET', ik, 'fp', 'state', 'order', 'reason')
  if cur[1] then
    if cur[1] ~= fp then return {'idem_mismatch'} end
    return {'idem', cur[2], cur[3] or '', cur[4] or ''}
  end
end
local now = now_ms()
local released, freed = sweep(prefix, stock, now, 100)
local avail = num(redis.call('HGET', stock, 'avail'))
local function refused(tag, value)
  local res = {tag, value, avail, (freed > 0 and avail == freed) and 1 or 0}
  for _, v in ipairs(released) do table.insert(res, v) end
  return res
end
local old = redis.call('HMGET', hk, 'qty', 'deal', 'dealid', 'state')
if old[4] == 'paying' then return refused('paying', 0) end
local old_q, old_d = num(old[1]), num(old[2])
if qty > avail + old_q then return refused('short', avail) end
local new_d, price, dealid = 0, -1, ''
if qty > 0 and deal_running(dk, now) then
  local d = redis.call('HMGET', dk, 'id', 'price', 'left', 'limit')
  local mine = (d[1] == old[3]) and old_d or 0
  local bought = num(redis.call('HGET', dbk, buyer)) - mine
  if bought + qty > tonumber(d[4]) then return refused('deal_limit', tonumber(d[4]) - bought) end
  if qty > tonumber(d[3]) + mine then return refused('deal_short', tonumber(d[3]) + mine) end
  new_d, price, dealid = qty, tonumber(d[2]), d[1]
end
local was_zero = (avail == 0) and 1 or 0
if old[1] then release_hold(prefix, stock, hid) end
local expires = now + ttl
local deal_left_zero = 0
if qty > 0 then
  redis.call('HINCRBY', stock, 'avail', -qty)
  redis.call('HINCRBY', stock, 'held', qty)
  redis.call('HSET', hk, 'buyer', buyer, 'show', show, 'qty', qty, 'state', state,
    'exp', expires, 'deal', new_d, 'dealid', dealid, 'price', price)
  redis.call('ZADD', exp, expires, hid)
  if new_d > 0 then
    redis.call('HINCRBY', dbk, buyer, new_d)
    if redis.call('HINCRBY', dk, 'left', -new_d) == 0 then deal_left_zero = 1 end
  end
end
if fp ~= '' then
  redis.call('HSET', ik, 'fp', fp, 'state', 'pending', 'hold', hid)
  redis.call('PEXPIRE', ik, tonumber(ARGV[9]))
end
local after = num(redis.call('HGET', stock, 'avail'))
if after == 0 then was_zero = 0 end
local res = {'ok', after, qty, new_d, price, expires, redis.call('HGET', stock, 'epoch'),
  was_zero, deal_left_zero}
for _, v in ipairs(released) do table.insert(res, v) end
return res
"""
)

# KEYS: stock, exp, hold, deal   ARGV: hold id, from state, to state, ttl_ms
# -> {'ok', qty, deal_units, deal_price_or_-1, epoch} | {'gone'} | {'state', state}
MOVE = (
    PRELUDE
    + r"""
local stock, exp, hk, dk = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local hid, from, to, ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local now = now_ms()
local h = redis.call('HMGET', hk, 'qty', 'state', 'exp', 'deal', 'dealid', 'price')
if not h[1] or tonumber(h[3]) <= now then return {'gone'} end
if h[2] ~= from then return {'state', h[2]} end
local expires = now + ttl
redis.call('HSET', hk, 'state', to, 'exp', expires)
redis.call('ZADD', exp, expires, hid)
local price = -1
if num(h[4]) > 0 and redis.call('HGET', dk, 'id') == h[5] and deal_running(dk, now) then
  price = tonumber(h[6])
end
return {'ok', tonumber(h[1]), num(h[4]), price, redis.call('HGET', stock, 'epoch') or ''}
"""
)

# KEYS: stock, exp, hold, idem   ARGV: hold id, qty, epoch of the hold, order id
# The order is in SQL: the paying hold's units become sold. A held hold under the id is a
# cart line made after the paying one ran out: it stays in the cart, and the order's units
# are taken again as if its hold were gone.
# -> {'ok'} | {'noload'} | {'resync'}
COMMIT = (
    PRELUDE
    + r"""
local stock, exp, hk, ik = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local hid, qty, epoch, order = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
if order ~= '' and redis.call('EXISTS', ik) == 1 then
  redis.call('HSET', ik, 'state', 'done', 'order', order)
end
if redis.call('EXISTS', stock) == 0 then return {'noload'} end
local h = redis.call('HMGET', hk, 'qty', 'state')
local mine = h[2] ~= 'held'  -- (a held hold here is a newer cart line: it stays)
if mine then redis.call('ZREM', exp, hid) end
if mine and h[1] then
  redis.call('DEL', hk)
  redis.call('HINCRBY', stock, 'held', -tonumber(h[1]))
  redis.call('HINCRBY', stock, 'sold', tonumber(h[1]))
  return {'ok'}
end
if redis.call('HGET', stock, 'epoch') ~= epoch then return {'resync'} end
-- released (time up) while the order was written: the units went back, take them again
local avail = num(redis.call('HGET', stock, 'avail'))
local take = math.min(avail, qty)
redis.call('HINCRBY', stock, 'avail', -take)
redis.call('HINCRBY', stock, 'sold', take)
if take < qty then return {'resync'} end
return {'ok'}
"""
)

# KEYS: stock, exp, hold, idem   ARGV: prefix, hold id, idem state ('' = leave), reason,
# [only: release the hold only when it is in this state ('held': not one being paid for)]
# -> {'ok', avail, was_zero, released_qty}
RELEASE = (
    PRELUDE
    + r"""
local stock, exp, hk, ik = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local prefix, hid, istate, reason, only = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if only and only ~= '' and redis.call('HGET', hk, 'state') ~= only then
  return {'ok', num(redis.call('HGET', stock, 'avail')), 0, 0}
end
if istate ~= '' and redis.call('EXISTS', ik) == 1 then
  redis.call('HSET', ik, 'state', istate, 'reason', reason)
end
if redis.call('EXISTS', stock) == 0 then return {'ok', 0, 0, 0} end
local before = num(redis.call('HGET', stock, 'avail'))
local h = release_hold(prefix, stock, hid)
local after = num(redis.call('HGET', stock, 'avail'))
local was_zero = (before == 0 and after > 0) and 1 or 0
return {'ok', after, was_zero, h and tonumber(h[1]) or 0}
"""
)

# KEYS: stock, exp, deal, dealbuy   ARGV: prefix, limit
# -> {avail, was_zero, deal_expired (0/1), deal_show, hid, buyer, show, ...} | {'noload'}
SWEEP = (
    PRELUDE
    + r"""
local stock, exp, dk, dbk = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if redis.call('EXISTS', stock) == 0 then return {'noload'} end
local now = now_ms()
local before = num(redis.call('HGET', stock, 'avail'))
local released = sweep(ARGV[1], stock, now, tonumber(ARGV[2]))
local after = num(redis.call('HGET', stock, 'avail'))
local deal_expired, deal_show = 0, ''
local ends = redis.call('HGET', dk, 'ends')
if ends and tonumber(ends) <= now then
  deal_show = redis.call('HGET', dk, 'show') or ''
  redis.call('DEL', dk, dbk)
  deal_expired = 1
end
local res = {after, (before == 0 and after > 0) and 1 or 0, deal_expired, deal_show}
for _, v in ipairs(released) do table.insert(res, v) end
return res
"""
)

# KEYS: stock   ARGV: sql stock, epoch  -> 1 loaded, 0 already there
LOAD = r"""
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'avail', ARGV[1], 'held', 0, 'sold', 0, 'listed', ARGV[1],
  'epoch', ARGV[2])
return 1
"""

# KEYS: stock   ARGV: new sql stock (units not sold)
# -> {'ok', avail, was_zero} | {'noload'} | {'below_held', held}
RESTOCK = r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return {'noload'} end
local s = tonumber(ARGV[1])
local v = redis.call('HMGET', KEYS[1], 'avail', 'held', 'sold')
local held, sold = tonumber(v[2]), tonumber(v[3])
if s < held then return {'below_held', held} end
redis.call('HSET', KEYS[1], 'avail', s - held, 'listed', s + sold)
local was_zero = (tonumber(v[1]) == 0 and s - held > 0) and 1 or 0
return {'ok', s - held, was_zero}
"""

# KEYS: stock   ARGV: sql stock read after the caller's order committed
# After Redis lost its data mid-order: units not sold = SQL stock; live holds stay held.
RESYNC = r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local v = redis.call('HMGET', KEYS[1], 'held', 'sold')
local avail = math.max(0, tonumber(ARGV[1]) - tonumber(v[1]))
redis.call('HSET', KEYS[1], 'avail', avail, 'listed', avail + tonumber(v[1]) + tonumber(v[2]))
return avail
"""

# KEYS: stock, deal, dealbuy   ARGV: id, show, price, units, ends_ms, limit
# -> {'ok', ends_ms} | {'noload'} | {'running'} | {'short', avail} | {'ended'}
DEAL_START = (
    PRELUDE
    + r"""
local stock, dk, dbk = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', stock) == 0 then return {'noload'} end
local now = now_ms()
if deal_running(dk, now) then return {'running'} end
local ends = tonumber(ARGV[5])
if ends <= now then return {'ended'} end
local avail = num(redis.call('HGET', stock, 'avail'))
if tonumber(ARGV[4]) > avail then return {'short', avail} end
redis.call('DEL', dk, dbk)
redis.call('HSET', dk, 'id', ARGV[1], 'show', ARGV[2], 'price', ARGV[3], 'units', ARGV[4],
  'left', ARGV[4], 'ends', ends, 'limit', ARGV[6])
return {'ok', ends}
"""
)

# KEYS: deal, dealbuy -> 1 stopped, 0 none
DEAL_STOP = r"""
local had = redis.call('EXISTS', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2])
return had
"""

# KEYS: notify   ARGV: viewer -> 1 added, 0 already subscribed
NOTIFY_ADD = r"""
local t = redis.call('TIME')
local score = tonumber(t[1]) * 1000000 + tonumber(t[2])
return redis.call('ZADD', KEYS[1], 'NX', score, ARGV[1])
"""

# KEYS: notify -> the subscribers, oldest first, and forget them
NOTIFY_POP = r"""
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return ids
"""
