#!lua
-- KEYS: the job hash, the due set, the records list, the usernames seen (set).
-- ARGV: id, holder, now, until, cursor, last (1|0), retention ms, then username and record line pairs
-- No allow-oom, unlike the other job scripts (which write a few bytes of state, so that a full
-- Redis can still pause, finish or cancel a job): appending records is refused when Redis is full.
if not held(ARGV[2]) then return false end
local max = tonumber(redis.call('HGET', KEYS[1], 'max'))
local count = tonumber(redis.call('HGET', KEYS[1], 'records'))
for i = 8, #ARGV, 2 do
  if max and count >= max then break end
  if redis.call('SADD', KEYS[4], ARGV[i]) == 1 then
    redis.call('RPUSH', KEYS[3], ARGV[i + 1])
    count = count + 1
  end
end
redis.call('HINCRBY', KEYS[1], 'pages', 1)
redis.call('HSET', KEYS[1], 'records', count, 'cursor', ARGV[5], 'updated', ARGV[3], 'lease', ARGV[4], 'failures', 0)
redis.call('HDEL', KEYS[1], 'error')
if ARGV[6] == '1' or (max and count >= max) then
  finish('done', ARGV[3], ARGV[7])
else
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
end
return redis.call('HGETALL', KEYS[1])
