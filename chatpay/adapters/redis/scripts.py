"""The queue's Lua scripts. Each runs atomically on the server, so no step can be half done.

Key layout under the queue name ``Q``, which is ``<CHATPAY_QUEUE>:{<business>}`` (see
:func:`chatpay.adapters.redis.queue.queue_name`; ``chatpay_queue:{demo}`` by default). The
``{<business>}`` hash tag puts every key below in one Redis Cluster slot, so each script runs
on one node, and no two businesses share a key::

    Q                  raw updates, LPUSHed by the webhook (consumed from the right)
    Q:staging          updates a router has taken but not yet sorted into lanes
    Q:lane:<user>      one lane per Telegram user: its updates in arrival order
    Q:ready            lanes with updates that no worker holds
    Q:fast             pre-checkout queries (answered at once, beside the lanes)
    Q:dead             dead letters, JSON {raw, reason, worker, attempts, at}, newest first,
                       the newest ``MAX_DEAD`` kept (trimmed by the script that adds one)
    Q:workers          registered worker ids;  Q:hb:<worker>  heartbeat with a TTL
    Q:w:<worker>:lanes lanes a worker holds;   Q:w:<worker>:fast  its pre-checkouts in flight
    Q:attempts, Q:failures, Q:errors   per-lane counters for the update at the lane's head

Invariant: a lane id is in ``Q:ready`` or in exactly one worker's ``lanes`` list if and only
if the lane is not empty, and never in both.

Every script is given its keys in KEYS (ARGV holds only values), so a cluster client routes
it by key. Keys whose names are only known inside the script (a lane named after the user an
update comes from, a dead worker's lists) are built from a *prefix* passed in KEYS, ``Q:`` or
``Q:lane:``, which carries the same hash tag: they are in the declared keys' slot, which Redis
Cluster allows, and the prefix routes the call to that slot's node.
"""

from __future__ import annotations

# KEYS: inbound, staging, ready, fast, lane key prefix ('Q:lane:').  ARGV: limit.
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
local limit = tonumber(ARGV[1])
while routed < limit do
  local raw = redis.call('RPOP', KEYS[2])
  if not raw then raw = redis.call('RPOP', KEYS[1]) end
  if not raw then break end
  local lane, fast = lane_of(raw)
  if fast then
    redis.call('LPUSH', KEYS[4], raw)
  elseif redis.call('RPUSH', KEYS[5] .. lane, raw) == 1 then
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
# ARGV: lane id, raw, dead-letter entry ('' to acknowledge), dead letters kept.
# Removes the head (when it is still ``raw``) and hands the lane back. Returns 0 when the
# lane was no longer ours, 2 when the oldest dead letter was dropped to make room, else 1.
FINISH = """
if not redis.call('LPOS', KEYS[1], ARGV[1]) then return 0 end
if redis.call('LINDEX', KEYS[2], 0) == ARGV[2] then redis.call('LPOP', KEYS[2]) end
local done = 1
if ARGV[3] ~= '' and redis.call('LPUSH', KEYS[7], ARGV[3]) > tonumber(ARGV[4]) then
  redis.call('LTRIM', KEYS[7], 0, tonumber(ARGV[4]) - 1)
  done = 2
end
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('HDEL', KEYS[6], ARGV[1])
redis.call('LREM', KEYS[1], 0, ARGV[1])
if redis.call('LLEN', KEYS[2]) > 0 then redis.call('LPUSH', KEYS[3], ARGV[1]) end
return done
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

# KEYS: workers, ready, fast, queue prefix ('Q:').  ARGV: only this worker id ('' for every dead one).
# Hands the lanes and pre-checkouts of dead workers (no heartbeat) back; returns their ids.
# The registry of workers (Q:workers) names every worker's keys: no SCAN, one slot.
REAP = """
local reaped = {}
local ids = redis.call('SMEMBERS', KEYS[1])
if ARGV[1] ~= '' then ids = {ARGV[1]} end
for _, id in ipairs(ids) do
  if ARGV[1] ~= '' or redis.call('EXISTS', KEYS[4] .. 'hb:' .. id) == 0 then
    local owned = KEYS[4] .. 'w:' .. id .. ':lanes'
    local lane = redis.call('RPOP', owned)
    while lane do
      if redis.call('LLEN', KEYS[4] .. 'lane:' .. lane) > 0 then redis.call('RPUSH', KEYS[2], lane) end
      lane = redis.call('RPOP', owned)
    end
    local inflight = KEYS[4] .. 'w:' .. id .. ':fast'
    local raw = redis.call('RPOP', inflight)
    while raw do
      redis.call('RPUSH', KEYS[3], raw)
      raw = redis.call('RPOP', inflight)
    end
    redis.call('DEL', KEYS[4] .. 'hb:' .. id)
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

