#!lua flags=allow-oom
-- KEYS: the job hash, the due set, the records list, the usernames seen (set).
-- ARGV: id, holder, now, until
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'queued' and state ~= 'running' and state ~= 'paused' then return false end
local holder = redis.call('HGET', KEYS[1], 'holder')
if holder and holder ~= ARGV[2] and tonumber(redis.call('HGET', KEYS[1], 'lease')) > tonumber(ARGV[3]) then return false end
redis.call('HSET', KEYS[1], 'state', 'running', 'holder', ARGV[2], 'lease', ARGV[4], 'updated', ARGV[3])
redis.call('HDEL', KEYS[1], 'resumes')
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return redis.call('HGETALL', KEYS[1])
