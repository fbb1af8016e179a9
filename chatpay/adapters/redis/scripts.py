"""The queue's Lua scripts. Each runs atomically on the server, so no step can be half done.

Key layout under the queue name ``Q`` (see :mod:`chatpay.adapters.redis.queue`)::

    Q                  raw updates, LPUSHed by the webhook (consumed from the right)
    Q:staging          updates a router has taken but not yet sorted into lanes
    Q:lane:<user>      one lane per Telegram user: its updates in arrival order
    Q:ready            lanes with updates that no worker holds
    Q:fast             pre-checkout queries (answered at once, beside the lanes)
    Q:dead             dead letters, JSON {raw, reason, worker, attempts, at}
    Q:workers          registered worker ids;  Q:hb:<worker>  heartbeat with a TTL
    Q:w:<worker>:lanes lanes a worker holds;   Q:w:<worker>:fast  its pre-checkouts in flight
    Q:attempts, Q:failures, Q:errors   per-lane counters for the update at the lane's head

Invariant: a lane id is in ``Q:ready`` or in exactly one worker's ``lanes`` list if and only
if the lane is not empty, and never in both.
"""

from __future__ import annotations

# KEYS: inbound, staging, ready, fast.  ARGV: lane key prefix, limit.
# Drains staging (older) and then inbound, oldest first, into per-user lanes.
ROUTE = """
local function lane_of(raw)
  local ok, update = pcall(cjson.decode, raw)
  if not ok or type(update) ~= 'table' then return '~', false end
  for kind, body in pairs(update) do
    if type(body) == 'table' then
      local who = body['from']
      if type(who) ~= 'table' then who = body['sender_chat'] end
      if type(who) ~= 'table' then who = body['chat'] end
      if type(who) == 'table' and type(who['id']) == 'number' then
        return string.format('%.0f', who['id']), kind == 'pre_checkout_query'
      end
    end
  end
  return '~', false
end
local routed = 0
local limit = tonumber(ARGV[2])
while routed < limit do
  local raw = redis.call('RPOP', KEYS[2])
  if not raw then raw = redis.call('RPOP', KEYS[1]) end
  if not raw then break end
  local lane, fast = lane_of(raw)
  if fast then
    redis.call('LPUSH', KEYS[4], raw)
  elseif redis.call('RPUSH', ARGV[1] .. lane, raw) == 1 then
    redis.call('LPUSH', KEYS[3], lane)
  end
  routed = routed + 1
end
return routed
"""

# KEYS: owned lanes, lane, attempts, failures, errors.  ARGV: lane id.
BEGIN = """
if not redis.call('LPOS', KEYS[1], ARGV[1]) then return {'lost'} end
local head = redis.call('LINDEX', KEYS[2], 0)
if not head then
  redis.call('LREM', KEYS[1], 0, ARGV[1])
  return {'empty'}
end
local attempts = redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
local failures = tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0')
local err = redis.call('HGET', KEYS[5], ARGV[1]) or ''
return {'ok', head, attempts, failures, err}
"""

# KEYS: owned lanes, lane, ready, attempts, failures, errors, dead.
# ARGV: lane id, raw, dead-letter entry ('' to acknowledge).
# Removes the head (when it is still ``raw``) and hands the lane back.
FINISH = """
if not redis.call('LPOS', KEYS[1], ARGV[1]) then return 0 end
if redis.call('LINDEX', KEYS[2], 0) == ARGV[2] then redis.call('LPOP', KEYS[2]) end
if ARGV[3] ~= '' then redis.call('LPUSH', KEYS[7], ARGV[3]) end
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('HDEL', KEYS[6], ARGV[1])
redis.call('LREM', KEYS[1], 0, ARGV[1])
if redis.call('LLEN', KEYS[2]) > 0 then redis.call('LPUSH', KEYS[3], ARGV[1]) end
return 1
"""

# KEYS: owned lanes, lane, ready, attempts, failures, errors.
# ARGV: lane id, error ('' when nothing failed), '1' to give back the attempt counted by BEGIN.
# Keeps the head and hands the lane back: after a failure to the back of the line, else to the front.
RELEASE = """
if not redis.call('LPOS', KEYS[1], ARGV[1]) then return 0 end
redis.call('LREM', KEYS[1], 0, ARGV[1])
if ARGV[2] ~= '' then
  redis.call('HINCRBY', KEYS[5], ARGV[1], 1)
  redis.call('HSET', KEYS[6], ARGV[1], ARGV[2])
end
if ARGV[3] == '1' and tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0') > 0 then
  redis.call('HINCRBY', KEYS[4], ARGV[1], -1)
end
if redis.call('LLEN', KEYS[2]) > 0 then
  if ARGV[2] ~= '' then redis.call('LPUSH', KEYS[3], ARGV[1]) else redis.call('RPUSH', KEYS[3], ARGV[1]) end
end
return 1
"""

# KEYS: workers, ready, fast.  ARGV: queue prefix ('Q:'), only this worker id ('' for every dead one).
# Hands the lanes and pre-checkouts of dead workers (no heartbeat) back; returns their ids.
REAP = """
local reaped = {}
local ids = redis.call('SMEMBERS', KEYS[1])
if ARGV[2] ~= '' then ids = {ARGV[2]} end
for _, id in ipairs(ids) do
  if ARGV[2] ~= '' or redis.call('EXISTS', ARGV[1] .. 'hb:' .. id) == 0 then
    local owned = ARGV[1] .. 'w:' .. id .. ':lanes'
    local lane = redis.call('RPOP', owned)
    while lane do
      if redis.call('LLEN', ARGV[1] .. 'lane:' .. lane) > 0 then redis.call('RPUSH', KEYS[2], lane) end
      lane = redis.call('RPOP', owned)
    end
    local inflight = ARGV[1] .. 'w:' .. id .. ':fast'
    local raw = redis.call('RPOP', inflight)
    while raw do
      redis.call('RPUSH', KEYS[3], raw)
      raw = redis.call('RPOP', inflight)
    end
    redis.call('DEL', ARGV[1] .. 'hb:' .. id)
    redis.call('SREM', KEYS[1], id)
    table.insert(reaped, id)
  end
end
return reaped
"""

# KEYS: workers, heartbeat.  ARGV: worker id, ttl ms, '1' to register.
# Returns 0 when the worker was reaped meanwhile (it must then start over under a new id).
HEARTBEAT = """
if ARGV[3] == '1' then
  redis.call('SADD', KEYS[1], ARGV[1])
elseif redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return 1
"""

# KEYS: in-flight list, fast, dead, fast attempts.  ARGV: raw, dead-letter entry or '' , '1' to retry.
# Finishes a pre-checkout: acknowledged, dead-lettered, or put back for another try.
FINISH_FAST = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
if ARGV[3] == '1' then
  redis.call('LPUSH', KEYS[2], ARGV[1])
  return 1
end
redis.call('HDEL', KEYS[4], ARGV[1])
if ARGV[2] ~= '' then redis.call('LPUSH', KEYS[3], ARGV[2]) end
return 1
"""