# KEYS: in-flight list, fast, dead, fast attempts.
# ARGV: raw, dead-letter entry or '', '1' to retry, dead letters kept.
# Finishes a pre-checkout: acknowledged, dead-lettered, or put back for another try.
# Returns 0 when it was no longer ours, 2 when the oldest dead letter was dropped, else 1.
FINISH_FAST = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
if ARGV[3] == '1' then
  redis.call('LPUSH', KEYS[2], ARGV[1])
  return 1
end
redis.call('HDEL', KEYS[4], ARGV[1])
if ARGV[2] ~= '' and redis.call('LPUSH', KEYS[3], ARGV[2]) > tonumber(ARGV[4]) then
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[4]) - 1)
  return 2
end
return 1
"""

# KEYS: inbound, staging, ready, fast, dead, workers, queue prefix ('Q:').
# Returns {inbound, staging, updates in lanes, ready lanes, fast, dead}. A lane with updates is
# in Q:ready or in one registered worker's list (the invariant above), so no SCAN is needed.
DEPTH = """
local lanes = 0
local function count(list)
  for _, lane in ipairs(redis.call('LRANGE', list, 0, -1)) do
    lanes = lanes + redis.call('LLEN', KEYS[7] .. 'lane:' .. lane)
  end
end
count(KEYS[3])
for _, id in ipairs(redis.call('SMEMBERS', KEYS[6])) do count(KEYS[7] .. 'w:' .. id .. ':lanes') end
return {redis.call('LLEN', KEYS[1]), redis.call('LLEN', KEYS[2]), lanes, redis.call('LLEN', KEYS[3]),
        redis.call('LLEN', KEYS[4]), redis.call('LLEN', KEYS[5])}
"""

# KEYS: dead, inbound.  ARGV: '1' to take every entry, else the positions (0 = newest) to take.
# Moves dead letters' raw updates back onto the inbound list, oldest first (LPUSH, as the webhook
# does, so the oldest is routed first), and removes them from the dead letters. An entry that is
# not a dead letter's JSON is left where it is. Returns how many were queued again.
REQUEUE_DEAD = """
local removed = 'chatpay:removed'  -- never a dead letter: those are JSON objects
local positions = {}
if ARGV[1] == '1' then
  for p = redis.call('LLEN', KEYS[1]) - 1, 0, -1 do table.insert(positions, p) end
else
  for i = 2, #ARGV do table.insert(positions, tonumber(ARGV[i])) end
  table.sort(positions, function(a, b) return a > b end)
end
local moved = 0
for _, p in ipairs(positions) do
  local entry = redis.call('LINDEX', KEYS[1], p)
  if entry and entry ~= removed then
    local ok, doc = pcall(cjson.decode, entry)
    if ok and type(doc) == 'table' and type(doc['raw']) == 'string' then
      redis.call('LSET', KEYS[1], p, removed)
      redis.call('LPUSH', KEYS[2], doc['raw'])
      moved = moved + 1
    end
  end
end
if moved > 0 then redis.call('LREM', KEYS[1], 0, removed) end
return moved
"""

# KEYS: dead.  ARGV: '1' to drop every entry, else the positions (0 = newest) to drop.
# Returns how many were dropped.
PURGE_DEAD = """
if ARGV[1] == '1' then
  local n = redis.call('LLEN', KEYS[1])
  redis.call('DEL', KEYS[1])
  return n
end
local removed = 'chatpay:removed'  -- never a dead letter: those are JSON objects
local dropped = 0
for i = 2, #ARGV do
  local p = tonumber(ARGV[i])
  local entry = redis.call('LINDEX', KEYS[1], p)
  if entry and entry ~= removed then
    redis.call('LSET', KEYS[1], p, removed)
    dropped = dropped + 1
  end
end
if dropped > 0 then redis.call('LREM', KEYS[1], 0, removed) end
return dropped
"""
