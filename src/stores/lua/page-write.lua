#!lua
-- Stores a page within the byte budget of the pages in Redis. Each page is indexed by when it may
-- be dropped (its expiry plus the stale window, on the app's clock) with its size; pages past that
-- are dropped first, then the soonest to go until the new page fits. Sizes count value and key
-- only, not Redis's own overhead per key. No allow-oom: a full Redis refuses cache writes, which are
-- best effort, before it refuses anything that counts quota.
-- KEYS: the page, the index (sorted set), the sizes (hash), the bytes held.
-- ARGV: the value, its TTL (ms), when it may be dropped, now (app clock ms), the budget (bytes).
local size = #ARGV[1] + #KEYS[1]
local budget = tonumber(ARGV[5])
if size > budget then return 0 end
local function drop(key)
  local held = redis.call('HGET', KEYS[3], key)
  if held then
    redis.call('HDEL', KEYS[3], key)
    redis.call('DECRBY', KEYS[4], held)
  end
  redis.call('ZREM', KEYS[2], key)
  redis.call('DEL', key)
end
drop(KEYS[1])
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4], 'LIMIT', 0, 100)) do drop(key) end
local held = redis.call('INCRBY', KEYS[4], size)
while held > budget do
  local soonest = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if not soonest then break end
  drop(soonest)
  held = tonumber(redis.call('GET', KEYS[4]))
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], KEYS[1])
redis.call('HSET', KEYS[3], KEYS[1], size)
return 1
